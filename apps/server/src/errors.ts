import { ERRORS, type ErrorCode } from '@upc/protocol';

/** A failure the client caused or must react to; rendered as problem+json by ProblemFilter. */
export class ApiException extends Error {
  override name = 'ApiException';
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? ERRORS[code].title);
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}

export const notFound = (what: string) => new ApiException('not_found', `${what} not found`);
