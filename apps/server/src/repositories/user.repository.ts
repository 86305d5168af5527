import { Inject, Injectable } from '@nestjs/common';
import type { User } from '../generated/prisma/client.js';
import { DATABASE } from './tokens.js';
import type { Database } from './database.js';

export type UserRow = User;

@Injectable()
export class UserRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  findById = (id: string) => this.db.user.findUnique({ where: { id } });
  findByUsername = (username: string) => this.db.user.findUnique({ where: { username } });

  list(search?: string): Promise<UserRow[]> {
    return this.db.user.findMany({
      where: search ? { username: { contains: search.toLowerCase() } } : {},
      orderBy: { username: 'asc' },
    });
  }

  create(data: {
    id: string;
    username: string;
    role: 'user' | 'admin';
    passwordHash: string;
  }): Promise<UserRow> {
    return this.db.user.create({ data });
  }

  update(id: string, data: Partial<Pick<UserRow, 'disabled' | 'role' | 'passwordHash'>>): Promise<UserRow> {
    return this.db.user.update({ where: { id }, data: { ...data, updatedAt: new Date() } });
  }

  async delete(id: string): Promise<void> {
    await this.db.user.delete({ where: { id } });
  }

  countActiveAdmins(): Promise<number> {
    return this.db.user.count({ where: { role: 'admin', disabled: false } });
  }
}
