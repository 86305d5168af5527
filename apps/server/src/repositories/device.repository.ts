import { Inject, Injectable } from '@nestjs/common';
import type { Device } from '../generated/prisma/client.js';
import { DATABASE } from './tokens.js';
import type { Database } from './database.js';

export type DeviceRow = Device;

@Injectable()
export class DeviceRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  findById = (id: string) => this.db.device.findUnique({ where: { id } });

  /** One row per (owner, machine): registering the same PC again updates it. */
  register(data: {
    id: string;
    ownerId: string;
    machineId: string;
    name: string;
    os: string;
    agentVersion: string;
  }) {
    const { id, ownerId, machineId, ...details } = data;
    return this.db.device.upsert({
      where: { ownerId_machineId: { ownerId, machineId } },
      create: { id, ownerId, machineId, ...details },
      update: { ...details, lastSeenAt: new Date() },
    });
  }

  heartbeat = (id: string) => this.db.device.update({ where: { id }, data: { lastSeenAt: new Date() } });

  list(ownerId?: string): Promise<DeviceRow[]> {
    return this.db.device.findMany({ where: { ownerId }, orderBy: [{ name: 'asc' }, { createdAt: 'asc' }] });
  }
}
