import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chunkBuffer, DEFAULT_CHUNKER, LocalRepository, materialize, sha256Hex, snapshot } from '@upc/image';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { build, listing, scratch, type Spec, type SpecNode } from '../support/trees.js';

const MiB = 1024 * 1024;

/** Names: unicode included, never "." or "..", no "/" or NUL, at most 255 UTF-8 bytes. */
const name = fc
  .string({
    unit: fc.oneof(
      fc.constantFrom('a', 'b', 'Z', '-', '_', ' ', '.'),
      fc.string({ unit: 'grapheme', maxLength: 1 }),
    ),
    minLength: 1,
    maxLength: 12,
  })
  .filter(
    (n) =>
      n !== '' &&
      n !== '.' &&
      n !== '..' &&
      !n.includes('/') &&
      !n.includes('\0') &&
      Buffer.byteLength(n) <= 255,
  );

const fileNode: fc.Arbitrary<SpecNode> = fc.record({
  file: fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 * MiB }).map((n) => randomBytes(n)) },
  ),
  mode: fc.constantFrom(0o644, 0o600, 0o755, 0o640),
  mtime: fc.integer({ min: 1_000_000_000, max: 2_000_000_000 }).map((s) => s + 0.123456),
});

const spec: fc.Arbitrary<Spec> = fc.letrec((tie) => ({
  folder: fc
    .uniqueArray(
      fc.tuple(
        name,
        fc.oneof(
          { depthSize: 'small' },
          fileNode,
          tie('dir'),
          fc.record({ link: fc.constantFrom('x', '../up', 'a/b/c', '.') }),
        ),
      ),
      {
        selector: ([n]) => n.normalize('NFC'),
        maxLength: 6,
      },
    )
    .map((pairs) => Object.fromEntries(pairs) as Spec),
  dir: tie('folder').map((dir) => ({ dir: dir as Spec, mode: 0o755 })),
})).folder;

describe('snapshot → materialize', () => {
  it('gives back an identical tree for random trees (unicode names, empty and large files, symlinks, nesting)', async () => {
    await fc.assert(
      fc.asyncProperty(spec, async (folder) => {
        const dir = await scratch();
        try {
          // a symlink must stay inside its layer: nest the random tree one level down
          await build(join(dir, 'src', 'layer'), folder);
          const repository = await LocalRepository.open(join(dir, 'repo'));
          const first = await snapshot(join(dir, 'src'), repository);
          await materialize(repository, first.root, join(dir, 'out'));
          expect(await listing(join(dir, 'out'))).toEqual(await listing(join(dir, 'src')));
          const again = await snapshot(join(dir, 'out'), repository);
          expect(again.root).toBe(first.root);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 25 },
    );
  });

  it('keeps deep nesting', async () => {
    const dir = await scratch();
    let deep: Spec = { 'leaf.txt': { file: Buffer.from('bottom') } };
    for (let i = 0; i < 60; i++) deep = { [`level-${i}`]: { dir: deep } };
    await build(join(dir, 'src'), deep);
    const repository = await LocalRepository.open(join(dir, 'repo'));
    const { root } = await snapshot(join(dir, 'src'), repository);
    await materialize(repository, root, join(dir, 'out'));
    expect(await listing(join(dir, 'out'))).toEqual(await listing(join(dir, 'src')));
    await rm(dir, { recursive: true, force: true });
  });
});

describe('tree ids', () => {
  it('are deterministic: the same content built in any order has the same root', async () => {
    await fc.assert(
      fc.asyncProperty(spec, async (folder) => {
        const dir = await scratch();
        try {
          const reversed = Object.fromEntries(Object.entries(folder).reverse());
          await build(join(dir, 'a'), folder);
          await build(join(dir, 'b'), reversed);
          await copyTimes(join(dir, 'a'), join(dir, 'b'), folder);
          const one = await snapshot(join(dir, 'a'), await LocalRepository.open(join(dir, 'r1')));
          const two = await snapshot(join(dir, 'b'), await LocalRepository.open(join(dir, 'r2')));
          expect(two.root).toBe(one.root);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 15 },
    );
  });
});

/** Folders and links get their mtime from when they were made: give the copy the original's. */
async function copyTimes(from: string, to: string, folder: Spec): Promise<void> {
  const { lstat, lutimes } = await import('node:fs/promises');
  const copy = async (a: string, b: string) => {
    const stats = await lstat(a, { bigint: true });
    const seconds = (Number(stats.mtimeNs / 1000n) + 0.5) / 1e6; // whole µs, as the format keeps them
    await lutimes(b, seconds, seconds);
  };
  for (const [name, node] of Object.entries(folder)) {
    if ('dir' in node) await copyTimes(join(from, name), join(to, name), node.dir);
    else await copy(join(from, name), join(to, name));
  }
  await copy(from, to);
}

describe('content-defined chunking', () => {
  it('reuses at least 90 % of the chunks of a 64 MiB file after one byte is inserted at its start', () => {
    const data = randomBytes(64 * MiB);
    const before = new Set(chunkBuffer(data, DEFAULT_CHUNKER).map(sha256Hex));
    const after = chunkBuffer(Buffer.concat([Buffer.of(42), data]), DEFAULT_CHUNKER).map(sha256Hex);
    const reused = after.filter((hash) => before.has(hash)).length;
    expect(reused / after.length).toBeGreaterThanOrEqual(0.9);
  });

  it('does the same through a snapshot, writing only the new chunks', async () => {
    const dir = await scratch();
    const data = randomBytes(64 * MiB);
    await writeFile(join(dir, 'big.bin'), data);
    const repository = await LocalRepository.open(join(dir, 'repo'));
    await snapshot(dir, repository, { exclude: (path) => path === 'repo' });
    const objectsBefore = repository.size;
    await writeFile(join(dir, 'big.bin'), Buffer.concat([Buffer.of(42), data]));
    await snapshot(dir, repository, { exclude: (path) => path === 'repo' });
    const added = repository.size - objectsBefore;
    // one or two changed chunks at the start, plus the new root tree
    expect(added).toBeLessThanOrEqual(4);
    expect(objectsBefore).toBeGreaterThan(20);
    await rm(dir, { recursive: true, force: true });
  });
});
