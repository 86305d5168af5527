import { randomBytes } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { materialize, type MaterializeOptions, RestoreError } from './materialize.js';
import { LocalRepository } from './repository.js';
import { snapshot } from './snapshot.js';

const MiB = 1024 * 1024;

let dir: string;
let repository: LocalRepository;
let root: string;
/** Folders made outside `dir` (in /dev/shm), removed after each test. */
const extra: string[] = [];

/**
 * An image whose root holds `home` (the part restored second: nested folders, a big file streamed
 * through a temporary name, small ones, odd modes and mtimes, links), `opt`, a file and a link.
 */
async function buildSource(src: string): Promise<void> {
  await mkdir(join(src, 'home', 'ann', 'docs', 'deep'), { recursive: true });
  await mkdir(join(src, 'home', 'ann', 'empty'));
  await mkdir(join(src, 'opt', 'tool'), { recursive: true });
  for (let i = 0; i < 12; i++) await writeFile(join(src, 'home', 'ann', 'docs', `n-${i}.txt`), `note ${i}\n`);
  await writeFile(join(src, 'home', 'ann', 'docs', 'deep', 'big.bin'), randomBytes(6 * MiB));
  await writeFile(join(src, 'home', 'ann', 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(src, 'home', 'ann', 'run.sh'), 0o755);
  await writeFile(join(src, 'home', 'ann', 'secret'), 'mine');
  await chmod(join(src, 'home', 'ann', 'secret'), 0o600);
  await symlink('docs/n-1.txt', join(src, 'home', 'ann', 'link'));
  await writeFile(join(src, 'opt', 'tool', 'bin'), 'tool 1.0\n');
  await writeFile(join(src, 'top.txt'), 'top\n');
  await symlink('top.txt', join(src, 'top-link'));
  // Distinct mtimes everywhere they are kept, folders included (set last, bottom up).
  await utimes(join(src, 'top.txt'), 1_500_000_000.123456, 1_500_000_000.123456);
  await utimes(join(src, 'home', 'ann', 'docs', 'n-3.txt'), 1_400_000_000.5, 1_400_000_000.5);
  await chmod(join(src, 'home', 'ann', 'docs'), 0o750);
  await chmod(join(src, 'home', 'ann'), 0o711);
  await utimes(join(src, 'home', 'ann', 'docs', 'deep'), 1_300_000_000, 1_300_000_000);
  await utimes(join(src, 'home', 'ann', 'docs'), 1_310_000_000, 1_310_000_000);
  await utimes(join(src, 'home', 'ann'), 1_320_000_000, 1_320_000_000);
  await utimes(join(src, 'home'), 1_330_000_000, 1_330_000_000);
  await utimes(join(src, 'opt'), 1_340_000_000, 1_340_000_000);
}

/** Everything a restore must reproduce: kind, owner, mode, mtime (µs), size, content, link target. */
async function listing(target: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (folder: string, prefix: string) => {
    for (const name of (await readdir(folder)).sort()) {
      const path = join(folder, name);
      const stats = await lstat(path, { bigint: true });
      const key = prefix + name;
      if (stats.isSymbolicLink()) {
        out[key] = `link -> ${await readlink(path)}`;
        continue;
      }
      const common = `${stats.uid}:${stats.gid} mode=${(stats.mode & 0o7777n).toString(8)} mtime=${stats.mtimeNs / 1000n}`;
      if (stats.isDirectory()) {
        out[key] = `dir ${common}`;
        await walk(path, `${key}/`);
      } else {
        const content = await readFile(path);
        out[key] = `file ${common} size=${stats.size} sum=${content.toString('base64').slice(-60)}`;
      }
    }
  };
  await walk(target, '');
  return out;
}

const restore = (target: string, options: MaterializeOptions = {}) =>
  materialize(repository, root, target, options);

/** `home` restored after the rest, into a folder made ahead (as the agent does for forwarded folders). */
async function restoreInParts(target: string, options: MaterializeOptions = {}) {
  const first = await restore(target, { ...options, only: (name) => name !== 'home' });
  expect(await readdir(target)).not.toContain('home');
  await mkdir(join(target, 'home'), { mode: 0o700 });
  const second = await restore(target, { ...options, only: (name) => name === 'home', adopt: ['home'] });
  return { entries: first.entries + second.entries, bytes: first.bytes + second.bytes };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-parts-'));
  repository = await LocalRepository.open(join(dir, 'repo'));
  await buildSource(join(dir, 'src'));
  root = (await snapshot(join(dir, 'src'), repository)).root;
});
afterEach(async () => {
  repository.close();
  await rm(dir, { recursive: true, force: true });
  for (const folder of extra.splice(0)) await rm(folder, { recursive: true, force: true });
});

