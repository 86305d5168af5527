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
