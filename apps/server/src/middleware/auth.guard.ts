import {
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { Actor } from '../actor.js';
import { ApiException } from '../errors.js';
import { AuthService } from '../services/auth.service.js';

const ACCESS = 'upc:access';
type Access = 'public' | 'admin';

/** No token needed. */
export const Public = () => SetMetadata(ACCESS, 'public' satisfies Access);
/** Admins only; everyone else gets 403. */
export const AdminOnly = () => SetMetadata(ACCESS, 'admin' satisfies Access);

type AuthedRequest = FastifyRequest & { actor?: Actor };

/** Every route needs a valid bearer token unless marked @Public(). */
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
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const actor = await this.auth.authenticate(token, request.ip);
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
