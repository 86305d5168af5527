import { Injectable } from '@nestjs/common';
import type { Lease } from '../generated/prisma/client.js';
import type { Transaction } from './database.js';

export type LeaseRow = Lease;

export interface LeaseWithHolder extends LeaseRow {
  deviceName: string;
  username: string;
}

/** Lease rows are read and written only under the workspace's row lock (WorkspaceRepository.withLock). */
@Injectable()
export class LeaseRepository {
  async find(tx: Transaction, workspaceId: string): Promise<LeaseWithHolder | undefined> {
    const lease = await tx.lease.findUnique({ where: { workspaceId }, include: { device: true } });
    if (!lease) return undefined;
    const user = await tx.user.findUnique({ where: { id: lease.userId }, select: { username: true } });
    const { device, ...row } = lease;
    return { ...row, deviceName: device.name, username: user?.username ?? '(deleted user)' };
  }

  async put(tx: Transaction, lease: LeaseRow): Promise<LeaseRow> {
    const { workspaceId, deviceId, userId, fencingToken, acquiredAt, renewedAt, expiresAt } = lease;
    const row = { deviceId, userId, fencingToken, acquiredAt, renewedAt, expiresAt };
    return tx.lease.upsert({ where: { workspaceId }, create: { workspaceId, ...row }, update: row });
  }

  async delete(tx: Transaction, workspaceId: string): Promise<void> {
    await tx.lease.deleteMany({ where: { workspaceId } });
  }
}
