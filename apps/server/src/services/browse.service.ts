import { Readable } from 'node:stream';
import { Injectable } from '@nestjs/common';
import type { FileEntry } from '@upc/image';
import { MAX_DIFF_CHANGES, type TreeChange, type TreeListing, type VersionDiff } from '@upc/protocol';
import type { Actor } from '../actor.js';
import { ApiException, notFound } from '../errors.js';
import { VersionRepository, type VersionRow } from '../repositories/version.repository.js';
import { ObjectService } from './object.service.js';
import { TreeService } from './tree.service.js';
import { WorkspaceService } from './workspace.service.js';

/** A file of a version, ready to stream: its entry and its bytes, read one chunk at a time. */
export interface FileDownload {
  name: string;
  size: number;
  stream: Readable;
}

export const splitPath = (path: string): string[] => (path === '' ? [] : path.split('/'));

/**
 * Reading versions for the console's file browser: a page of a folder, a file's bytes and a
 * version's changes against its parent. Everything is read from the object store and checked
 * against its id (trees by TreeService, off this thread when they are big); nothing is written.
 */
@Injectable()
export class BrowseService {
  constructor(
    private readonly versions: VersionRepository,
    private readonly workspaces: WorkspaceService,
    private readonly objects: ObjectService,
    private readonly trees: TreeService,
  ) {}

  /** `limit` entries of the folder at `path` from `offset` (folders first), and how many it holds. */
  async listTree(
    actor: Actor,
    workspaceId: string,
    versionId: string,
    query: { path: string; offset: number; limit: number },
  ): Promise<TreeListing> {
    const { path, offset, limit } = query;
    const version = await this.requireVersion(actor, workspaceId, versionId);
    const segments = splitPath(path);
    let tree = version.rootTree;
    if (segments.length > 0) {
      const entry = await this.trees.entryAt(workspaceId, version.rootTree, segments);
      if (entry?.type !== 'dir') throw notFound('folder');
      tree = entry.tree;
    }
    const page = await this.trees.list(workspaceId, tree, offset, limit);
    return { versionId, path, total: page.total, offset, entries: page.entries };
  }

  /** The file's entry and a stream of its bytes that reads one chunk at a time, one ahead. */
  async file(actor: Actor, workspaceId: string, versionId: string, path: string): Promise<FileDownload> {
    const version = await this.requireVersion(actor, workspaceId, versionId);
    const entry = await this.trees.entryAt(workspaceId, version.rootTree, splitPath(path));
    if (!entry) throw notFound('file');
    if (entry.type !== 'file')
      throw new ApiException('validation_failed', `path: is a ${entry.type}, not a file`);
    return {
      name: entry.name,
      size: entry.size,
      stream: Readable.from(this.chunks(workspaceId, entry), { objectMode: false }),
    };
  }

  async diff(actor: Actor, workspaceId: string, versionId: string): Promise<VersionDiff> {
    const version = await this.requireVersion(actor, workspaceId, versionId);
    const parent = version.parentId ? await this.versions.find(workspaceId, version.parentId) : null;
    const changes: TreeChange[] = [];
    const full = await this.diffTrees(workspaceId, parent?.rootTree ?? null, version.rootTree, '', changes);
    return { versionId, parentId: parent?.id ?? null, changes, truncated: !full };
  }

  async requireVersion(actor: Actor, workspaceId: string, versionId: string): Promise<VersionRow> {
    await this.workspaces.requireAccess(actor, workspaceId);
    const version = await this.versions.find(workspaceId, versionId);
    if (!version) throw notFound('version');
    return version;
  }

  /**
   * Appends the changes from `before` to `after` (tree ids; null is an empty folder) in name order,
   * depth first, as libs/image's diffTrees does: equal subtrees are skipped whole, a folder added or
   * removed whole is one change. Each level is compared by TreeService (diffLevel); returns false
   * when it stopped at MAX_DIFF_CHANGES.
   */
  private async diffTrees(
    workspaceId: string,
    before: string | null,
    after: string | null,
    prefix: string,
    out: TreeChange[],
  ): Promise<boolean> {
    if (before === after) return true;
    const budget = MAX_DIFF_CHANGES - out.length;
    const level = await this.trees.diffLevel(workspaceId, before, after, prefix, budget);
    for (const item of level.items) {
      if ('descend' in item) {
        const { path, before: a, after: b } = item.descend;
        if (!(await this.diffTrees(workspaceId, a, b, `${path}/`, out))) return false;
      } else {
        if (out.length >= MAX_DIFF_CHANGES) return false;
        out.push(item.change);
      }
    }
    return !level.truncated;
  }

  private async *chunks(workspaceId: string, entry: FileEntry): AsyncGenerator<Buffer> {
    let sent = 0;
    const read = (i: number) => {
      const hash = entry.chunks[i];
      if (hash === undefined) return undefined;
      const pending = this.objects.readPlaintext(workspaceId, hash);
      pending.catch(() => undefined); // awaited below; this only keeps an early rejection from going unhandled
      return pending;
    };
    let next = read(0);
    for (let i = 0; next; i++) {
      const chunk = await next;
      next = read(i + 1);
      sent += chunk.length;
      if (sent > entry.size) break;
      yield chunk;
    }
    // The header promised entry.size bytes; a chunk list that disagrees must not end as a clean answer.
    if (sent !== entry.size) {
      throw new Error(`file ${entry.name}: its chunks hold ${sent} bytes, its entry says ${entry.size}`);
    }
  }
}
