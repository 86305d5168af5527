import { Inject, Injectable } from '@nestjs/common';
import type { Prisma } from '../generated/prisma/client.js';
import { DATABASE } from './tokens.js';
import type { Database, Transaction } from './database.js';

export interface AuditEntry {
  actorId: string | null;
  action: string;
  targetType: string;
  targetId?: string | null;
  workspaceId?: string | null;
  address?: string | null;
  details?: Prisma.InputJsonObject;
}

export interface AuditFilter {
  actorId?: string;
  workspaceId?: string;
  action?: string;
  since?: Date;
  until?: Date;
  before?: bigint;
  limit: number;
}

@Injectable()
export class AuditRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /** Inside `tx` when given, so the event commits or rolls back with the change it records. */
  async write(entry: AuditEntry, tx: Transaction | Database = this.db): Promise<void> {
    await tx.auditEvent.create({ data: { ...entry, details: entry.details ?? {} } });
  }

  list(filter: AuditFilter) {
    return this.db.auditEvent.findMany({
      where: {
        actorId: filter.actorId,
        workspaceId: filter.workspaceId,
        action: filter.action ? { startsWith: filter.action } : undefined,
        at: { gte: filter.since, lte: filter.until },
        id: filter.before === undefined ? undefined : { lt: filter.before },
      },
      orderBy: { id: 'desc' },
      take: filter.limit,
    });
  }
}
