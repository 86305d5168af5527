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
