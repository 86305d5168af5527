import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Workspace } from '@upc/protocol';
import { type Actor, isAdmin } from '../actor.js';
import { ApiException, notFound } from '../errors.js';
import type { Prisma } from '../generated/prisma/client.js';
import { OBJECT_STORE } from '../repositories/tokens.js';
import { UserRepository } from '../repositories/user.repository.js';
import { WorkspaceRepository, type WorkspaceRow } from '../repositories/workspace.repository.js';
import type { OwnedFilter, Slice } from '../repositories/slice.js';
import type { ObjectStore } from '../store/object-store.js';
import { AuditService } from './audit.service.js';
import { toWorkspace } from './dto.js';
import { ownerNameOf } from './owner-name.js';
import { listOwned, type Paged } from './paging.js';
import { checkPolicyOverride } from './policy-check.js';
import { workspacePrefix } from './storage-keys.js';

const DELETE_BATCH = 1000;

@Injectable()
export class WorkspaceService {
  private readonly logger = new Logger('WorkspaceService');

  constructor(
    private readonly workspaces: WorkspaceRepository,
    private readonly users: UserRepository,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    private readonly audit: AuditService,
  ) {}

  /**
   * The workspace if the actor owns it or is an admin. Others get the same 404 as for a workspace
   * that does not exist, so ids cannot be probed.
   */
  async requireAccess(actor: Actor, id: string): Promise<WorkspaceRow> {
    const workspace = await this.workspaces.findById(id);
    if (!workspace || (workspace.ownerId !== actor.id && !isAdmin(actor))) throw notFound('workspace');
    return workspace;
  }

  async create(
    actor: Actor,
    request: { name: string; policy: Record<string, unknown> | null; ownerId?: string | undefined },
  ): Promise<Workspace> {
    const ownerId = request.ownerId ?? actor.id;
    let ownerName = actor.username;
    if (ownerId !== actor.id) {
      if (!isAdmin(actor))
        throw new ApiException('forbidden', 'only an admin may create a workspace for another user');
      const owner = await this.users.findById(ownerId);
      if (!owner) throw notFound('owner');
      ownerName = owner.username;
    }
    const policy = request.policy === null ? null : checkPolicyOverride(request.policy);
    let row: WorkspaceRow;
    try {
      row = await this.workspaces.create({
        id: randomUUID(),
        ownerId,
        name: request.name,
        policy: policy as Prisma.InputJsonValue | null,
      });
    } catch (error) {
      if ((error as { code?: string }).code === 'P2002') {
        throw new ApiException('workspace_name_taken', `a workspace named "${request.name}" exists already`);
      }
      throw error;
    }
    await this.audit.record(actor, {
      action: 'workspace.create',
      targetType: 'workspace',
      targetId: row.id,
      workspaceId: row.id,
      details: { name: row.name, ownerId },
    });
    return toWorkspace(row, ownerName, 0);
  }

  /**
   * The id of the actor's own workspace named `name`, created as `create` does (audited) when they
   * have none. When another sign-in of the same user creates it between the lookup and the insert,
   * that one is found instead of answering workspace_name_taken.
   */
  async ensureOwn(actor: Actor, name: string): Promise<string> {
    const existing = await this.workspaces.findByName(actor.id, name);
    if (existing) return existing.id;
    try {
      return (await this.create(actor, { name, policy: null })).id;
    } catch (error) {
      const lostRace = error instanceof ApiException && error.code === 'workspace_name_taken';
      const created = lostRace ? await this.workspaces.findByName(actor.id, name) : null;
      if (!created) throw error;
      return created.id;
    }
  }

  /**
   * Workspaces by name: an admin's of anyone (or of `ownerId`), a user's of their own only; `search`
   * matches the name or the owner's username, `limit` and `offset` take a page (with the total).
   */
  list(actor: Actor, query: OwnedFilter & Slice = {}): Promise<Paged<Workspace>> {
    return listOwned(actor, query, this.workspaces, async (rows) => {
      const bytes = await this.workspaces.storedBytes(rows.map((row) => row.id));
      return rows.map((row) => toWorkspace(row, row.owner.username, bytes.get(row.id) ?? 0));
    });
  }

  async get(actor: Actor, id: string): Promise<Workspace> {
    return this.answer(actor, await this.requireAccess(actor, id));
  }

  /** Checked as every agent will read it (checkPolicyOverride); null: the default policy again. */
  async setPolicy(actor: Actor, id: string, document: Record<string, unknown> | null): Promise<Workspace> {
    await this.requireAccess(actor, id);
    const policy = document === null ? null : checkPolicyOverride(document);
    const row = await this.workspaces.setPolicy(id, policy as Prisma.InputJsonValue | null);
    await this.audit.record(actor, {
      action: 'workspace.set_policy',
      targetType: 'workspace',
      targetId: id,
      workspaceId: id,
    });
    return this.answer(actor, row);
  }

  /** Admins only (the controller checks): null lifts the quota. */
  async setQuota(actor: Actor, id: string, quotaBytes: number | null): Promise<Workspace> {
    await this.requireAccess(actor, id);
    const row = await this.workspaces.setQuota(id, quotaBytes === null ? null : BigInt(quotaBytes));
    await this.audit.record(actor, {
      action: 'workspace.set_quota',
      targetType: 'workspace',
      targetId: id,
      workspaceId: id,
      details: { quotaBytes },
    });
    return this.answer(actor, row);
  }

  /** A workspace as the API answers it: with its owner's username and the bytes it stores. */
  private async answer(actor: Actor, row: WorkspaceRow): Promise<Workspace> {
    const [ownerName, bytes] = await Promise.all([
      ownerNameOf(this.users, actor, row.ownerId, 'workspace'),
      this.workspaces.storedBytes([row.id]),
    ]);
    return toWorkspace(row, ownerName, bytes.get(row.id) ?? 0);
  }

  /** Deletes the rows first, so nothing references the bytes, then the bytes under the workspace's prefix. */
  async delete(actor: Actor, id: string): Promise<void> {
    const row = await this.requireAccess(actor, id);
    await this.workspaces.delete(id);
    await this.audit.record(actor, {
      action: 'workspace.delete',
      targetType: 'workspace',
      targetId: id,
      workspaceId: id,
      details: { name: row.name, ownerId: row.ownerId },
    });
    await this.deleteStoredBytes(id);
  }

  async deleteAllOwnedBy(actor: Actor, ownerId: string): Promise<void> {
    for (const row of await this.workspaces.list({ ownerId })) await this.delete(actor, row.id);
  }

  private async deleteStoredBytes(id: string): Promise<void> {
    try {
      let batch: string[] = [];
      for await (const key of this.store.listPrefix(workspacePrefix(id))) {
        batch.push(key);
        if (batch.length === DELETE_BATCH) {
          await this.store.deleteMany(batch);
          batch = [];
        }
      }
      await this.store.deleteMany(batch);
    } catch (error) {
      // The rows are gone, so these bytes are unreachable; the garbage collector sweeps what is left.
      this.logger.warn(`could not delete every object of workspace ${id}: ${(error as Error).message}`);
    }
  }
}
