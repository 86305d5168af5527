import { Readable } from 'node:stream';
import { Injectable } from '@nestjs/common';
import { compareNames, decodeTree, type Entry, type FileEntry, type Tree, TreeFormatError } from '@upc/image';
import {
  MAX_DIFF_CHANGES,
  type TreeChange,
  type TreeEntry,
  type TreeListing,
  type VersionDiff,
} from '@upc/protocol';
import type { Actor } from '../actor.js';
import { ApiException, notFound } from '../errors.js';
import { VersionRepository, type VersionRow } from '../repositories/version.repository.js';
import { ObjectService } from './object.service.js';
import { WorkspaceService } from './workspace.service.js';

/** A file of a version, ready to stream: its entry and its bytes, read one chunk at a time. */
export interface FileDownload {
  name: string;
  size: number;
  stream: Readable;
}

/** Trees read once per request at most: a diff or a restore walks the same folders more than once. */
export class TreeReader {
  private readonly cache = new Map<string, Promise<Tree>>();

  constructor(
    private readonly objects: ObjectService,
    private readonly workspaceId: string,
  ) {}

  read(hash: string): Promise<Tree> {
    let tree = this.cache.get(hash);
    if (!tree) {
      tree = this.objects.readPlaintext(this.workspaceId, hash).then((bytes) => decodeTree(bytes, hash));
      this.cache.set(hash, tree);
    }
    return tree;
  }

  /**
   * The entry at `segments` below the tree `root`, or undefined when a step is missing or is not a
   * folder. With `parents`, the folder entries passed on the way down are pushed onto it.
   */
  async entryAt(root: string, segments: readonly string[], parents?: Entry[]): Promise<Entry | undefined> {
    let tree = root;
    for (let i = 0; i < segments.length; i++) {
      const entry = (await this.read(tree)).entries.find((e) => e.name === segments[i]);
      if (!entry) return undefined;
      if (i === segments.length - 1) return entry;
      if (entry.type !== 'dir') return undefined;
      parents?.push(entry);
      tree = entry.tree;
    }
    return undefined;
  }
}

export const splitPath = (path: string): string[] => (path === '' ? [] : path.split('/'));

const MIN_MS = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/** An entry's microseconds as an ISO 8601 timestamp with six fractional digits (clamped to years 0–9999). */
export function isoFromMicros(micros: number): string {
  const clamped = Math.min(Math.max(micros, MIN_MS * 1000), MAX_MS * 1000 + 999);
  const ms = Math.floor(clamped / 1000);
  const rest = clamped - ms * 1000;
  return new Date(ms).toISOString().replace('Z', `${String(rest).padStart(3, '0')}Z`);
}

const toTreeEntry = (entry: Entry): TreeEntry => ({
  name: entry.name,
  type: entry.type,
  size: entry.type === 'file' ? entry.size : null,
  mtime: isoFromMicros(entry.mtime),
  mode: entry.mode,
  ...(entry.type === 'symlink' ? { target: entry.target } : {}),
});

/**
 * Reading versions for the console's file browser: a folder's listing, a file's bytes and a
 * version's changes against its parent. Everything is read from the object store and checked
 * against its id; nothing is written.
 */
@Injectable()
export class BrowseService {
  constructor(
    private readonly versions: VersionRepository,
    private readonly workspaces: WorkspaceService,
    private readonly objects: ObjectService,
  ) {}

  async listTree(actor: Actor, workspaceId: string, versionId: string, path: string): Promise<TreeListing> {
    const version = await this.requireVersion(actor, workspaceId, versionId);
    const reader = new TreeReader(this.objects, workspaceId);
    const segments = splitPath(path);
    let tree = version.rootTree;
    if (segments.length > 0) {
      const entry = await guard(reader.entryAt(version.rootTree, segments));
      if (entry?.type !== 'dir') throw notFound('folder');
      tree = entry.tree;
    }
    const { entries } = await guard(reader.read(tree));
    const sorted = [...entries].sort(
      (a, b) => Number(b.type === 'dir') - Number(a.type === 'dir') || compareNames(a.name, b.name),
    );
    return { versionId, path, entries: sorted.map(toTreeEntry) };
  }

