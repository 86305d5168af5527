import { Inject, Injectable } from '@nestjs/common';
import type { Prisma, User } from '../generated/prisma/client.js';
import { literal, type Slice } from './slice.js';
import { DATABASE } from './tokens.js';
import type { Database } from './database.js';

export type UserRow = User;

/** Usernames are lower case, so a search is too. */
const userFilter = (search?: string): Prisma.UserWhereInput =>
  search ? { username: { contains: literal(search.toLowerCase()) } } : {};

@Injectable()
export class UserRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  findById = (id: string) => this.db.user.findUnique({ where: { id } });
  findByUsername = (username: string) => this.db.user.findUnique({ where: { username } });

  /** Users whose name contains `search`, by name; `page` takes a slice of them. */
  list(search?: string, page: Slice = {}): Promise<UserRow[]> {
    return this.db.user.findMany({
      where: userFilter(search),
      orderBy: { username: 'asc' },
      skip: page.offset,
      take: page.limit,
    });
  }

  count(search?: string): Promise<number> {
    return this.db.user.count({ where: userFilter(search) });
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
