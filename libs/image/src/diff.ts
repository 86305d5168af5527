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

async function walk(
  reader: ObjectReader,
  before: string | null,
  after: string | null,
  prefix: string,
  result: TreeDiff,
) {
  if (before === after) return;
  const [left, right] = await Promise.all([entriesOf(reader, before), entriesOf(reader, after)]);
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    const a = left[i];
    const b = right[j];
    const order = a && b ? compareNames(a.name, b.name) : a ? -1 : 1;
    if (order < 0 && a) {
      result.removed.push(prefix + a.name);
      i++;
    } else if (order > 0 && b) {
      result.added.push(prefix + b.name);
      j++;
    } else if (a && b) {
      const path = prefix + a.name;
      if (a.type !== b.type) {
        result.removed.push(path);
        result.added.push(path);
      } else if (a.type === 'dir' && b.type === 'dir') {
        if (a.mode !== b.mode || a.owner !== b.owner || a.group !== b.group || a.opaque !== b.opaque)
          result.changed.push(path);
        await walk(reader, a.tree, b.tree, `${path}/`, result);
      } else if (!sameLeaf(a, b)) {
        result.changed.push(path);
      }
      i++;
      j++;
    }
  }
}

function sameLeaf(a: Entry, b: Entry): boolean {
  if (a.mode !== b.mode || a.mtime !== b.mtime || a.owner !== b.owner || a.group !== b.group) return false;
  if (a.type === 'file' && b.type === 'file') return a.size === b.size && a.chunks.join() === b.chunks.join();
  if (a.type === 'symlink' && b.type === 'symlink') return a.target === b.target;
  return a.type === b.type;
}
