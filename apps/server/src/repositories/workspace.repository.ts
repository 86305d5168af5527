import { Inject, Injectable } from '@nestjs/common';
import type { Prisma, Workspace } from '../generated/prisma/client.js';
import { DATABASE } from './tokens.js';
import type { Database, Transaction } from './database.js';
import { type OwnedFilter, ownedWhere, type Slice, WITH_OWNER_NAME, type WithOwnerName } from './slice.js';

export type WorkspaceRow = Workspace;
/** A workspace of a list, with its owner's username. */
export type OwnedWorkspaceRow = WithOwnerName<WorkspaceRow>;

/** The workspace row as seen under its lock, with the database's clock. */
export interface LockedWorkspace {
  id: string;
  headVersionId: string | null;
  fencingToken: bigint;
  now: Date;
}

@Injectable()
export class WorkspaceRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  findById = (id: string) => this.db.workspace.findUnique({ where: { id } });
  /** Names are unique per owner, and compared exactly (case included), as the unique index does. */
  findByName = (ownerId: string, name: string) =>
    this.db.workspace.findUnique({ where: { ownerId_name: { ownerId, name } } });

  /**
   * Workspaces by name (then age and id, so that pages are stable), of one owner if given, whose name
   * or owner's username contains `search`; `page` takes a slice of them. With their owners' names.
   */
  list(filter: OwnedFilter = {}, page: Slice = {}): Promise<OwnedWorkspaceRow[]> {
    return this.db.workspace.findMany({
      where: ownedWhere(filter, ['name']),
      include: WITH_OWNER_NAME,
      orderBy: [{ name: 'asc' }, { createdAt: 'asc' }, { id: 'asc' }],
      skip: page.offset,
      take: page.limit,
    });
  }

  count(filter: OwnedFilter = {}): Promise<number> {
    return this.db.workspace.count({ where: ownedWhere(filter, ['name']) });
  }

  create(data: { id: string; ownerId: string; name: string; policy: Prisma.InputJsonValue | null }) {
    return this.db.workspace.create({ data: { ...data, policy: data.policy ?? undefined } });
  }

  setPolicy(id: string, policy: Prisma.InputJsonValue | null) {
    return this.db.workspace.update({
      where: { id },
      data: {
        policy: policy ?? (null as unknown as Prisma.NullableJsonNullValueInput),
        updatedAt: new Date(),
      },
    });
  }

  setQuota(id: string, quotaBytes: bigint | null) {
    return this.db.workspace.update({ where: { id }, data: { quotaBytes, updatedAt: new Date() } });
  }

  async delete(id: string): Promise<void> {
    await this.db.workspace.delete({ where: { id } });
  }

  /** Bytes stored per workspace: standalone objects plus packs. */
  async storedBytes(ids: string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.$queryRaw<{ workspace_id: string; bytes: bigint }[]>`
      SELECT workspace_id, sum(size)::bigint AS bytes FROM (
        SELECT workspace_id, size FROM stored_objects WHERE pack_hash IS NULL AND workspace_id = ANY(${ids}::uuid[])
        UNION ALL
        SELECT workspace_id, size FROM packs WHERE workspace_id = ANY(${ids}::uuid[])
      ) s GROUP BY workspace_id`;
    return new Map(rows.map((row) => [row.workspace_id, Number(row.bytes)]));
  }

  /**
   * Runs `fn` in a transaction holding the workspace's row lock, so that lease grants and HEAD
   * moves on one workspace are serialised across every server replica.
   */
  withLock<T>(id: string, fn: (tx: Transaction, workspace: LockedWorkspace) => Promise<T>): Promise<T> {
    return this.db.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<
        { id: string; head_version_id: string | null; fencing_token: bigint; now: Date }[]
      >`
        SELECT id, head_version_id, fencing_token, now() AS now FROM workspaces WHERE id = ${id}::uuid FOR UPDATE`;
      const row = rows[0];
      if (!row) throw new Error(`workspace ${id} vanished under its lock`);
      return fn(tx, {
        id: row.id,
        headVersionId: row.head_version_id,
        fencingToken: row.fencing_token,
        now: row.now,
      });
    });
  }

  async setFencingToken(tx: Transaction, id: string, token: bigint): Promise<void> {
    await tx.workspace.update({ where: { id }, data: { fencingToken: token } });
  }

  async setHead(tx: Transaction, id: string, versionId: string): Promise<void> {
    await tx.workspace.update({ where: { id }, data: { headVersionId: versionId, updatedAt: new Date() } });
  }
}
