import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { type DirEntry, type Entry, hashTree } from '@upc/image';
import type { RestoreRequest, Version } from '@upc/protocol';
import type { Actor } from '../actor.js';
import { ApiException, notFound } from '../errors.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { Transaction } from '../repositories/database.js';
import { LeaseRepository } from '../repositories/lease.repository.js';
import { VersionRepository } from '../repositories/version.repository.js';
import { type LockedWorkspace, WorkspaceRepository } from '../repositories/workspace.repository.js';
import { AuditService } from './audit.service.js';
import { BrowseService, splitPath } from './browse.service.js';
import { toVersion } from './dto.js';
import { holderOf } from './lease.service.js';
import { ObjectService } from './object.service.js';
import { TreeService } from './tree.service.js';

/** How often a restore is rebuilt when HEAD moved while its trees were being built. */
const ATTEMPTS = 3;

/**
 * Restores a version, or one path of it, as a new `checkpoint` version on top of HEAD. The server
 * builds the new trees itself and stores them before the version row (objects first), then moves
 * HEAD with the same compare-and-swap as a commit. Refused while a device holds the lease: that
 * device would otherwise keep writing over the restore.
 */
@Injectable()
export class RestoreService {
  constructor(
    private readonly browse: BrowseService,
    private readonly versions: VersionRepository,
    private readonly workspaceRows: WorkspaceRepository,
    private readonly leases: LeaseRepository,
    private readonly objects: ObjectService,
    private readonly trees: TreeService,
    private readonly audit: AuditService,
  ) {}

  async restore(actor: Actor, workspaceId: string, request: RestoreRequest): Promise<Version> {
    const source = await this.browse.requireVersion(actor, workspaceId, request.versionId);
    for (let attempt = 1; ; attempt++) {
      // Checked before building anything, so a refused restore leaves no new trees behind.
      const head = await this.workspaceRows.withLock(workspaceId, async (tx, workspace) => {
        await this.refuseIfLeased(tx, workspace);
        return workspace.headVersionId;
      });
      const headRow = head === null ? null : await this.versions.find(workspaceId, head);
      const rootTree =
        request.path === undefined
          ? source.rootTree
          : await this.restorePath(workspaceId, source.rootTree, headRow?.rootTree ?? null, request.path);
      const row = await this.workspaceRows.withLock(workspaceId, async (tx, workspace) => {
        await this.refuseIfLeased(tx, workspace);
        if (workspace.headVersionId !== head) {
          if (attempt < ATTEMPTS) return undefined;
          throw new ApiException('head_moved', 'HEAD kept moving during the restore; try again', {
            head: workspace.headVersionId,
          });
        }
        const whole = request.path === undefined;
        const version = await this.versions.create(
          {
            id: randomUUID(),
            workspaceId,
            parentId: head,
            rootTree,
            kind: 'checkpoint',
            deviceId: null,
            authorId: actor.id,
            stats: whole ? (source.stats as Prisma.InputJsonObject) : {},
            chunker: ((whole ? source.chunker : headRow?.chunker) ?? undefined) as
              Prisma.InputJsonObject | undefined,
            createdAt: workspace.now,
          },
          tx,
        );
        await this.workspaceRows.setHead(tx, workspaceId, version.id);
        await this.audit.record(
          actor,
          {
            action: 'version.restore',
            targetType: 'version',
            targetId: version.id,
            workspaceId,
            details: { sourceVersionId: source.id, path: request.path ?? null, parentId: head, rootTree },
          },
          tx,
        );
        return version;
      });
      if (row) return toVersion(row);
    }
  }

  /** 409 lease_held, naming the device, while a device holds an unexpired lease on the workspace. */
  private async refuseIfLeased(tx: Transaction, workspace: LockedWorkspace): Promise<void> {
    const lease = await this.leases.find(tx, workspace.id);
    if (lease && lease.expiresAt > workspace.now) {
      throw new ApiException(
        'lease_held',
        `the workspace is in use on "${lease.deviceName}" by ${lease.username} since ${lease.acquiredAt.toISOString()}; ` +
          'log out there or force-release the lease first',
        { holder: holderOf(lease) },
      );
    }
  }

  /**
   * HEAD's root with `path` as it was in `sourceRoot`: the source's entry put in place (folders on
   * the way created with the source's attributes when HEAD lacks them), or the path removed when
   * the source did not have it. Every tree on the way is re-encoded and stored; the rest is shared.
   */
  private async restorePath(
    workspaceId: string,
    sourceRoot: string,
    headRoot: string | null,
    path: string,
  ): Promise<string> {
    const segments = splitPath(path);
    const folders: Entry[] = [];
    const wanted = await this.trees.entryAt(workspaceId, sourceRoot, segments, folders);
    if (!wanted && (headRoot === null || !(await this.trees.entryAt(workspaceId, headRoot, segments)))) {
      throw notFound('path in the version or in HEAD');
    }
    const rebuild = async (tree: string | null, depth: number): Promise<string | null> => {
      const name = segments[depth] as string;
      let replacement: Entry | undefined;
      if (depth === segments.length - 1) {
        replacement = wanted;
      } else {
        const existing = tree === null ? undefined : await this.trees.child(workspaceId, tree, name);
        const below = existing?.type === 'dir' ? existing.tree : null;
        // Removing below a folder HEAD does not have: nothing to do on this branch.
        if (below === null && !wanted) return tree;
        const child = await rebuild(below, depth + 1);
        if (child === null) return tree;
        const template = (existing?.type === 'dir' ? existing : folders[depth]) as DirEntry;
        replacement = { ...template, tree: child };
      }
      return this.trees.replace(workspaceId, tree, name, replacement);
    };
    const root = await rebuild(headRoot, 0);
    if (root !== null) return root;
    // HEAD is empty and the path is to be removed: the restored root is an empty folder.
    const { hash, bytes } = hashTree({ entries: [] });
    return this.objects.storeGenerated(workspaceId, bytes, hash);
  }
}
