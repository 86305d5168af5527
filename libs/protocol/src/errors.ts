/**
 * Every error the API returns, in one table. The server renders them as
 * `application/problem+json` ({ type, title, status, code, detail, ...extra }); clients switch on `code`.
 */
export const ERRORS = {
  validation_failed: { status: 400, title: 'The request is not valid' },
  malformed_json: { status: 400, title: 'The request body is not valid JSON' },
  invalid_policy: { status: 400, title: 'The policy is not valid' },
  invalid_range: { status: 416, title: 'The requested range cannot be served' },
  unauthenticated: { status: 401, title: 'Sign in first' },
  invalid_credentials: { status: 401, title: 'Wrong username or password' },
  token_revoked: { status: 401, title: 'This token has been revoked or has expired' },
  user_disabled: { status: 403, title: 'This user is disabled' },
  forbidden: { status: 403, title: 'You may not do this' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  username_taken: { status: 409, title: 'That username is taken' },
  workspace_name_taken: { status: 409, title: 'You already have a workspace with that name' },
  lease_held: { status: 409, title: 'Another device holds the lease on this workspace' },
  lease_not_held: { status: 409, title: 'This device does not hold the lease on this workspace' },
  head_moved: { status: 409, title: "The workspace's HEAD is not the expected parent" },
  stale_fencing_token: { status: 409, title: 'The fencing token is no longer current' },
  missing_objects: { status: 409, title: 'The version references objects that are not stored' },
  last_admin: { status: 409, title: 'The last active admin cannot be removed or disabled' },
  hash_mismatch: { status: 422, title: 'The uploaded bytes do not match their SHA-256' },
  invalid_pack: { status: 422, title: 'The pack is malformed' },
  invalid_object: { status: 422, title: 'The object is not in a stored-object format this server reads' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  quota_exceeded: { status: 413, title: "The workspace's storage quota would be exceeded" },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  rate_limited: { status: 429, title: 'Too many attempts; try again later' },
  internal: { status: 500, title: 'Internal server error' },
  unavailable: { status: 503, title: 'A service the server needs is unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  [extra: string]: unknown;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value);
}

/** The URI that identifies a problem type, so clients and docs can link to it. */
export function problemType(code: ErrorCode): string {
  return `https://upc.dev/problems/${code.replaceAll('_', '-')}`;
}
