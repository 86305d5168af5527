import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, unlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ChunkerParams, DEFAULT_CHUNKER } from './chunker.js';
import { LocalRepository, type ObjectReader, type ObjectWriter } from './repository.js';
import { snapshot, SnapshotCache } from './snapshot.js';
import { decodeTree, type FileEntry } from './tree.js';

const MiB = 1024 * 1024;
/** Small enough that a few MiB are streamed rather than read whole. */
const SMALL_CHUNKS: ChunkerParams = {
  algorithm: 'fastcdc-gear32',
  minSize: 16 * 1024,
  avgSize: 64 * 1024,
  maxSize: 256 * 1024,
};

/** Stores into a repository, calling `onWrite` before each object is written. */
class MeddlingWriter implements ObjectWriter {
  constructor(
    private readonly inner: ObjectWriter,
    private readonly onWrite: (plaintext: Uint8Array) => void,
  ) {}
  has(hash: string): boolean {
    return this.inner.has(hash);
  }
  write(plaintext: Uint8Array, hash?: string): Promise<string> {
    this.onWrite(plaintext);
    return this.inner.write(plaintext, hash);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
}

/** The entry at `path` ('/'-separated) under the tree `root`. */
async function entryAt(reader: ObjectReader, root: string, path: string) {
  let tree = decodeTree(await reader.read(root), root);
  const parts = path.split('/');
  for (const [i, name] of parts.entries()) {
    const entry = tree.entries.find((e) => e.name === name);
    if (i === parts.length - 1 || entry?.type !== 'dir') return entry;
    tree = decodeTree(await reader.read(entry.tree), entry.tree);
  }
  return undefined;
}

async function contentOf(reader: ObjectReader, entry: FileEntry): Promise<Buffer> {
  return Buffer.concat(await Promise.all(entry.chunks.map((chunk) => reader.read(chunk))));
}

let dir: string;
let src: string;
let repository: LocalRepository;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-torn-'));
  src = join(dir, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'other.txt'), 'a file nobody writes to\n');
  repository = await LocalRepository.open(join(dir, 'repo'));
});
afterEach(async () => {
  repository.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a file written to while it is read', () => {
  it.each([
    { kind: 'small (read at once)', size: 1000, chunker: DEFAULT_CHUNKER },
    { kind: 'medium (read whole, asynchronously)', size: 2 * MiB, chunker: DEFAULT_CHUNKER },
    { kind: 'large (streamed)', size: 3 * MiB, chunker: SMALL_CHUNKS },
  ])('is read again and recorded as it ends up: $kind', async ({ size, chunker }) => {
    const file = join(src, 'sub', 'log.bin');
    const initial = randomBytes(size);
    await writeFile(file, initial);
    let appended = 0;
    // Storing the first chunk of the first read appends to the file: that read is torn.
    const writer = new MeddlingWriter(repository, (plaintext) => {
      if (appended === 0 && Buffer.from(plaintext).equals(initial.subarray(0, plaintext.length))) {
        appendFileSync(file, 'written meanwhile\n');
        appended++;
      }
    });
    const unstable: string[] = [];
    const cache = new SnapshotCache();
    const result = await snapshot(src, writer, { cache, chunker, onUnstable: (p) => unstable.push(p) });
    expect(appended).toBe(1);
    expect(unstable).toEqual([]);
    expect(result.stats).toMatchObject({ files: 2, filesRead: 3, unstable: 0 });
    const final = readFileSync(file);
    expect(final.length).toBe(size + 'written meanwhile\n'.length);
    const entry = (await entryAt(repository, result.root, 'sub/log.bin')) as FileEntry;
    expect(entry.size).toBe(final.length);
    expect((await contentOf(repository, entry)).equals(final)).toBe(true);
    expect(result.stats.bytes).toBe(final.length + 'a file nobody writes to\n'.length);

    // The cache holds what the second read saw: nothing is read again.
    const again = await snapshot(src, repository, { cache });
    expect(again.stats.filesRead).toBe(0);
    expect(again.root).toBe(result.root);
  });

  it('still changing after every read keeps the content last read whole, and is read next time', async () => {
    const file = join(src, 'sub', 'busy.txt');
    await writeFile(file, 'busy, version 1\n');
    const cache = new SnapshotCache();
    const first = await snapshot(src, repository, { cache });
    const before = (await entryAt(repository, first.root, 'sub/busy.txt')) as FileEntry;

    await writeFile(file, 'busy, version two\n');
    let appended = 0;
    // Every read stores a chunk it has not seen: each one appends, so no read is ever whole.
    const writer = new MeddlingWriter(repository, (plaintext) => {
      if (Buffer.from(plaintext).toString('utf8').startsWith('busy, version two')) {
        appendFileSync(file, `append ${++appended}\n`);
      }
    });
    const unstable: string[] = [];
    const second = await snapshot(src, writer, { cache, onUnstable: (p) => unstable.push(p) });
    expect(appended).toBe(3);
    expect(unstable).toEqual(['sub/busy.txt']);
    expect(second.stats).toMatchObject({ files: 2, filesRead: 3, unstable: 1 });
    // Nothing else changed: the same tree as before, not a torn version.
    expect(await entryAt(repository, second.root, 'sub/busy.txt')).toEqual(before);
    expect(second.root).toBe(first.root);

    // Not cached as read: the next snapshot reads it, even told nothing changed, even reloaded.
    const reloaded = SnapshotCache.fromJSON(JSON.parse(JSON.stringify(cache)));
    for (const next of [cache, reloaded]) {
      const third = await snapshot(src, repository, { cache: next, changed: [] });
      expect(third.stats).toMatchObject({ filesRead: 1, unstable: 0 });
      const after = (await entryAt(repository, third.root, 'sub/busy.txt')) as FileEntry;
      expect((await contentOf(repository, after)).equals(readFileSync(file))).toBe(true);
      expect(after.size).toBe(readFileSync(file).length);
    }
    // and once read whole it is cached again
    const fourth = await snapshot(src, repository, { cache, changed: [] });
    expect(fourth.stats.filesRead).toBe(0);
  });

  it('still changing after every read and never read whole before is left out', async () => {
    const file = join(src, 'sub', 'new.txt');
    await writeFile(file, 'new and busy\n');
    let appended = 0;
    const writer = new MeddlingWriter(repository, (plaintext) => {
      if (Buffer.from(plaintext).toString('utf8').startsWith('new and busy')) {
        appendFileSync(file, `append ${++appended}\n`);
      }
    });
    const unstable: string[] = [];
    const cache = new SnapshotCache();
    const result = await snapshot(src, writer, { cache, onUnstable: (p) => unstable.push(p) });
    expect(unstable).toEqual(['sub/new.txt']);
    expect(result.stats).toMatchObject({ files: 1, filesRead: 4, unstable: 1 });
    expect(await entryAt(repository, result.root, 'sub/new.txt')).toBeUndefined();
    expect(await entryAt(repository, result.root, 'other.txt')).toBeDefined();

    const next = await snapshot(src, repository, { cache, changed: [] });
    expect(next.stats).toMatchObject({ files: 2, filesRead: 1, unstable: 0 });
    const entry = (await entryAt(repository, next.root, 'sub/new.txt')) as FileEntry;
    expect((await contentOf(repository, entry)).equals(readFileSync(file))).toBe(true);
  });

  it('deleted while it is read is left out and reported', async () => {
    const file = join(src, 'sub', 'gone.txt');
    await writeFile(file, 'about to be deleted\n');
    const writer = new MeddlingWriter(repository, (plaintext) => {
      if (Buffer.from(plaintext).toString('utf8').startsWith('about to be deleted')) unlinkSync(file);
    });
    const unstable: string[] = [];
    const result = await snapshot(src, writer, { onUnstable: (p) => unstable.push(p) });
    expect(unstable).toEqual(['sub/gone.txt']);
    expect(result.stats).toMatchObject({ files: 1, unstable: 1 });
    expect(await entryAt(repository, result.root, 'sub/gone.txt')).toBeUndefined();
  });
});
