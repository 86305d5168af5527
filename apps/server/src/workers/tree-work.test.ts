import { encodeObject, type Entry, hashTree, ObjectFormatError, TreeFormatError } from '@upc/image';
import { describe, expect, it } from 'vitest';
import { TreeCache } from './tree-cache.js';
import { decodeStoredTree, type DiffItem, diffLevel, TreeNotLoadedError, work } from './tree-work.js';
import { fromWire, toWire, transferable } from './wire-error.js';

const base = { mode: 0o644, mtime: 1_700_000_000_000_000, owner: 'user' as const, group: 'user' as const };
const file = (name: string, size = 1): Entry => ({
  ...base,
  name,
  type: 'file',
  size,
  chunks: ['a'.repeat(64)],
});
const dir = (name: string, tree: string): Entry => ({ ...base, name, type: 'dir', mode: 0o755, tree });

async function stored(entries: Entry[]) {
  const { hash, bytes } = hashTree({ entries });
  return { hash, stored: (await encodeObject(bytes, hash)).bytes };
}

describe('tree work', () => {
  it('lists folders first, then the rest, each by name, a page at a time', async () => {
    const tree = await stored([file('a'), dir('b', 'b'.repeat(64)), file('c'), dir('d', 'd'.repeat(64))]);
    const names = async (offset: number, limit: number) => {
      const page = await work({ op: 'list', tree, offset, limit });
      return [page.total, page.entries.map((e) => e.name)];
    };
    expect(await names(0, 10)).toEqual([4, ['b', 'd', 'a', 'c']]);
    expect(await names(1, 2)).toEqual([4, ['d', 'a']]);
    expect(await names(4, 2)).toEqual([4, []]);
  });

  it('finds a child, and rewrites a folder with one entry replaced, added or removed', async () => {
    const tree = await stored([file('a'), file('b')]);
    expect(await work({ op: 'child', tree, name: 'b' })).toEqual(file('b'));
    expect(await work({ op: 'child', tree, name: 'z' })).toBeNull();
    const replaced = await work({ op: 'replace', tree, name: 'b', replacement: file('b', 7) });
    expect(replaced.hash).toBe((await stored([file('a'), file('b', 7)])).hash);
    const removed = await work({ op: 'replace', tree, name: 'a', replacement: undefined });
    expect(removed.hash).toBe((await stored([file('b')])).hash);
    const fresh = await work({ op: 'replace', tree: null, name: 'x', replacement: file('x') });
    expect(fresh.hash).toBe((await stored([file('x')])).hash);
  });

  it('diffs one level in name order, with the folders to compare next in their place', () => {
    const before = [file('a'), dir('d', '1'.repeat(64)), file('m'), dir('same', 's'.repeat(64))];
    const after = [dir('d', '2'.repeat(64)), file('m', 2), dir('same', 's'.repeat(64)), file('z')];
    const level = diffLevel(before, after, 'p/', 100);
    expect(level.truncated).toBe(false);
    expect(
      level.items.map((item: DiffItem) => ('descend' in item ? `> ${item.descend.path}` : item.change.path)),
    ).toEqual(['p/a', '> p/d', 'p/m', 'p/z']);
    expect(diffLevel(before, after, '', 2)).toMatchObject({ truncated: true });
    expect(diffLevel(before, after, '', 2).items.filter((i) => 'change' in i)).toHaveLength(2);
  });

  it('keeps decoded trees in a cache bounded by entries, and asks for a tree it lacks', async () => {
    const cache = new TreeCache(5);
    const one = await stored([file('a'), file('b'), file('c')]);
    const two = await stored([file('d'), file('e'), file('f')]);
    await decodeStoredTree(one, cache);
    expect(await work({ op: 'child', tree: { hash: one.hash }, name: 'a' }, cache)).toEqual(file('a'));
    await decodeStoredTree(two, cache); // six entries in all: the older tree goes
    expect(cache.get(one.hash)).toBeUndefined();
    expect(cache.get(two.hash)?.entries).toHaveLength(3);
    await expect(work({ op: 'list', tree: { hash: one.hash }, offset: 0, limit: 1 }, cache)).rejects.toThrow(
      TreeNotLoadedError,
    );
  });

  it('refuses an object that is not its id, and a tree that is not a tree, with the image errors', async () => {
    const tree = await stored([file('a')]);
    const other = (await stored([file('b')])).hash;
    await expect(work({ op: 'verifyObject', hash: other, stored: tree.stored })).rejects.toMatchObject({
      kind: 'mismatch',
    });
    const notTree = await encodeObject(Buffer.from('{"v":2}'));
    const ref = { hash: notTree.hash, stored: notTree.bytes };
    await expect(work({ op: 'list', tree: ref, offset: 0, limit: 1 })).rejects.toThrow(TreeFormatError);
  });
});

describe('errors and bytes between threads', () => {
  it('keep their class, kind and hash', () => {
    const error = fromWire(toWire(new ObjectFormatError('is bad', 'f'.repeat(64), 'too_large')));
    expect(error).toBeInstanceOf(ObjectFormatError);
    expect(error).toMatchObject({ message: `object ${'f'.repeat(64)}: is bad`, kind: 'too_large' });
    expect(fromWire(toWire(new RangeError('x')))).toBeInstanceOf(Error);
  });

  it('copy a view of a shared buffer before it is moved, and move a whole one as it is', () => {
    const shared = Buffer.from('small'); // from Node's pool of small Buffers
    expect(transferable(shared).buffer).not.toBe(shared.buffer);
    const whole = new Uint8Array(16);
    expect(transferable(whole)).toBe(whole);
  });
});
