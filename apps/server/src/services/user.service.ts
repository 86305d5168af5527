import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { CreateUserRequest, UpdateUserRequest, User } from '@upc/protocol';
import type { Actor } from '../actor.js';
import { ApiException, notFound } from '../errors.js';
import type { Slice } from '../repositories/slice.js';
import { TokenRepository } from '../repositories/token.repository.js';
import { UserRepository, type UserRow } from '../repositories/user.repository.js';
import { AuditService } from './audit.service.js';
import { toUser } from './dto.js';
import { listPage, type Paged } from './paging.js';
import { hashPassword } from './secrets.js';
import { WorkspaceService } from './workspace.service.js';

/** Account administration; the controller admits admins only. */
@Injectable()
export class UserService {
  constructor(
    private readonly users: UserRepository,
    private readonly tokens: TokenRepository,
    private readonly workspaces: WorkspaceService,
    private readonly audit: AuditService,
  ) {}

  async create(actor: Actor | null, request: Required<CreateUserRequest>): Promise<User> {
    if (await this.users.findByUsername(request.username)) {
      throw new ApiException('username_taken', `the username "${request.username}" is taken`);
    }
    let row: UserRow;
    try {
      row = await this.users.create({
        id: randomUUID(),
        username: request.username,
        role: request.role,
        passwordHash: await hashPassword(request.password),
      });
    } catch (error) {
      if ((error as { code?: string }).code === 'P2002') throw new ApiException('username_taken');
      throw error;
    }
    await this.audit.record(actor, {
      action: 'user.create',
      targetType: 'user',
      targetId: row.id,
      details: { username: row.username, role: row.role },
    });
    return toUser(row);
  }

  /** Users by name; `search` matches the username, `limit` and `offset` take a page (with the total). */
  async list(query: Slice & { search?: string | undefined } = {}): Promise<Paged<User>> {
    const { search, ...slice } = query;
    const { rows, total } = await listPage(
      slice,
      (page) => this.users.list(search || undefined, page),
      () => this.users.count(search || undefined),
    );
    return { items: rows.map(toUser), total };
  }

  async update(actor: Actor, id: string, request: UpdateUserRequest): Promise<User> {
    const user = await this.require(id);
    const losesAdmin =
      user.role === 'admin' && !user.disabled && (request.disabled === true || request.role === 'user');
    if (losesAdmin) await this.keepOneAdmin();
    const row = await this.users.update(id, request);
    if (request.disabled === true) await this.tokens.revokeAllForUser(id);
    await this.audit.record(actor, {
      action:
        request.disabled === undefined ? 'user.update' : request.disabled ? 'user.disable' : 'user.enable',
      targetType: 'user',
      targetId: id,
      details: { ...request },
    });
    return toUser(row);
  }

  async resetPassword(actor: Actor, id: string, password: string): Promise<void> {
    await this.require(id);
    await this.users.update(id, { passwordHash: await hashPassword(password) });
    await this.tokens.revokeAllForUser(id);
    await this.audit.record(actor, { action: 'user.reset_password', targetType: 'user', targetId: id });
  }

  async delete(actor: Actor, id: string): Promise<void> {
    const user = await this.require(id);
    if (user.role === 'admin' && !user.disabled) await this.keepOneAdmin();
    await this.workspaces.deleteAllOwnedBy(actor, id);
    await this.users.delete(id);
    await this.audit.record(actor, {
      action: 'user.delete',
      targetType: 'user',
      targetId: id,
      details: { username: user.username },
    });
  }

  private async require(id: string): Promise<UserRow> {
    const user = await this.users.findById(id);
    if (!user) throw notFound('user');
    return user;
  }

  private async keepOneAdmin(): Promise<void> {
    if ((await this.users.countActiveAdmins()) <= 1) throw new ApiException('last_admin');
  }
}
