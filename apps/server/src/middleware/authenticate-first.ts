import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiException } from '../errors.js';
import type { AuthService } from '../services/auth.service.js';
import { type AuthedRequest, bearerToken } from './auth.guard.js';
import type { ProblemFilter } from './problem.filter.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set by @Public() (PUBLIC_ROUTE): the route needs no token. */
    upcPublic?: boolean;
  }
}

/** The most a @Public() route (sign-in, health) reads from someone it does not know yet. */
const PUBLIC_BODY_LIMIT = 64 * 1024;

/**
 * Checks the bearer token of every API request but a @Public() route's as soon as the request's
 * head arrives (Fastify's onRequest), before anything reads its body: a request without a valid
 * token is answered 401 and its body is never parsed or buffered. (It was: twenty unauthenticated
 * 60 MB uploads took the server from 387 MB to 1 GB.) The actor is kept for AuthGuard. A public
 * route's body may say it is at most PUBLIC_BODY_LIMIT bytes.
 */
export function authenticateFirst(
  fastify: FastifyInstance,
  apiPrefix: string,
  auth: AuthService,
  problems: ProblemFilter,
): void {
  const api = `/${apiPrefix}/`;
  // The answer goes before the body is read. Whatever of the body still comes is read and dropped
  // by Node, never kept; the connection stays open, so the client reads the answer rather than
  // failing to write the rest of its body to a closed socket.
  const refuse = (reply: FastifyReply, error: unknown) => {
    const { problem, headers } = problems.toProblem(error);
    return reply.status(problem.status).headers(headers).type('application/problem+json').send(problem);
  };
  fastify.addHook('onRequest', async (request: AuthedRequest, reply: FastifyReply) => {
    const route = request.routeOptions;
    if (route.url === undefined || !route.url.startsWith(api)) return;
    if (route.config.upcPublic === true) {
      if (declaredLength(request) <= PUBLIC_BODY_LIMIT) return;
      const detail = `a route that needs no token takes at most ${PUBLIC_BODY_LIMIT} bytes`;
      return refuse(reply, new ApiException('payload_too_large', detail));
    }
    try {
      request.actor = await auth.authenticate(bearerToken(request), request.ip);
    } catch (error) {
      return refuse(reply, error);
    }
  });
}

/** Content-Length, 0 when there is none. */
function declaredLength(request: FastifyRequest): number {
  const length = Number(request.headers['content-length'] ?? 0);
  return Number.isFinite(length) ? length : 0;
}
