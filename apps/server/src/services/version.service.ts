import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { Version } from '@upc/protocol';
import type { z } from 'zod';
import type { CommitRequest } from '@upc/protocol';
import type { Actor } from '../actor.js';
import { ApiException, notFound } from '../errors.js';
import { ObjectRepository } from '../repositories/object.repository.js';
import { VersionRepository } from '../repositories/version.repository.js';
import { WorkspaceRepository } from '../repositories/workspace.repository.js';
import { AuditService } from './audit.service.js';
import { DeviceService } from './device.service.js';
import { toVersion } from './dto.js';
import { expandedBytes, TreeMissingError } from './expanded-size.js';
import { TreeService } from './tree.service.js';
import { LeaseService } from './lease.service.js';
import { WorkspaceService } from './workspace.service.js';

type Commit = z.output<typeof CommitRequest>;
const MISSING_LISTED = 100;

@Injectable()
export class VersionService {
  constructor(
    private readonly versions: VersionRepository,
    private readonly objects: ObjectRepository,
    private readonly workspaceRows: WorkspaceRepository,
    private readonly workspaces: WorkspaceService,
    private readonly devices: DeviceService,
    private readonly leases: LeaseService,
    private readonly audit: AuditService,
    private readonly trees: TreeService,
  ) {}

  async list(actor: Actor, workspaceId: string, limit: number, before?: string): Promise<Version[]> {
    await this.workspaces.requireAccess(actor, workspaceId);
    const rows = await this.versions.list(workspaceId, limit, before ? new Date(before) : undefined);
    return rows.map(toVersion);
  }

  async get(actor: Actor, workspaceId: string, versionId: string): Promise<Version> {
    await this.workspaces.requireAccess(actor, workspaceId);
    const row = await this.versions.find(workspaceId, versionId);
    if (!row) throw notFound('version');
    return toVersion(row);
  }

  /**
   * Records a version. Every object it names must be stored already. A `conflict` version keeps
   * what a device that lost its lease had not committed: it never moves HEAD and needs no lease.
   * Any other kind is a compare-and-swap of HEAD against `parentId`, allowed only to the device
   * holding the lease with the current fencing token.
   */
  async commit(actor: Actor, workspaceId: string, request: Commit): Promise<Version> {
    const { quotaBytes } = await this.workspaces.requireAccess(actor, workspaceId);
    await this.devices.requireOwned(actor, request.deviceId);
    await this.requireStored(workspaceId, [request.rootTree, ...request.objects]);
    if (quotaBytes !== null) await this.requireWithinQuota(workspaceId, request.rootTree, quotaBytes);
    const data = {
      id: randomUUID(),
      workspaceId,
      parentId: request.parentId,
      rootTree: request.rootTree,
      kind: request.kind,
      deviceId: request.deviceId,
      authorId: actor.id,
      stats: request.stats,
      chunker: request.chunker ?? undefined,
    };
    const row = await this.workspaceRows.withLock(workspaceId, async (tx, workspace) => {
      if (request.parentId !== null && !(await this.versions.find(workspaceId, request.parentId))) {
        throw new ApiException('validation_failed', 'parentId: is not a version of this workspace');
      }
      if (request.kind !== 'conflict') {
        await this.leases.requireHeld(tx, workspace, request.deviceId, request.fencingToken);
        if (workspace.headVersionId !== request.parentId) {
          throw new ApiException(
            'head_moved',
            `HEAD is ${workspace.headVersionId ?? 'empty'}, not ${request.parentId ?? 'empty'}`,
            { head: workspace.headVersionId },
          );
        }
      }
      const version = await this.versions.create({ ...data, createdAt: workspace.now }, tx);
      if (request.kind !== 'conflict') await this.workspaceRows.setHead(tx, workspaceId, version.id);
      await this.audit.record(
        actor,
        {
          action: 'version.commit',
          targetType: 'version',
          targetId: version.id,
          workspaceId,
          details: { kind: version.kind, parentId: version.parentId, deviceId: request.deviceId },
        },
        tx,
      );
      return version;
    });
    return toVersion(row);
  }

  /**
   * A version's files, as its trees declare them, must fit the workspace's quota as its stored
   * bytes must: a restore writes them all, and one 2 KiB chunk may stand for 64 MiB of zeros, named
   * by any number of files. Counted here from the trees themselves, not from the agent's stats;
   * only the trees no earlier count has seen are read.
   */
  private async requireWithinQuota(workspaceId: string, rootTree: string, quota: bigint): Promise<void> {
    const limit = Number(quota);
    let expanded: number;
    try {
      expanded = await expandedBytes(
        rootTree,
        {
          lookup: (hashes) => this.versions.expandedBytes(workspaceId, hashes),
          summary: (hash) => this.trees.summary(workspaceId, hash),
          record: (sizes) => this.versions.recordExpandedBytes(workspaceId, sizes),
        },
        limit,
      );
    } catch (error) {
      if (!(error instanceof TreeMissingError)) throw error;
      throw new ApiException('missing_objects', `${error.message}; upload it first`, {
        missing: [error.hash],
      });
    }
    if (expanded > limit) {
      throw new ApiException(
        'quota_exceeded',
        `this version's files come to more than the workspace's quota of ${limit} bytes`,
        { quotaBytes: limit },
      );
    }
  }

  private async requireStored(workspaceId: string, hashes: string[]): Promise<void> {
    const unique = [...new Set(hashes)];
    const present = await this.objects.present(workspaceId, unique);
    const missing = unique.filter((hash) => !present.has(hash));
    if (missing.length > 0) {
      throw new ApiException(
        'missing_objects',
        `${missing.length} referenced objects are not stored; upload them first`,
        {
          missing: missing.slice(0, MISSING_LISTED),
        },
      );
    }
  }
}
