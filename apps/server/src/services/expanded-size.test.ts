import { encodeTree, type Entry, sha256Hex } from '@upc/image';
import { describe, expect, it } from 'vitest';
import { type TreeSummary, work } from '../workers/tree-work.js';
import { expandedBytes, type StoredTrees, TreeMissingError } from './expanded-size.js';

/** A tree's stored form (format byte 0: raw), as the store keeps it. */
const encodeStored = (plain: Buffer) => Buffer.concat([Buffer.of(0), plain]);

const base = { mode: 0o644, mtime: 1_700_000_000_000_000, owner: 'user', group: 'user' } as const;
const CHUNK = 'c'.repeat(64);
const file = (name: string, size: number): Entry => ({ ...base, name, type: 'file', size, chunks: [CHUNK] });
const dir = (name: string, tree: string): Entry => ({ ...base, name, type: 'dir', tree });

/** Stored trees in memory; every call is counted, and a tree read twice fails the test. */
class Trees implements StoredTrees {
  readonly bytes = new Map<string, Buffer>();
  readonly recorded = new Map<string, number>();
  readonly reads: string[] = [];

  add(entries: Entry[]): string {
    const bytes = encodeTree({ entries });
    const hash = sha256Hex(bytes);
    this.bytes.set(hash, bytes);
    return hash;
  }

  addRaw(bytes: Buffer): string {
    const hash = sha256Hex(bytes);
    this.bytes.set(hash, bytes);
    return hash;
  }

  lookup(hashes: readonly string[]): Promise<Map<string, number | null>> {
    const found = new Map<string, number | null>();
    for (const hash of hashes) if (this.bytes.has(hash)) found.set(hash, this.recorded.get(hash) ?? null);
    return Promise.resolve(found);
  }

  summary(hash: string): Promise<TreeSummary> {
    if (this.reads.includes(hash)) throw new Error(`tree ${hash} read twice`);
    this.reads.push(hash);
    const bytes = this.bytes.get(hash);
    if (!bytes) throw new Error(`read of ${hash}, which lookup did not find`);
    return work({ op: 'summary', tree: { hash, stored: encodeStored(bytes) } });
  }

  record(sizes: ReadonlyMap<string, number>): Promise<void> {
    for (const [hash, size] of sizes) this.recorded.set(hash, size);
    return Promise.resolve();
  }
}

const LOTS = Number.MAX_SAFE_INTEGER;

describe('expandedBytes', () => {
  it('adds up the files of every folder, a folder named twice counting twice', async () => {
    const trees = new Trees();
    const shared = trees.add([file('a', 100), file('b', 20)]);
    const root = trees.add([dir('one', shared), dir('two', shared), file('c', 3)]);
    expect(await expandedBytes(root, trees, LOTS)).toBe(243);
    expect(trees.reads).toHaveLength(2); // the shared folder once
    expect(trees.recorded).toEqual(
      new Map([
        [shared, 120],
        [root, 243],
      ]),
    );
  });

  it('reads only trees not counted before', async () => {
    const trees = new Trees();
    const old = trees.add([file('big', 5000)]);
    const first = trees.add([dir('old', old)]);
    expect(await expandedBytes(first, trees, LOTS)).toBe(5000);
    trees.reads.length = 0;
    const second = trees.add([dir('old', old), dir('again', old), file('new', 1)]);
    expect(await expandedBytes(second, trees, LOTS)).toBe(10_001);
    expect(trees.reads).toEqual([second]);
  });

  it('stops once past the limit: one chunk named thousands of times', async () => {
    const trees = new Trees();
    const files = Array.from({ length: 5000 }, (_, i) =>
      file(`f${String(i).padStart(4, '0')}`, 64 * 1024 ** 2),
    );
    const bomb = trees.add(files);
    const root = trees.add([dir('home', bomb)]);
    expect(await expandedBytes(root, trees, 1024 ** 3)).toBeGreaterThan(1024 ** 3);
    expect(trees.recorded.has(root)).toBe(false);
  });

  it('counts a tree that does not decode as nothing, and refuses one that is not stored', async () => {
    const trees = new Trees();
    const junk = trees.addRaw(Buffer.from('not a tree'));
    expect(await expandedBytes(trees.add([dir('junk', junk), file('x', 7)]), trees, LOTS)).toBe(7);
    const lost = 'd'.repeat(64);
    await expect(expandedBytes(trees.add([dir('lost', lost)]), trees, LOTS)).rejects.toThrow(
      TreeMissingError,
    );
  });
});
