import {
  applyDecorators,
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { RouteConfig } from '@nestjs/platform-fastify';
import type { FastifyContextConfig, FastifyRequest } from 'fastify';
import type { Actor } from '../actor.js';
import { ApiException } from '../errors.js';
import { AuthService } from '../services/auth.service.js';

const ACCESS = 'upc:access';
type Access = 'public' | 'admin';

/** The Fastify route config of a @Public() route, read before the body is (authenticate-first.ts). */
export const PUBLIC_ROUTE = 'upcPublic' satisfies keyof FastifyContextConfig;

/**
 * No token needed. On a route handler only: the route's Fastify config says so too, and a route
 * whose config does not is authenticated before its body is read.
 */
export const Public = () =>
  applyDecorators(SetMetadata(ACCESS, 'public' satisfies Access), RouteConfig({ [PUBLIC_ROUTE]: true }));
/** Admins only; everyone else gets 403. */
export const AdminOnly = () => SetMetadata(ACCESS, 'admin' satisfies Access);

/** A request, with its actor once the token was checked (authenticate-first.ts, or the guard). */
export type AuthedRequest = FastifyRequest & { actor?: Actor };

/** The bearer token of `Authorization: Bearer <token>`, if any. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
}

/**
 * Every route needs a valid bearer token unless marked @Public(). The token was checked before the
 * body was read (authenticate-first.ts); the guard checks it itself for a request that was not.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const access = this.reflector.getAllAndOverride<Access | undefined>(ACCESS, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (access === 'public') return true;
    const request = context.switchToHttp().getRequest<AuthedRequest>();
    const actor = request.actor ?? (await this.auth.authenticate(bearerToken(request), request.ip));
    if (access === 'admin' && actor.role !== 'admin') throw new ApiException('forbidden', 'admins only');
    request.actor = actor;
    return true;
  }
}

export const CurrentActor = createParamDecorator((_: unknown, context: ExecutionContext): Actor => {
  const actor = context.switchToHttp().getRequest<AuthedRequest>().actor;
  if (!actor) throw new ApiException('unauthenticated');
  return actor;
});

export const ClientAddress = createParamDecorator(
  (_: unknown, context: ExecutionContext): string => context.switchToHttp().getRequest<FastifyRequest>().ip,
);
