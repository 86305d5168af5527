import type { ObjectReader } from './repository.js';
import { compareNames, decodeTree, type Entry } from './tree.js';

export interface TreeDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

/**
 * The paths added, removed and changed between two trees, without reading any file's contents:
 * equal subtree ids are skipped whole, and files compare by chunk list and attributes. A path that
 * changed kind (file to folder, say) is reported removed and added. A folder appears only through
 * its contents, unless it was added or removed whole (then its path is listed, not each file).
 */
export async function diffTrees(
  reader: ObjectReader,
  before: string | null,
  after: string | null,
): Promise<TreeDiff> {
  const result: TreeDiff = { added: [], removed: [], changed: [] };
  await walk(reader, before, after, '', result);
  return result;
}

async function entriesOf(reader: ObjectReader, hash: string | null): Promise<Entry[]> {
  return hash === null ? [] : decodeTree(await reader.read(hash), hash).entries;
}

/**
 * What differs between two folders' entries, in name order: an entry only on one side, a leaf
 * (file, link, whiteout) changed, or a folder on both sides (`descend` to compare its trees; with
 * `attributes`, its own mode, owners or opaqueness changed too). An entry whose type changed is
 * `removed` then `added`. The one comparison every diff of trees makes (here and on the server).
 */
export type EntryDifference =
  | { kind: 'removed'; entry: Entry }
  | { kind: 'added'; entry: Entry }
  | { kind: 'modified'; before: Entry; after: Entry }
  | { kind: 'descend'; before: Entry & { type: 'dir' }; after: Entry & { type: 'dir' }; attributes: boolean };

export function* entryDifferences(
  left: readonly Entry[],
  right: readonly Entry[],
): Generator<EntryDifference> {
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    const a = left[i];
    const b = right[j];
    const order = a && b ? compareNames(a.name, b.name) : a ? -1 : 1;
    if (order < 0 && a) {
      yield { kind: 'removed', entry: a };
      i++;
    } else if (order > 0 && b) {
      yield { kind: 'added', entry: b };
      j++;
    } else if (a && b) {
      i++;
      j++;
      if (a.type !== b.type) {
        yield { kind: 'removed', entry: a };
        yield { kind: 'added', entry: b };
      } else if (a.type === 'dir' && b.type === 'dir') {
        const attributes =
          a.mode !== b.mode || a.owner !== b.owner || a.group !== b.group || a.opaque !== b.opaque;
        if (attributes || a.tree !== b.tree) yield { kind: 'descend', before: a, after: b, attributes };
      } else if (!sameLeaf(a, b)) {
        yield { kind: 'modified', before: a, after: b };
      }
    } else {
      break;
    }
  }
}

async function walk(
  reader: ObjectReader,
  before: string | null,
  after: string | null,
  prefix: string,
  result: TreeDiff,
) {
  if (before === after) return;
  const [left, right] = await Promise.all([entriesOf(reader, before), entriesOf(reader, after)]);
  for (const difference of entryDifferences(left, right)) {
    switch (difference.kind) {
      case 'removed':
        result.removed.push(prefix + difference.entry.name);
        break;
      case 'added':
        result.added.push(prefix + difference.entry.name);
        break;
      case 'modified':
        result.changed.push(prefix + difference.after.name);
        break;
      case 'descend': {
        const path = prefix + difference.after.name;
        if (difference.attributes) result.changed.push(path);
        await walk(reader, difference.before.tree, difference.after.tree, `${path}/`, result);
        break;
      }
    }
  }
}

function sameLeaf(a: Entry, b: Entry): boolean {
  if (a.mode !== b.mode || a.mtime !== b.mtime || a.owner !== b.owner || a.group !== b.group) return false;
  if (a.type === 'file' && b.type === 'file') return a.size === b.size && a.chunks.join() === b.chunks.join();
  if (a.type === 'symlink' && b.type === 'symlink') return a.target === b.target;
  return a.type === b.type;
}
