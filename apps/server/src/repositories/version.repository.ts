import { Inject, Injectable } from '@nestjs/common';
import type { Prisma, Version, VersionKind } from '../generated/prisma/client.js';
import { DATABASE } from './tokens.js';
import type { Database, Transaction } from './database.js';

export type VersionRow = Version;

@Injectable()
export class VersionRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  find = (workspaceId: string, id: string) => this.db.version.findFirst({ where: { id, workspaceId } });

  list(workspaceId: string, limit: number, before?: Date): Promise<VersionRow[]> {
    return this.db.version.findMany({
      where: { workspaceId, createdAt: before ? { lt: before } : undefined },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: limit,
    });
  }

  /**
   * Which of `hashes` the workspace stores, each with the expanded size recorded for it (null: not
   * counted yet); absent hashes are not stored.
   */
  async expandedBytes(workspaceId: string, hashes: readonly string[]): Promise<Map<string, number | null>> {
    if (hashes.length === 0) return new Map();
    const rows = await this.db.$queryRaw<{ hash: string; expanded_bytes: bigint | null }[]>`
      SELECT hash, expanded_bytes FROM stored_objects
      WHERE workspace_id = ${workspaceId}::uuid AND hash = ANY(${hashes as string[]}::text[])`;
    return new Map(
      rows.map((row) => [row.hash, row.expanded_bytes === null ? null : Number(row.expanded_bytes)]),
    );
  }

  /** Records trees' expanded sizes on their rows (a tree's size never changes: its id is its content). */
  async recordExpandedBytes(workspaceId: string, sizes: ReadonlyMap<string, number>): Promise<void> {
    if (sizes.size === 0) return;
    await this.db.$executeRaw`
      UPDATE stored_objects SET expanded_bytes = s.bytes
      FROM unnest(${[...sizes.keys()]}::text[], ${[...sizes.values()]}::bigint[]) AS s(hash, bytes)
      WHERE stored_objects.workspace_id = ${workspaceId}::uuid AND stored_objects.hash = s.hash`;
  }

  create(
    data: {
      id: string;
      workspaceId: string;
      parentId: string | null;
      rootTree: string;
      kind: VersionKind;
      /** Null for versions the server made (a restore). */
      deviceId: string | null;
      authorId: string;
      stats: Prisma.InputJsonObject;
      chunker?: Prisma.InputJsonObject;
      createdAt: Date;
    },
    tx: Transaction | Database = this.db,
  ): Promise<VersionRow> {
    return tx.version.create({ data });
  }
}
