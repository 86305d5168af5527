import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Device, RegisterDeviceRequest } from '@upc/protocol';
import { type Actor, isAdmin } from '../actor.js';
import { notFound } from '../errors.js';
import { DeviceRepository, type DeviceRow } from '../repositories/device.repository.js';
import { AuditService } from './audit.service.js';
import { toDevice } from './dto.js';

/** A device is one PC as used by one user: (owner, machine id) is unique. */
@Injectable()
export class DeviceService {
  constructor(
    private readonly devices: DeviceRepository,
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
    return toDevice(row);
  }

  async heartbeat(actor: Actor, id: string): Promise<Device> {
    await this.requireOwned(actor, id);
    return toDevice(await this.devices.heartbeat(id));
  }

  async list(actor: Actor, ownerId?: string): Promise<Device[]> {
    if (!isAdmin(actor) && ownerId !== undefined && ownerId !== actor.id) return [];
    return (await this.devices.list(isAdmin(actor) ? ownerId : actor.id)).map(toDevice);
  }

  /** A device the actor registered (admins may use any). */
  async requireOwned(actor: Actor, id: string): Promise<DeviceRow> {
    const device = await this.devices.findById(id);
    if (!device || (device.ownerId !== actor.id && !isAdmin(actor))) throw notFound('device');
    return device;
  }
}
