import { mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  decodeObject,
  encodeObject,
  LocalRepository,
  materialize,
  type MaterializeOptions,
  type ObjectReader,
  RestoreError,
} from '@upc/image';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileEntry, rawTree, scratch, tree } from '../support/trees.js';

let dir: string;
let repository: LocalRepository;
let outside: string;
beforeEach(async () => {
  dir = await scratch('upc-hostile-');
  repository = await LocalRepository.open(join(dir, 'repo'));
  outside = join(dir, 'outside');
  await mkdir(outside);
});
afterEach(async () => {
  // whatever the image tried, nothing may appear outside the target
  expect(await readdir(outside)).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

const base = { mode: 0o644, mtime: 1_700_000_000_000_000, owner: 'user', group: 'user' };
const restore = (root: string, options?: MaterializeOptions, reader: ObjectReader = repository) =>
  materialize(reader, root, join(dir, 'target'), options);

async function hello(): Promise<string> {
  return repository.write(Buffer.from('hello'));
}

describe('a hostile image is refused with a clear error', () => {
  it.each([
    ['a name with a slash', 'a/b', /containing "\/"/],
    ['an absolute path', '/etc/passwd', /containing "\/"/],
    ['a name with NUL', 'a\0b', /containing NUL/],
    ['the name "."', '.', /has the name "\."/],
    ['the name ".."', '..', /has the name "\.\."/],
    ['an empty name', '', /empty or missing name/],
    ['a 256-byte name', 'x'.repeat(256), /longer than 255 bytes/],
  ])('%s', async (_what, name, message) => {
    const root = await rawTree(repository, [
      { ...base, name, type: 'file', size: 5, chunks: [await hello()] },
    ]);
    await expect(restore(root)).rejects.toThrow(message);
  });

  it('a tree that is not sorted or repeats a name', async () => {
    const chunk = await hello();
    const entries = [
      { ...base, name: 'b', type: 'file', size: 5, chunks: [chunk] },
      { ...base, name: 'a', type: 'file', size: 5, chunks: [chunk] },
    ];
    await expect(restore(await rawTree(repository, entries))).rejects.toThrow(/not sorted, or repeats/);
  });

  it.each([
    ['a relative symlink that climbs out', '../../outside/x', undefined, /points outside the image/],
    ['a symlink that climbs out from a subfolder', 'sub/../../..', undefined, /points outside the image/],
    ['an absolute symlink with no mount point', '/etc/passwd', undefined, /points outside the image/],
    ['an absolute symlink outside its mount point', '/etc/passwd', '/opt', /points outside \/opt/],
    ['an absolute symlink next to its mount point', '/optional', '/opt', /points outside \/opt/],
  ])('%s', async (_what, target, mountPoint, message) => {
    const root = await tree(repository, [
      { ...base, owner: 'user', group: 'user', name: 'link', type: 'symlink', target },
    ]);
    await expect(restore(root, { mountPoint })).rejects.toThrow(message);
  });

  it('a chain of symlinks that leads out, though each link alone stays inside', async () => {
    const deep = await tree(repository, [
      { ...base, owner: 'user', group: 'user', name: 'y', type: 'symlink', target: '../..' },
    ]);
    const sub = await tree(repository, [
      { ...base, owner: 'user', group: 'user', name: 'deep', type: 'dir', tree: deep },
    ]);
    const root = await tree(repository, [
      { ...base, owner: 'user', group: 'user', name: 'sub', type: 'dir', tree: sub },
      { ...base, owner: 'user', group: 'user', name: 'w', type: 'symlink', target: 'sub/deep/y/..' },
    ]);
    await expect(restore(root)).rejects.toThrow(/w: symlink leads outside the image through other links/);
  });

  it('a tree that is not in canonical form (extra spaces)', async () => {
    const canonical = (
      await repository.read(await tree(repository, [fileEntry('a', [await hello()], 5)]))
    ).toString();
    const spaced = await repository.write(Buffer.from(canonical.replace('"entries":', '"entries": ')));
    await expect(restore(spaced)).rejects.toThrow(/not in canonical form/);
  });

  it('accepts symlinks that stay inside (relative, or absolute within the mount point)', async () => {
    const root = await tree(repository, [
      { ...base, owner: 'user', group: 'user', name: 'a', type: 'symlink', target: '/opt/app/bin/tool' },
      { ...base, owner: 'user', group: 'user', name: 'b', type: 'symlink', target: 'sub/../a' },
    ]);
    await restore(root, { mountPoint: '/opt' });
    expect((await readdir(join(dir, 'target'))).sort()).toEqual(['a', 'b']);
  });

  it('a folder swapped for a symlink while the restore runs', async () => {
    const sub = await tree(repository, [fileEntry('file.txt', [await hello()], 5)]);
    const root = await tree(repository, [
      { ...base, owner: 'user', group: 'user', name: 'd', type: 'dir', tree: sub },
    ]);
    const swap = async ({ path }: { path: string }) => {
      if (path !== 'd/file.txt') return;
      await rm(join(dir, 'target', 'd'), { recursive: true });
      await symlink(outside, join(dir, 'target', 'd'));
    };
    await expect(restore(root, { onProgress: swap })).rejects.toThrow(
      /d: the folder was replaced while restoring/,
    );
  });

  it('a decompression bomb, before expanding it', async () => {
    const plain = Buffer.alloc(100 * 1024 * 1024);
    const bomb = await encodeObject(plain);
    expect(bomb.bytes.length).toBeLessThan(100_000);
    const root = await tree(repository, [fileEntry('bomb', [bomb.hash], plain.length)]);
    const reader: ObjectReader = {
      read: (hash, maxSize) =>
        hash === bomb.hash ? decodeObject(hash, bomb.bytes, maxSize) : repository.read(hash, maxSize),
    };
    await expect(restore(root, { limits: { maxObjectBytes: 8 * 1024 * 1024 } }, reader)).rejects.toThrow(
      /would expand to 104857600 bytes, over the limit of 8388608/,
    );
  });

  it('a file whose chunks hold more than its recorded size', async () => {
    const chunk = await repository.write(Buffer.alloc(1000, 1));
    const root = await tree(repository, [fileEntry('liar', [chunk, chunk], 1000)]);
    await expect(restore(root)).rejects.toThrow(/liar: its chunks hold more than its 1000 bytes/);
    expect((await readdir(join(dir, 'target'))).filter((n) => !n.startsWith('.upc-restore-'))).toEqual([]);
  });

  it.each([
    ['a file over the size limit', { maxFileBytes: 4 }, /big: 5 bytes is over the limit of 4 for a file/],
    ['more bytes in all than allowed', { maxTotalBytes: 7 }, /more than 7 bytes/],
    ['more entries than allowed', { maxEntries: 1 }, /more than 1 entries/],
  ])('%s', async (_what, limits, message) => {
    const chunk = await hello();
    const root = await tree(repository, [fileEntry('big', [chunk], 5), fileEntry('other', [chunk], 5)]);
    await expect(restore(root, { limits })).rejects.toThrow(message);
  });

  it('an absurdly deep tree', async () => {
    let current = await tree(repository, []);
    for (let i = 0; i < 12; i++) {
      current = await tree(repository, [
        { ...base, owner: 'user', group: 'user', name: 'd', type: 'dir', tree: current },
      ]);
    }
    await expect(restore(current, { limits: { maxDepth: 10 } })).rejects.toThrow(
      /nested deeper than 10 folders/,
    );
  });

  it('a target that is not empty', async () => {
    await mkdir(join(dir, 'target', 'already'), { recursive: true });
    await expect(restore(await tree(repository, []))).rejects.toThrow(RestoreError);
    await expect(restore(await tree(repository, []))).rejects.toThrow(/is not empty/);
  });
});
