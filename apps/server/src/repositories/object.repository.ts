import { Inject, Injectable } from '@nestjs/common';
import { DATABASE } from './tokens.js';
import type { Database } from './database.js';

export interface ObjectLocation {
  hash: string;
  size: number;
  packHash: string | null;
  packOffset: number | null;
}

/** Which objects and packs each workspace has in the store. A row exists only once its bytes are durable. */
@Injectable()
export class ObjectRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async present(workspaceId: string, hashes: readonly string[]): Promise<Set<string>> {
    if (hashes.length === 0) return new Set();
    const rows = await this.db.$queryRaw<{ hash: string }[]>`
      SELECT hash FROM stored_objects WHERE workspace_id = ${workspaceId}::uuid AND hash = ANY(${hashes as string[]}::text[])`;
    return new Set(rows.map((row) => row.hash));
  }

  /** Where each of `hashes` the workspace has is stored, in one query; absent hashes have no entry. */
  async locate(workspaceId: string, hashes: readonly string[]): Promise<Map<string, ObjectLocation>> {
    if (hashes.length === 0) return new Map();
    const rows = await this.db.$queryRaw<
      { hash: string; size: bigint; pack_hash: string | null; pack_offset: bigint | null }[]
    >`
      SELECT hash, size, pack_hash, pack_offset FROM stored_objects
      WHERE workspace_id = ${workspaceId}::uuid AND hash = ANY(${hashes as string[]}::text[])`;
    return new Map(
      rows.map((row) => [
        row.hash,
        {
          hash: row.hash,
          size: Number(row.size),
          packHash: row.pack_hash,
          packOffset: row.pack_offset === null ? null : Number(row.pack_offset),
        },
      ]),
    );
  }

  async find(workspaceId: string, hash: string): Promise<ObjectLocation | undefined> {
    const row = await this.db.storedObject.findUnique({ where: { workspaceId_hash: { workspaceId, hash } } });
    if (!row) return undefined;
    return {
      hash: row.hash,
      size: Number(row.size),
      packHash: row.packHash,
      packOffset: row.packOffset === null ? null : Number(row.packOffset),
    };
  }

  /** Records a standalone object; true when it was not recorded before. */
  async addObject(workspaceId: string, hash: string, size: number): Promise<boolean> {
    const inserted = await this.db.$executeRaw`
      INSERT INTO stored_objects (workspace_id, hash, size) VALUES (${workspaceId}::uuid, ${hash}, ${size})
      ON CONFLICT DO NOTHING`;
    return inserted > 0;
  }

  /** Records a pack and every object in it that the workspace did not have yet, in one transaction. */
  async addPack(
    workspaceId: string,
    pack: { hash: string; size: number },
    entries: readonly { hash: string; offset: number; length: number }[],
  ): Promise<boolean> {
    return this.db.$transaction(async (tx) => {
      const inserted = await tx.$executeRaw`
        INSERT INTO packs (workspace_id, hash, size, object_count)
        VALUES (${workspaceId}::uuid, ${pack.hash}, ${pack.size}, ${entries.length}) ON CONFLICT DO NOTHING`;
      if (entries.length > 0) {
        await tx.$executeRaw`
          INSERT INTO stored_objects (workspace_id, hash, size, pack_hash, pack_offset)
          SELECT ${workspaceId}::uuid, e.hash, e.size, ${pack.hash}, e.off
          FROM unnest(${entries.map((e) => e.hash)}::text[], ${entries.map((e) => e.length)}::bigint[],
                      ${entries.map((e) => e.offset)}::bigint[]) AS e(hash, size, off)
          ON CONFLICT DO NOTHING`;
      }
      return inserted > 0;
    });
  }

  async packExists(workspaceId: string, hash: string): Promise<boolean> {
    return (await this.db.pack.count({ where: { workspaceId, hash } })) > 0;
  }
}