  /** The file's entry and a stream of its bytes that reads one chunk at a time, one ahead. */
  async file(actor: Actor, workspaceId: string, versionId: string, path: string): Promise<FileDownload> {
    const version = await this.requireVersion(actor, workspaceId, versionId);
    const reader = new TreeReader(this.objects, workspaceId);
    const segments = splitPath(path);
    const entry = await guard(reader.entryAt(version.rootTree, segments));
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
    const reader = new TreeReader(this.objects, workspaceId);
    const changes: TreeChange[] = [];
    const full = await guard(diffTrees(reader, parent?.rootTree ?? null, version.rootTree, '', changes));
    return { versionId, parentId: parent?.id ?? null, changes, truncated: !full };
  }

  async requireVersion(actor: Actor, workspaceId: string, versionId: string): Promise<VersionRow> {
    await this.workspaces.requireAccess(actor, workspaceId);
    const version = await this.versions.find(workspaceId, versionId);
    if (!version) throw notFound('version');
    return version;
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

/** A tree that fails to decode is corrupt data in the store: a server error, logged, not the client's. */
async function guard<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof TreeFormatError) throw new Error(`a stored tree is invalid: ${error.message}`);
    throw error;
  }
}

const sizeOf = (entry: Entry | undefined) => (entry?.type === 'file' ? entry.size : null);

/**
 * Appends the changes from `before` to `after` (tree ids; null is an empty folder) in name order,
 * depth first, as libs/image's diffTrees does: equal subtrees are skipped whole, a folder added or
 * removed whole is one change, a path whose type changed is removed then added, a folder whose own
 * attributes (not its mtime) changed is modified. Returns false when it stopped at MAX_DIFF_CHANGES.
 */
export async function diffTrees(
  reader: TreeReader,
  before: string | null,
  after: string | null,
  prefix: string,
  out: TreeChange[],
): Promise<boolean> {
  if (before === after) return true;
  const [left, right] = await Promise.all([
    before === null ? [] : reader.read(before).then((t) => t.entries),
    after === null ? [] : reader.read(after).then((t) => t.entries),
  ]);
  const push = (change: TreeChange) => {
    if (out.length >= MAX_DIFF_CHANGES) return false;
    out.push(change);
    return true;
  };
  const removed = (a: Entry) =>
    push({ path: prefix + a.name, change: 'removed', type: a.type, sizeBefore: sizeOf(a), sizeAfter: null });
  const added = (b: Entry) =>
    push({ path: prefix + b.name, change: 'added', type: b.type, sizeBefore: null, sizeAfter: sizeOf(b) });
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    const a = left[i];
    const b = right[j];
    const order = a && b ? compareNames(a.name, b.name) : a ? -1 : 1;
    if (order < 0 && a) {
      if (!removed(a)) return false;
      i++;
      continue;
    }
    if (order > 0 && b) {
      if (!added(b)) return false;
      j++;
      continue;
    }
    if (!a || !b) break;
    i++;
    j++;
    const path = prefix + a.name;
    if (a.type !== b.type) {
      if (!removed(a) || !added(b)) return false;
    } else if (a.type === 'dir' && b.type === 'dir') {
      const attributes =
        a.mode !== b.mode || a.owner !== b.owner || a.group !== b.group || a.opaque !== b.opaque;
      const modified = {
        path,
        change: 'modified' as const,
        type: 'dir' as const,
        sizeBefore: null,
        sizeAfter: null,
      };
      if (attributes && !push(modified)) return false;
      if (!(await diffTrees(reader, a.tree, b.tree, `${path}/`, out))) return false;
    } else if (!sameLeaf(a, b)) {
      if (!push({ path, change: 'modified', type: b.type, sizeBefore: sizeOf(a), sizeAfter: sizeOf(b) }))
        return false;
    }
  }
  return true;
}

function sameLeaf(a: Entry, b: Entry): boolean {
  if (a.mode !== b.mode || a.mtime !== b.mtime || a.owner !== b.owner || a.group !== b.group) return false;
  if (a.type === 'file' && b.type === 'file') return a.size === b.size && a.chunks.join() === b.chunks.join();
  if (a.type === 'symlink' && b.type === 'symlink') return a.target === b.target;
  return true;
}
