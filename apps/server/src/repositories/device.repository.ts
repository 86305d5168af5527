import { Inject, Injectable } from '@nestjs/common';
import type { Device } from '../generated/prisma/client.js';
import { DATABASE } from './tokens.js';
import type { Database } from './database.js';
import { type OwnedFilter, ownedWhere, type Slice, WITH_OWNER_NAME, type WithOwnerName } from './slice.js';

export type DeviceRow = Device;
/** A device of a list, with its owner's username. */
export type OwnedDeviceRow = WithOwnerName<DeviceRow>;

/** What an agent's heartbeat says about its session (HeartbeatRequest). */
export interface HeartbeatReport {
  state?: string;
  pendingChanges?: number;
  pendingBytes?: number;
}

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

  /**
   * The device was seen now. With a report (a newer agent), its fields replace the last report as a
   * whole, a field left out becoming null; without one (an older agent), the last report stays.
   */
  heartbeat(id: string, report?: HeartbeatReport) {
    const now = new Date();
    return this.db.device.update({
      where: { id },
      data: {
        lastSeenAt: now,
        ...(report
          ? {
              sessionState: report.state ?? null,
              pendingChanges: report.pendingChanges === undefined ? null : BigInt(report.pendingChanges),
              pendingBytes: report.pendingBytes === undefined ? null : BigInt(report.pendingBytes),
              reportedAt: now,
            }
          : {}),
      },
    });
  }

  /**
   * Devices by name (then age and id, so that pages are stable), of one owner if given, whose name,
   * OS or owner's username contains `search`; `page` takes a slice of them. With their owners' names.
   */
  list(filter: OwnedFilter = {}, page: Slice = {}): Promise<OwnedDeviceRow[]> {
    return this.db.device.findMany({
      where: ownedWhere(filter, ['name', 'os']),
      include: WITH_OWNER_NAME,
      orderBy: [{ name: 'asc' }, { createdAt: 'asc' }, { id: 'asc' }],
      skip: page.offset,
      take: page.limit,
    });
  }

  count(filter: OwnedFilter = {}): Promise<number> {
    return this.db.device.count({ where: ownedWhere(filter, ['name', 'os']) });
  }

  async findCacheKey(deviceId: string): Promise<string | undefined> {
    return (await this.db.deviceCacheKey.findUnique({ where: { deviceId } }))?.key;
  }

  /**
   * Stores `key` unless the device has a key already, then reads back whichever is stored. Of two
   * concurrent first calls, the second insert waits on the primary key and then does nothing; the
   * read is a statement of its own, so it sees the first one's committed key. Undefined only if the
   * key was deleted in between.
   */
  async addCacheKeyIfAbsent(deviceId: string, key: string): Promise<string | undefined> {
    await this.db.deviceCacheKey.createMany({ data: [{ deviceId, key }], skipDuplicates: true });
    return this.findCacheKey(deviceId);
  }

  /** True when there was a key to forget. */
  async deleteCacheKey(deviceId: string): Promise<boolean> {
    return (await this.db.deviceCacheKey.deleteMany({ where: { deviceId } })).count > 0;
  }
}
