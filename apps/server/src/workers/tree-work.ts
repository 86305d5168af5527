import {
  decodeObject,
  decodeTree,
  encodeObject,
  type Entry,
  entryDifferences,
  hashTree,
  type PackEntry,
  readPackIndex,
  type Tree,
  TreeFormatError,
} from '@upc/image';
import type { TreeChange, TreeEntry } from '@upc/protocol';

/**
 * The server's CPU-heavy work on images, as pure functions of stored bytes: decoding and checking
 * trees (a folder of 300,000 entries takes seconds), listing, diffing and rewriting them, and
 * checking uploaded objects and packs. Run in worker threads (worker-pool.ts) for anything big, so
 * that the event loop keeps answering; inline for small inputs. Errors are those of libs/image.
 */

/** A tree by id, with its stored bytes when the caller has read them (a worker may have it cached). */
export interface TreeRef {
  hash: string;
  stored?: Uint8Array | undefined;
}

export interface TreePage {
  /** Entries in the folder. */
  total: number;
  /** `limit` entries from `offset`, folders first, then the rest, each group by name. */
  entries: TreeEntry[];
}

/** One step of a diff, in order: a change, or a folder on both sides to compare next. */
export type DiffItem = { change: TreeChange } | { descend: { path: string; before: string; after: string } };

export interface DiffLevel {
  items: DiffItem[];
  /** Stopped at the budget: there is more at this level. */
  truncated: boolean;
}

export type WorkRequest =
  | { op: 'verifyObject'; hash: string; stored: Uint8Array }
  | { op: 'verifyPack'; stored: Uint8Array }
  | { op: 'list'; tree: TreeRef; offset: number; limit: number }
  | { op: 'child'; tree: TreeRef; name: string }
  | { op: 'diff'; before: TreeRef | null; after: TreeRef | null; prefix: string; budget: number }
  | { op: 'replace'; tree: TreeRef | null; name: string; replacement: Entry | undefined }
  | { op: 'summary'; tree: TreeRef };

export interface WorkResults {
  verifyObject: null;
  verifyPack: PackEntry[];
  list: TreePage;
  child: Entry | null;
  diff: DiffLevel;
  replace: { hash: string; stored: Uint8Array };
  summary: TreeSummary;
}

/** What a folder holds for the count of a version's size: its files' bytes, and its folders. */
export interface TreeSummary {
  fileBytes: number;
  folders: string[];
}

/** A tree's summary; one that does not decode restores nothing, and sums to nothing. */
export function summarize(entries: readonly Entry[]): TreeSummary {
  let fileBytes = 0;
  const folders: string[] = [];
  for (const entry of entries) {
    if (entry.type === 'file') fileBytes += entry.size;
    else if (entry.type === 'dir') folders.push(entry.tree);
  }
  return { fileBytes, folders };
}

export type WorkResult<R extends WorkRequest> = WorkResults[R['op']];

/** A tree the worker was not sent and does not have cached: send it again with its bytes. */
export class TreeNotLoadedError extends Error {
  override name = 'TreeNotLoadedError';
  constructor(readonly hash: string) {
    super(`tree ${hash} was not sent`);
  }
}

/** Decoded trees, by id. A worker keeps some (TreeCache); inline work keeps none. */
export interface Trees {
  get(hash: string): DecodedTree | undefined;
  set(hash: string, tree: DecodedTree): void;
}

/** A decoded tree, with the order a listing shows its entries in: folders first, then the rest. */
export interface DecodedTree extends Tree {
  listed: Uint32Array;
}

export async function decodeStoredTree(ref: TreeRef, trees?: Trees): Promise<DecodedTree> {
  const cached = trees?.get(ref.hash);
  if (cached) return cached;
  if (!ref.stored) throw new TreeNotLoadedError(ref.hash);
  const { entries } = decodeTree(await decodeObject(ref.hash, ref.stored), ref.hash);
  // Entries are stored by name, so each group stays in name order.
  const listed = new Uint32Array(entries.length);
  let at = 0;
  entries.forEach((entry, i) => {
    if (entry.type === 'dir') listed[at++] = i;
  });
  entries.forEach((entry, i) => {
    if (entry.type !== 'dir') listed[at++] = i;
  });
  const tree = { entries, listed };
  trees?.set(ref.hash, tree);
  return tree;
}

export async function work<R extends WorkRequest>(request: R, trees?: Trees): Promise<WorkResult<R>> {
  return (await dispatch(request, trees)) as WorkResult<R>;
}

