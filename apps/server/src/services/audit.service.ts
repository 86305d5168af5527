import { Injectable } from '@nestjs/common';
import type { AuditEvent, AuditQuery } from '@upc/protocol';
import type { z } from 'zod';
import type { Actor } from '../actor.js';
import { AuditRepository, type AuditEntry } from '../repositories/audit.repository.js';
import type { Transaction } from '../repositories/database.js';

export type AuditInput = Omit<AuditEntry, 'actorId' | 'address'>;

@Injectable()
export class AuditService {
  constructor(private readonly audit: AuditRepository) {}

  /**
   * Records what `actor` did. Without an actor (a sign-in, before there is one), `entry.actorId`
   * names who it was, when known.
   */
  record(
    actor: Actor | null,
    entry: AuditInput & { address?: string; actorId?: string },
    tx?: Transaction,
  ): Promise<void> {
    const { actorId, ...rest } = entry;
    return this.audit.write(
      { actorId: actor?.id ?? actorId ?? null, address: actor?.address ?? entry.address ?? null, ...rest },
      tx,
    );
  }

  async list(query: z.output<typeof AuditQuery>): Promise<AuditEvent[]> {
    const rows = await this.audit.list({
      actorId: query.actorId,
      workspaceId: query.workspaceId,
      action: query.action,
      since: query.since ? new Date(query.since) : undefined,
      until: query.until ? new Date(query.until) : undefined,
      before: query.before === undefined ? undefined : BigInt(query.before),
      limit: query.limit,
    });
    return rows.map((row) => ({
      id: row.id.toString(),
      at: row.at.toISOString(),
      actorId: row.actorId,
      action: row.action,
      targetType: row.targetType,
      targetId: row.targetId,
      workspaceId: row.workspaceId,
      address: row.address,
      details: row.details as Record<string, unknown>,
    }));
  }
}
