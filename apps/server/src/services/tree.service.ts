import { Inject, Injectable } from '@nestjs/common';
import { type Entry, TreeFormatError } from '@upc/image';
import type { ObjectLocation } from '../repositories/object.repository.js';
import { WORKERS } from '../repositories/tokens.js';
import {
  type DiffLevel,
  type TreePage,
  type TreeRef,
  type TreeSummary,
  work,
  type WorkRequest,
  type WorkResult,
} from '../workers/tree-work.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import { ObjectService } from './object.service.js';

/**
 * Trees stored this small (about 300 entries) are worked on where the request is answered: the
 * round trip to a worker would cost more. Anything larger goes to a worker.
 */
const INLINE_BYTES = 64 * 1024;

/**
 * A workspace's stored trees, read for the server's own use (browsing, diffs, restores): what a
 * folder holds, a page of it, one level of a diff, a folder with one entry changed. Big trees are
 * decoded in worker threads (tree-work.ts), never on the thread that answers requests. The caller
 * has checked access; every tree must be one the workspace stores.
 */
@Injectable()
export class TreeService {
  constructor(
    @Inject(WORKERS) private readonly workers: WorkerPool,
    private readonly objects: ObjectService,
  ) {}

  /** `limit` entries of the folder from `offset`, folders first, and how many it holds. */
  list(workspaceId: string, tree: string, offset: number, limit: number): Promise<TreePage> {
    return this.run(workspaceId, [tree], ([ref]) => ({ op: 'list', tree: ref as TreeRef, offset, limit }));
  }

  /** The entry named `name` in the folder, if it has one. */
  async child(workspaceId: string, tree: string, name: string): Promise<Entry | undefined> {
    const entry = await this.run(workspaceId, [tree], ([ref]) => ({
      op: 'child',
      tree: ref as TreeRef,
      name,
    }));
    return entry ?? undefined;
  }

  /**
   * The entry at `segments` below the tree `root`, or undefined when a step is missing or is not a
   * folder. With `parents`, the folder entries passed on the way down are pushed onto it.
   */
  async entryAt(
    workspaceId: string,
    root: string,
    segments: readonly string[],
    parents?: Entry[],
  ): Promise<Entry | undefined> {
    let tree = root;
    for (let i = 0; i < segments.length; i++) {
      const entry = await this.child(workspaceId, tree, segments[i] as string);
      if (!entry) return undefined;
      if (i === segments.length - 1) return entry;
      if (entry.type !== 'dir') return undefined;
      parents?.push(entry);
      tree = entry.tree;
    }
    return undefined;
  }

  /** One level of the changes from `before` to `after` (null: an empty folder); see diffLevel. */
  diffLevel(
    workspaceId: string,
    before: string | null,
    after: string | null,
    prefix: string,
    budget: number,
  ): Promise<DiffLevel> {
    return this.run(workspaceId, [before, after], ([a, b]) => ({
      op: 'diff',
      before: a ?? null,
      after: b ?? null,
      prefix,
      budget,
    }));
  }

  /**
   * The folder `tree` (null: an empty one) with its entry `name` replaced by `replacement`, or
   * removed without one, stored (objects first). Returns the new tree's id.
   */
  async replace(
    workspaceId: string,
    tree: string | null,
    name: string,
    replacement: Entry | undefined,
  ): Promise<string> {
    const made = await this.run(workspaceId, [tree], ([ref]) => ({
      op: 'replace',
      tree: ref ?? null,
      name,
      replacement,
    }));
    await this.objects.storeEncoded(workspaceId, made.hash, made.stored);
    return made.hash;
  }

  /** What the folder holds for the count of a version's size (see expanded-size.ts). */
  summary(workspaceId: string, tree: string): Promise<TreeSummary> {
    return this.run(workspaceId, [tree], ([ref]) => ({ op: 'summary', tree: ref as TreeRef }));
  }

  /**
   * Runs the request `build` makes of these trees: here when all are small, in a worker otherwise,
   * sending a tree's bytes only when the worker has not kept it. A tree that does not decode is
   * corrupt data in the store: a server error, logged, not the client's.
   */
  private async run<R extends WorkRequest>(
    workspaceId: string,
    trees: readonly (string | null)[],
    build: (refs: (TreeRef | null)[]) => R,
  ): Promise<WorkResult<R>> {
    const locations = await Promise.all(
      trees.map(async (hash) => (hash === null ? null : this.objects.locate(workspaceId, hash))),
    );
    const refs = (load: boolean) =>
      Promise.all(
        locations.map(async (location) => (location === null ? null : this.ref(workspaceId, location, load))),
      );
    try {
      if (locations.every((location) => location === null || location.size <= INLINE_BYTES)) {
        return await work(build(await refs(true)));
      }
      const affinity = locations.find((location) => location !== null)?.hash;
      return await this.workers.run(async (load) => build(await refs(load)), affinity);
    } catch (error) {
      if (error instanceof TreeFormatError) throw new Error(`a stored tree is invalid: ${error.message}`);
      throw error;
    }
  }

  private async ref(workspaceId: string, location: ObjectLocation, load: boolean): Promise<TreeRef> {
    return {
      hash: location.hash,
      stored: load ? await this.objects.readStored(workspaceId, location) : undefined,
    };
  }
}