async function dispatch(
  request: WorkRequest,
  trees: Trees | undefined,
): Promise<WorkResults[keyof WorkResults]> {
  switch (request.op) {
    case 'verifyObject':
      await decodeObject(request.hash, request.stored);
      return null;
    case 'verifyPack':
      return readPackIndex(request.stored, (id, stored) => decodeObject(id, stored));
    case 'list':
      return page(await decodeStoredTree(request.tree, trees), request.offset, request.limit);
    case 'child':
      return (
        (await decodeStoredTree(request.tree, trees)).entries.find((e) => e.name === request.name) ?? null
      );
    case 'diff':
      return diffLevel(
        request.before === null ? [] : (await decodeStoredTree(request.before, trees)).entries,
        request.after === null ? [] : (await decodeStoredTree(request.after, trees)).entries,
        request.prefix,
        request.budget,
      );
    case 'summary':
      try {
        return summarize((await decodeStoredTree(request.tree, trees)).entries);
      } catch (error) {
        if (error instanceof TreeFormatError) return { fileBytes: 0, folders: [] };
        throw error;
      }
    case 'replace': {
      const entries = request.tree === null ? [] : (await decodeStoredTree(request.tree, trees)).entries;
      const next = entries.filter((e) => e.name !== request.name);
      if (request.replacement) next.push(request.replacement);
      const { hash, bytes } = hashTree({ entries: next });
      const encoded = await encodeObject(bytes, hash);
      return { hash, stored: encoded.bytes };
    }
  }
}

function page(tree: DecodedTree, offset: number, limit: number): TreePage {
  const shown = [...tree.listed.subarray(offset, offset + limit)].map((i) => tree.entries[i] as Entry);
  return { total: tree.entries.length, entries: shown.map(toTreeEntry) };
}

const MIN_MS = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/** An entry's microseconds as an ISO 8601 timestamp with six fractional digits (clamped to years 0–9999). */
export function isoFromMicros(micros: number): string {
  const clamped = Math.min(Math.max(micros, MIN_MS * 1000), MAX_MS * 1000 + 999);
  const ms = Math.floor(clamped / 1000);
  const rest = clamped - ms * 1000;
  return new Date(ms).toISOString().replace('Z', `${String(rest).padStart(3, '0')}Z`);
}

export const toTreeEntry = (entry: Entry): TreeEntry => ({
  name: entry.name,
  type: entry.type,
  size: entry.type === 'file' ? entry.size : null,
  mtime: isoFromMicros(entry.mtime),
  mode: entry.mode,
  ...(entry.type === 'symlink' ? { target: entry.target } : {}),
});

const sizeOf = (entry: Entry | undefined) => (entry?.type === 'file' ? entry.size : null);

/**
 * The changes from one folder's entries to another's, in name order (as libs/image's diffTrees): a
 * path whose type changed is removed then added, a folder whose own attributes (not its mtime)
 * changed is modified, and a folder on both sides with different trees is to be compared next, in
 * its place. Stops after `budget` changes.
 */
export function diffLevel(
  left: readonly Entry[],
  right: readonly Entry[],
  prefix: string,
  budget: number,
): DiffLevel {
  const items: DiffItem[] = [];
  let changes = 0;
  const push = (change: TreeChange): boolean => {
    if (changes >= budget) return false;
    items.push({ change });
    changes++;
    return true;
  };
  for (const difference of entryDifferences(left, right)) {
    switch (difference.kind) {
      case 'removed': {
        const a = difference.entry;
        const change = { change: 'removed', type: a.type, sizeBefore: sizeOf(a), sizeAfter: null } as const;
        if (!push({ path: prefix + a.name, ...change })) return { items, truncated: true };
        break;
      }
      case 'added': {
        const b = difference.entry;
        const change = { change: 'added', type: b.type, sizeBefore: null, sizeAfter: sizeOf(b) } as const;
        if (!push({ path: prefix + b.name, ...change })) return { items, truncated: true };
        break;
      }
      case 'modified': {
        const { before: a, after: b } = difference;
        const change = {
          change: 'modified',
          type: b.type,
          sizeBefore: sizeOf(a),
          sizeAfter: sizeOf(b),
        } as const;
        if (!push({ path: prefix + b.name, ...change })) return { items, truncated: true };
        break;
      }
      case 'descend': {
        const { before: a, after: b } = difference;
        const path = prefix + a.name;
        const change = { change: 'modified', type: 'dir', sizeBefore: null, sizeAfter: null } as const;
        if (difference.attributes && !push({ path, ...change })) return { items, truncated: true };
        if (a.tree !== b.tree) items.push({ descend: { path, before: a.tree, after: b.tree } });
        break;
      }
    }
  }
  return { items, truncated: false };
}
