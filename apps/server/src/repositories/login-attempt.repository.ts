import { Inject, Injectable } from '@nestjs/common';
import { DATABASE } from './tokens.js';
import type { Database } from './database.js';

/** Failed logins, kept in Postgres so that every server replica enforces the same limits. */
@Injectable()
export class LoginAttemptRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async record(username: string, address: string): Promise<void> {
    await this.db.loginAttempt.create({ data: { username, address } });
  }

  async countSince(
    since: Date,
    username: string,
    address: string,
  ): Promise<{ user: number; address: number }> {
    const [user, byAddress] = await Promise.all([
      this.db.loginAttempt.count({ where: { username, at: { gte: since } } }),
      this.db.loginAttempt.count({ where: { address, at: { gte: since } } }),
    ]);
    return { user, address: byAddress };
  }

  /** The oldest failure in the window, so the client can be told when to retry. */
  oldestSince(since: Date, username: string, address: string) {
    return this.db.loginAttempt.findFirst({
      where: { at: { gte: since }, OR: [{ username }, { address }] },
      orderBy: { at: 'asc' },
    });
  }

  async clearForUser(username: string): Promise<void> {
    await this.db.loginAttempt.deleteMany({ where: { username } });
  }

  async prune(before: Date): Promise<void> {
    await this.db.loginAttempt.deleteMany({ where: { at: { lt: before } } });
  }
}
