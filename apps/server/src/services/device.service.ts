import { randomBytes, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { CacheKey, Device, HeartbeatRequest, RegisterDeviceRequest } from '@upc/protocol';
import { type Actor, isAdmin } from '../actor.js';
import { notFound } from '../errors.js';
import { DeviceRepository, type DeviceRow } from '../repositories/device.repository.js';
import type { OwnedFilter, Slice } from '../repositories/slice.js';
import { UserRepository } from '../repositories/user.repository.js';
import { AuditService } from './audit.service.js';
import { toDevice } from './dto.js';
import { ownerNameOf } from './owner-name.js';
import { listOwned, type Paged } from './paging.js';

const CACHE_KEY_BYTES = 32;

/** A device is one PC as used by one user: (owner, machine id) is unique. */
@Injectable()
export class DeviceService {
  constructor(
    private readonly devices: DeviceRepository,
    private readonly users: UserRepository,
    private readonly audit: AuditService,
  ) {}

  async register(actor: Actor, request: RegisterDeviceRequest): Promise<Device> {
    const row = await this.devices.register({ id: randomUUID(), ownerId: actor.id, ...request });
    await this.audit.record(actor, {
      action: 'device.register',
      targetType: 'device',
      targetId: row.id,
      details: { name: row.name, machineId: row.machineId, os: row.os },
    });
    return toDevice(row, actor.username);
  }

  /**
   * The device is alive. What its agent reports (state, pending changes and bytes) is kept on the
   * device for the console's live sessions; an empty body, from an agent that reports nothing,
   * only moves lastSeenAt.
   */
  async heartbeat(actor: Actor, id: string, request: HeartbeatRequest = {}): Promise<Device> {
    const device = await this.requireOwned(actor, id);
    const reports =
      request.state !== undefined ||
      request.pendingChanges !== undefined ||
      request.pendingBytes !== undefined;
    const [row, ownerName] = await Promise.all([
      this.devices.heartbeat(id, reports ? request : undefined),
      ownerNameOf(this.users, actor, device.ownerId, 'device'),
    ]);
    return toDevice(row, ownerName);
  }

  /**
   * PCs by name: an admin's of anyone (or of `ownerId`), a user's of their own only; `search` matches
   * the name, the OS or the owner's username, `limit` and `offset` take a page (with the total).
   */
  list(actor: Actor, query: OwnedFilter & Slice = {}): Promise<Paged<Device>> {
    return listOwned(actor, query, this.devices, (rows) =>
      rows.map((row) => toDevice(row, row.owner.username)),
    );
  }

  /**
   * The key the device's agent encrypts its local cache with, created on first use. Only the owner
   * gets it: to anyone else, admins included, the device does not exist, so that an admin cannot
   * read a user's cache.
   */
  async cacheKey(actor: Actor, id: string): Promise<CacheKey> {
    const device = await this.devices.findById(id);
    if (!device || device.ownerId !== actor.id) throw notFound('device');
    let key = await this.devices.findCacheKey(id);
    while (key === undefined) {
      key = await this.devices.addCacheKeyIfAbsent(id, randomBytes(CACHE_KEY_BYTES).toString('base64'));
    }
    return { key };
  }

  /**
   * Forgets the device's cache key, so that whatever was encrypted with it can no longer be read;
   * the next request creates a new one. The owner or an admin (retiring a lost PC) may. The audit
   * event never carries the key.
   */
  async revokeCacheKey(actor: Actor, id: string): Promise<void> {
    const device = await this.requireOwned(actor, id);
    const hadKey = await this.devices.deleteCacheKey(id);
    await this.audit.record(actor, {
      action: 'device.cache_key_revoked',
      targetType: 'device',
      targetId: id,
      details: { ownerId: device.ownerId, hadKey },
    });
  }

  /** A device the actor registered (admins may use any). */
  async requireOwned(actor: Actor, id: string): Promise<DeviceRow> {
    const device = await this.devices.findById(id);
    if (!device || (device.ownerId !== actor.id && !isAdmin(actor))) throw notFound('device');
    return device;
  }
}
