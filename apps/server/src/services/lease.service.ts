import { Inject, Injectable } from '@nestjs/common';
import type { Lease, LeaseHolder } from '@upc/protocol';
import type { Actor } from '../actor.js';
import type { Config } from '../config.js';
import { ApiException } from '../errors.js';
import type { Transaction } from '../repositories/database.js';
import { LeaseRepository, type LeaseWithHolder } from '../repositories/lease.repository.js';
import { CONFIG } from '../repositories/tokens.js';
import { WorkspaceRepository, type LockedWorkspace } from '../repositories/workspace.repository.js';
import { AuditService } from './audit.service.js';
import { DeviceService } from './device.service.js';
import { toLease } from './dto.js';
import { WorkspaceService } from './workspace.service.js';

/**
 * The exclusive right of one device to write a workspace. Every grant (acquire or takeover) and
 * every forced release moves the workspace's fencing token forward, so a holder that lost the
 * lease is refused on its next renew or commit. All of it runs under the workspace's row lock
 * with the database's clock, so several server replicas agree.
 */
@Injectable()
export class LeaseService {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly workspaceRows: WorkspaceRepository,
    private readonly leases: LeaseRepository,
    private readonly workspaces: WorkspaceService,
    private readonly devices: DeviceService,
    private readonly audit: AuditService,
  ) {}

  async get(actor: Actor, workspaceId: string): Promise<Lease | null> {
    await this.workspaces.requireAccess(actor, workspaceId);
    return this.workspaceRows.withLock(workspaceId, async (tx) => {
      const lease = await this.leases.find(tx, workspaceId);
      return lease ? toLease(lease) : null;
    });
  }

  async acquire(actor: Actor, workspaceId: string, deviceId: string, ttlSeconds?: number): Promise<Lease> {
    return this.grant(actor, workspaceId, deviceId, ttlSeconds, false);
  }

  async takeOver(actor: Actor, workspaceId: string, deviceId: string, ttlSeconds?: number): Promise<Lease> {
    return this.grant(actor, workspaceId, deviceId, ttlSeconds, true);
  }

  async renew(actor: Actor, workspaceId: string, deviceId: string, fencingToken: number): Promise<Lease> {
    await this.workspaces.requireAccess(actor, workspaceId);
    await this.devices.requireOwned(actor, deviceId);
    return this.workspaceRows.withLock(workspaceId, async (tx, workspace) => {
      const lease = await this.requireHeld(tx, workspace, deviceId, fencingToken);
      const renewed = await this.leases.put(tx, {
        ...lease,
        renewedAt: workspace.now,
        expiresAt: this.expiry(workspace.now, lease.expiresAt.getTime() - lease.renewedAt.getTime()),
      });
      return toLease(renewed);
    });
  }

  async release(actor: Actor, workspaceId: string, deviceId: string, fencingToken: number): Promise<void> {
    await this.workspaces.requireAccess(actor, workspaceId);
    await this.devices.requireOwned(actor, deviceId);
    await this.workspaceRows.withLock(workspaceId, async (tx, workspace) => {
      const lease = await this.leases.find(tx, workspaceId);
      // Releasing twice is fine: the token is still current and nobody holds the lease.
      if (!lease && workspace.fencingToken === BigInt(fencingToken)) return;
      await this.requireHeld(tx, workspace, deviceId, fencingToken);
      await this.leases.delete(tx, workspaceId);
      await this.audit.record(
        actor,
        {
          action: 'lease.release',
          targetType: 'lease',
          targetId: workspaceId,
          workspaceId,
          details: { deviceId },
        },
        tx,
      );
    });
  }

  /** An owner or admin ends whoever holds the lease; their token becomes stale. */
  async forceRelease(actor: Actor, workspaceId: string): Promise<void> {
    await this.workspaces.requireAccess(actor, workspaceId);
    await this.workspaceRows.withLock(workspaceId, async (tx, workspace) => {
      const lease = await this.leases.find(tx, workspaceId);
      if (!lease) return;
      await this.leases.delete(tx, workspaceId);
      await this.workspaceRows.setFencingToken(tx, workspaceId, workspace.fencingToken + 1n);
      await this.audit.record(
        actor,
        {
          action: 'lease.force_release',
          targetType: 'lease',
          targetId: workspaceId,
          workspaceId,
          details: { previousHolder: holderOf(lease) },
        },
        tx,
      );
    });
  }

  /**
   * The lease row if `deviceId` holds it with `fencingToken`; otherwise 409 stale_fencing_token
   * (a newer grant exists) or lease_not_held, naming the current holder.
   */
  async requireHeld(
    tx: Transaction,
    workspace: LockedWorkspace,
    deviceId: string,
    fencingToken: number,
  ): Promise<LeaseWithHolder> {
    const lease = await this.leases.find(tx, workspace.id);
    const extra = {
      currentFencingToken: Number(workspace.fencingToken),
      holder: lease ? holderOf(lease) : null,
    };
    if (BigInt(fencingToken) !== workspace.fencingToken) {
      throw new ApiException(
        'stale_fencing_token',
        `fencing token ${fencingToken} is stale; the workspace is at ${workspace.fencingToken}`,
        extra,
      );
    }
    if (!lease || lease.deviceId !== deviceId || lease.fencingToken !== workspace.fencingToken) {
      throw new ApiException('lease_not_held', 'this device does not hold the lease', extra);
    }
    return lease;
  }

  private async grant(
    actor: Actor,
    workspaceId: string,
    deviceId: string,
    ttlSeconds: number | undefined,
    takeOver: boolean,
  ): Promise<Lease> {
    await this.workspaces.requireAccess(actor, workspaceId);
    await this.devices.requireOwned(actor, deviceId);
    const ttlMs = (ttlSeconds ?? this.config.leaseTtlSeconds) * 1000;
    return this.workspaceRows.withLock(workspaceId, async (tx, workspace) => {
      const current = await this.leases.find(tx, workspaceId);
      const live = current !== undefined && current.expiresAt > workspace.now;
      if (live && current.deviceId !== deviceId && !takeOver) {
        throw new ApiException(
          'lease_held',
          `the workspace is in use on "${current.deviceName}" by ${current.username} since ${current.acquiredAt.toISOString()}`,
          { holder: holderOf(current) },
        );
      }
      const token = workspace.fencingToken + 1n;
      await this.workspaceRows.setFencingToken(tx, workspaceId, token);
      const lease = await this.leases.put(tx, {
        workspaceId,
        deviceId,
        userId: actor.id,
        fencingToken: token,
        acquiredAt: live && current.deviceId === deviceId ? current.acquiredAt : workspace.now,
        renewedAt: workspace.now,
        expiresAt: this.expiry(workspace.now, ttlMs),
      });
      await this.audit.record(
        actor,
        {
          action: takeOver ? 'lease.takeover' : 'lease.acquire',
          targetType: 'lease',
          targetId: workspaceId,
          workspaceId,
          details: {
            deviceId,
            fencingToken: Number(token),
            previousHolder: current && live && current.deviceId !== deviceId ? holderOf(current) : null,
          },
        },
        tx,
      );
      return toLease(lease);
    });
  }

  private expiry(now: Date, ttlMs: number): Date {
    return new Date(now.getTime() + ttlMs);
  }
}

export function holderOf(lease: LeaseWithHolder): LeaseHolder {
  return {
    deviceId: lease.deviceId,
    deviceName: lease.deviceName,
    userId: lease.userId,
    username: lease.username,
    since: lease.acquiredAt.toISOString(),
    expiresAt: lease.expiresAt.toISOString(),
  };
}
