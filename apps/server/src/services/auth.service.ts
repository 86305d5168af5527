import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { LoginResponse, User } from '@upc/protocol';
import type { Actor } from '../actor.js';
import type { Config } from '../config.js';
import { ApiException } from '../errors.js';
import { LoginThrottleRepository, type ThrottleRule } from '../repositories/login-throttle.repository.js';
import { TokenRepository } from '../repositories/token.repository.js';
import { CONFIG } from '../repositories/tokens.js';
import { UserRepository, type UserRow } from '../repositories/user.repository.js';
import { AuditService } from './audit.service.js';
import { toUser } from './dto.js';
import { decoyHash, hashToken, newToken, verifyPassword } from './secrets.js';

const TOUCH_EVERY_MS = 60_000;

@Injectable()
export class AuthService {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly users: UserRepository,
    private readonly tokens: TokenRepository,
    private readonly throttles: LoginThrottleRepository,
    private readonly audit: AuditService,
  ) {}

  async login(username: string, password: string, address: string): Promise<LoginResponse> {
    const { user, reset } = await this.verifyCredentials(username, password, address);
    const [session] = await Promise.all([this.issueToken(user, address, randomUUID()), reset]);
    return session;
  }

  /**
   * Signs in like `login`, then does `work` as the signed-in user before any token exists. The token
   * is issued (and the sign-in audited) last, only once `work` succeeded: when it throws, its error is
   * the answer and there is no token to revoke, not even for a moment. `work`'s actor carries the id
   * the token will have.
   */
  async loginWith<T>(
    username: string,
    password: string,
    address: string,
    work: (actor: Actor) => Promise<T>,
  ): Promise<{ session: LoginResponse; result: T }> {
    const { user, reset } = await this.verifyCredentials(username, password, address);
    const tokenId = randomUUID();
    const [result] = await Promise.all([work(actorOf(user, tokenId, address)), reset]);
    return { session: await this.issueToken(user, address, tokenId), result };
  }

  async logout(actor: Actor): Promise<void> {
    await this.tokens.revoke(actor.tokenId);
    await this.audit.record(actor, { action: 'auth.logout', targetType: 'user', targetId: actor.id });
  }

  /** The actor behind a bearer token; 401 when it is unknown, revoked or expired, 403 when its user is disabled. */
  async authenticate(token: string | undefined, address: string): Promise<Actor> {
    if (!token) throw new ApiException('unauthenticated', 'send "Authorization: Bearer <token>"');
    const row = await this.tokens.findByHash(hashToken(token));
    const now = new Date();
    if (!row || row.revokedAt !== null || row.expiresAt <= now) throw new ApiException('token_revoked');
    if (row.user.disabled) throw new ApiException('user_disabled');
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > TOUCH_EVERY_MS) {
      await this.tokens.touch(row.id, now);
    }
    return actorOf(row.user, row.id, address);
  }

  async me(actor: Actor): Promise<User> {
    const user = await this.users.findById(actor.id);
    if (!user) throw new ApiException('token_revoked');
    return toUser(user);
  }

  /**
   * The user whose password this is, for a sign-in from `address`: 429 while the sign-in limit says
   * wait, 401 (audited as a failure) for a wrong username or password, 403 for a disabled user. The
   * try is counted before the password is hashed, so parallel tries cannot pass the limit together.
   * `reset`, the limit's count started again for this user and address, runs beside what the
   * sign-in does next (one database round trip off the sign-in's path); the caller awaits it.
   */
  private async verifyCredentials(
    username: string,
    password: string,
    address: string,
  ): Promise<{ user: UserRow; reset: Promise<void> }> {
    const name = username.toLowerCase();
    // The user is looked up while the try is counted (a refused one is never hashed).
    const [, user] = await Promise.all([this.admit(name, address), this.users.findByUsername(name)]);
    const valid = await verifyPassword(user?.passwordHash ?? (await decoyHash()), password);
    if (!user || !valid) {
      await this.throttles.prune(this.config.login.windowSeconds);
      await this.audit.record(null, {
        action: 'auth.login_failed',
        targetType: 'user',
        targetId: user?.id ?? null,
        address,
        details: { username: name },
      });
      throw new ApiException('invalid_credentials');
    }
    if (user.disabled) throw new ApiException('user_disabled');
    const reset = this.throttles.succeeded(name, address);
    reset.catch(() => undefined); // awaited by the caller, beside its next step
    return { user, reset };
  }

  private async issueToken(user: UserRow, address: string, tokenId: string): Promise<LoginResponse> {
    const token = newToken();
    const expiresAt = new Date(Date.now() + this.config.tokenTtlMs);
    await Promise.all([
      this.tokens.create({
        id: tokenId,
        userId: user.id,
        tokenHash: hashToken(token),
        expiresAt,
        address,
      }),
      // Signed in, the user is the one who did it.
      this.audit.record(null, {
        action: 'auth.login',
        actorId: user.id,
        targetType: 'user',
        targetId: user.id,
        address,
      }),
    ]);
    return { token, expiresAt: expiresAt.toISOString(), user: toUser(user) };
  }

  /**
   * The sign-in limit, per username per address and per address: past `maxFailuresPer…` tries, each
   * further try from there waits longer than the last (backoff), rather than a lockout that anyone
   * anywhere could put on a user. A user's right password from another address is never held up by
   * someone else's failures.
   */
  private async admit(username: string, address: string): Promise<void> {
    const { windowSeconds, maxFailuresPerUser, maxFailuresPerAddress, backoffSeconds } = this.config.login;
    const rule = (limit: number): ThrottleRule => ({ limit, backoffSeconds, windowSeconds });
    const admission = await this.throttles.admit(username, address, {
      user: rule(maxFailuresPerUser),
      address: rule(maxFailuresPerAddress),
    });
    if (admission.admitted) return;
    const { scope, failures, retryAfterSeconds } = admission;
    await this.audit.record(null, {
      action: 'auth.rate_limited',
      targetType: 'user',
      address,
      details: { username, scope, failures, retryAfterSeconds },
    });
    const from = scope === 'user' ? 'for this user from this address' : 'from this address';
    throw new ApiException(
      'rate_limited',
      `too many failed sign-ins ${from}; retry in ${retryAfterSeconds} s`,
      { retryAfterSeconds },
      { 'retry-after': String(retryAfterSeconds) },
    );
  }
}

const actorOf = (user: UserRow, tokenId: string, address: string): Actor => ({
  id: user.id,
  username: user.username,
  role: user.role,
  tokenId,
  address,
});