describe('a restore in parts (only, adopt)', () => {
  it('gives exactly the files, modes, owners and mtimes of one whole restore', async () => {
    const whole = await restore(join(dir, 'whole'));
    const parts = await restoreInParts(join(dir, 'parts'));
    const expected = await listing(join(dir, 'whole'));
    // The whole restore is the source itself (the comparison is not between two empty results).
    expect(expected).toEqual(await listing(join(dir, 'src')));
    expect(Object.keys(expected)).toContain('home/ann/docs/deep/big.bin');
    expect(await listing(join(dir, 'parts'))).toEqual(expected);
    expect(parts).toEqual(whole);
    // The adopted folder got the image's mode and mtime, not the ones it was made with.
    expect(expected.home).toMatch(/mode=755 mtime=1330000000000000$/);
  });

  it('each part writes only its own entries', async () => {
    const target = join(dir, 'first-only');
    await restore(target, { only: (name) => name !== 'home' });
    const listed = await listing(target);
    expect(Object.keys(listed).filter((path) => path.startsWith('home'))).toEqual([]);
    expect(Object.keys(listed)).toEqual(expect.arrayContaining(['opt/tool/bin', 'top.txt', 'top-link']));

    const second = join(dir, 'second-only');
    await mkdir(join(second, 'home'), { recursive: true });
    await restore(second, { only: (name) => name === 'home', adopt: ['home'] });
    expect((await readdir(second)).sort()).toEqual(['home']);
  });

  it('refuses a second part whose entry is already there and not adopted, touching nothing', async () => {
    const target = join(dir, 'not-adopted');
    await restore(target, { only: (name) => name !== 'home' });
    await mkdir(join(target, 'home'));
    const before = await listing(target);
    await expect(restore(target, { only: (name) => name === 'home' })).rejects.toThrow(RestoreError);
    await expect(restore(target, { only: (name) => name === 'home' })).rejects.toThrow(
      /home is already there/,
    );
    expect(await listing(target)).toEqual(before);
  });

  it('refuses to adopt a folder that is not empty, or that is not a folder', async () => {
    const target = join(dir, 'not-empty');
    await restore(target, { only: (name) => name !== 'home' });
    await mkdir(join(target, 'home'));
    await writeFile(join(target, 'home', 'planted'), 'someone else’s');
    const before = await listing(target);
    const second = { only: (name: string) => name === 'home', adopt: ['home'] };
    await expect(restore(target, second)).rejects.toThrow(RestoreError);
    expect(await listing(target)).toEqual(before);

    const linked = join(dir, 'linked');
    await restore(linked, { only: (name) => name !== 'home' });
    await mkdir(join(dir, 'elsewhere'));
    await symlink(join(dir, 'elsewhere'), join(linked, 'home'));
    await expect(restore(linked, second)).rejects.toThrow(RestoreError);
    expect(await readdir(join(dir, 'elsewhere'))).toEqual([]);

    const file = join(dir, 'file');
    await restore(file, { only: (name) => name !== 'home' });
    await writeFile(join(file, 'home'), '');
    await expect(restore(file, second)).rejects.toThrow(RestoreError);
  });

  it('still refuses a whole restore into a folder that is not empty', async () => {
    const target = join(dir, 'busy');
    await mkdir(target);
    await writeFile(join(target, 'x'), 'x');
    await expect(restore(target)).rejects.toThrow(RestoreError);
    // Adopting names nothing when the restore is not in parts.
    await expect(restore(target, { adopt: ['x'] })).rejects.toThrow(RestoreError);
  });
});

describe('exclusive and inMemory restores', () => {
  it.each<[string, MaterializeOptions]>([
    ['exclusive', { exclusive: true }],
    ['inMemory', { inMemory: true }],
    ['exclusive and inMemory', { exclusive: true, inMemory: true }],
  ])('%s: the same result as the default, whole and in parts', async (_name, options) => {
    const expected = await listing(
      await (async () => {
        await restore(join(dir, 'default'));
        return join(dir, 'default');
      })(),
    );
    // In memory, as the agent does it: a folder of /dev/shm when this system has one.
    const parent = options.inMemory ? await mkdtemp(join('/dev/shm', 'upc-parts-')).catch(() => dir) : dir;
    if (parent !== dir) extra.push(parent);
    const whole = join(parent, 'whole');
    const result = await restore(whole, options);
    expect(await listing(whole)).toEqual(expected);
    expect(result.bytes).toBeGreaterThan(6 * MiB);

    const parts = join(parent, 'parts');
    await restoreInParts(parts, options);
    expect(await listing(parts)).toEqual(expected);
  });
});
