import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { ERRORS, type ErrorCode, type Problem, problemType } from '@upc/protocol';
import type { FastifyReply } from 'fastify';
import { ZodError } from 'zod';
import { ApiException } from '../errors.js';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
};
const STATUS_CODES: Partial<Record<number, ErrorCode>> = {
  400: 'validation_failed',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

/** Turns anything thrown into application/problem+json; unexpected errors are logged and never leak. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const { problem, headers } = this.toProblem(error);
    void reply.status(problem.status).headers(headers).type('application/problem+json').send(problem);
  }

  toProblem(error: unknown): { problem: Problem; headers: Record<string, string> } {
    if (error instanceof ApiException) {
      return { problem: build(error.code, error.detail, error.extra), headers: error.headers };
    }
    if (error instanceof ZodError) {
      const issues = error.issues.map((i) => ({ field: i.path.join('.'), message: i.message }));
      const detail = issues.map((i) => `${i.field || '(body)'}: ${i.message}`).join('; ');
      return { problem: build('validation_failed', detail, { issues }), headers: {} };
    }
    // Nest wraps Fastify's own 4xx errors (body parsing, limits) in an HttpException with the original as cause.
    const fastifyError = error instanceof HttpException && error.cause instanceof Error ? error.cause : error;
    const fastifyCode = (fastifyError as { code?: unknown } | null)?.code;
    if (typeof fastifyCode === 'string' && fastifyCode in FASTIFY_CODES) {
      return {
        problem: build(FASTIFY_CODES[fastifyCode] ?? 'validation_failed', (fastifyError as Error).message),
        headers: {},
      };
    }
    if (error instanceof SyntaxError && (error as { statusCode?: number }).statusCode === 400) {
      return { problem: build('malformed_json', error.message), headers: {} };
    }
    if (error instanceof HttpException) {
      const code = STATUS_CODES[error.getStatus()];
      if (code) return { problem: build(code, error.message), headers: {} };
    }
    const status = (error as { statusCode?: unknown } | null)?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return {
        problem: build(STATUS_CODES[status] ?? 'validation_failed', (error as Error).message),
        headers: {},
      };
    }
    this.logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    return { problem: build('internal'), headers: {} };
  }
}

function build(code: ErrorCode, detail?: string, extra: Record<string, unknown> = {}): Problem {
  const { status, title } = ERRORS[code];
  return { type: problemType(code), title, status, code, ...(detail ? { detail } : {}), ...extra };
}
