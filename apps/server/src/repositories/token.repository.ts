import { Inject, Injectable } from '@nestjs/common';
import { DATABASE } from './tokens.js';
import type { Database } from './database.js';

@Injectable()
export class TokenRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async create(data: {
    id: string;
    userId: string;
    tokenHash: string;
    expiresAt: Date;
    address: string;
  }): Promise<void> {
    await this.db.token.create({ data });
  }

  findByHash(tokenHash: string) {
    return this.db.token.findUnique({ where: { tokenHash }, include: { user: true } });
  }

  /**
   * Of `ids`, the tokens that would still authenticate (unrevoked, unexpired, their user enabled),
   * with their user's role now: one query for every open event stream of a server.
   */
  async findValid(ids: string[]): Promise<Map<string, 'user' | 'admin'>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.token.findMany({
      where: { id: { in: ids }, revokedAt: null, expiresAt: { gt: new Date() }, user: { disabled: false } },
      select: { id: true, user: { select: { role: true } } },
    });
    return new Map(rows.map((row) => [row.id, row.user.role]));
  }

  async touch(id: string, at: Date): Promise<void> {
    await this.db.token.update({ where: { id }, data: { lastUsedAt: at } });
  }

  async revoke(id: string): Promise<void> {
    await this.db.token.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
  }

  async revokeAllForUser(userId: string): Promise<void> {
    await this.db.token.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: new Date() } });
  }
}
