import { randomBytes } from 'node:crypto';
import { appendFile, chmod, mkdir, mkdtemp, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_CHUNKER } from './chunker.js';
import { diffTrees } from './diff.js';
import { materialize } from './materialize.js';
import { LocalRepository } from './repository.js';
import { primeSnapshotCache, snapshot, SnapshotCache } from './snapshot.js';

const MiB = 1024 * 1024;

let dir: string;
let src: string;
let out: string;
let repository: LocalRepository;
let root: string;

/** Small, empty and large files (several chunks, one streamed), nested folders, symlinks. */
async function buildSource(): Promise<void> {
  await mkdir(join(src, 'docs', 'notes', 'deep'), { recursive: true });
  await mkdir(join(src, 'empty-dir'));
  await mkdir(join(src, 'data'));
  await writeFile(join(src, 'top.txt'), 'top level\n');
  await writeFile(join(src, 'empty'), '');
  await writeFile(join(src, 'docs', 'empty.txt'), '');
  await writeFile(join(src, 'docs', 'notes', 'deep', 'note.md'), '# deep\n');
  for (let i = 0; i < 20; i++) await writeFile(join(src, 'docs', 'notes', `n-${i}.txt`), `note ${i}\n`);
  await writeFile(join(src, 'data', 'medium.bin'), randomBytes(3 * MiB));
  await writeFile(join(src, 'data', 'large.bin'), randomBytes(9 * MiB));
  await writeFile(join(src, 'data', 'script.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(src, 'data', 'script.sh'), 0o755);
  await chmod(join(src, 'docs', 'empty.txt'), 0o600);
  await utimes(join(src, 'top.txt'), 1_500_000_000.123456, 1_500_000_000.123456);
  await symlink('top.txt', join(src, 'link-to-top'));
  await symlink('../../top.txt', join(src, 'docs', 'notes', 'up-link'));
  await symlink('nowhere', join(src, 'data', 'dangling'));
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-prime-'));
  src = join(dir, 'src');
  out = join(dir, 'out');
  repository = await LocalRepository.open(join(dir, 'repo'));
  await buildSource();
  root = (await snapshot(src, repository)).root;
  await materialize(repository, root, out);
});
afterEach(async () => {
  repository.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a snapshot cache primed from a restore', () => {
  it('makes the first snapshot after the restore read nothing and give back the restored tree', async () => {
    const cache = await primeSnapshotCache(repository, root, out);
    const result = await snapshot(out, repository, { cache });
    expect(result.root).toBe(root);
    expect(result.stats).toMatchObject({ filesRead: 0, bytesRead: 0, files: 27, symlinks: 3, dirs: 5 });
    expect(result.stats.bytes).toBe(12 * MiB + 185);

    // saved and loaded, it is as good
    const reloaded = SnapshotCache.fromJSON(
      JSON.parse(JSON.stringify(await primeSnapshotCache(repository, root, out))),
    );
    const again = await snapshot(out, repository, { cache: reloaded });
    expect(again.root).toBe(root);
    expect(again.stats.filesRead).toBe(0);
  });

  it('with the watcher’s list of changed paths, reads only the file that changed', async () => {
    const cache = await primeSnapshotCache(repository, root, out);
    await appendFile(join(out, 'docs', 'notes', 'n-3.txt'), 'edited\n');
    const result = await snapshot(out, repository, { cache, changed: ['docs/notes/n-3.txt'] });
    expect(result.stats.filesRead).toBe(1);
    expect(result.stats.bytesRead).toBe('note 3\nedited\n'.length);
    expect(result.stats.dirsRead).toBe(3); // the root, docs and docs/notes
    expect(await diffTrees(repository, root, result.root)).toEqual({
      added: [],
      removed: [],
      changed: ['docs/notes/n-3.txt'],
    });
    // and the same from a full walk
    const full = await snapshot(out, repository, { cache: await primeSnapshotCache(repository, root, out) });
    expect(full.root).toBe(result.root);
    expect(full.stats.filesRead).toBe(1);
  });

  it('leaves out files changed before it was primed, and looks there whatever it is told', async () => {
    await writeFile(join(out, 'data', 'script.sh'), '#!/bin/sh\necho changed\n');
    await unlink(join(out, 'docs', 'notes', 'deep', 'note.md'));
    await writeFile(join(out, 'docs', 'notes', 'deep', 'added.txt'), 'new\n');
    const cache = await primeSnapshotCache(repository, root, out);
    expect(cache.root?.dirs.get('data')?.files.has('script.sh')).toBe(false);
    expect(cache.root?.dirs.get('data')?.files.has('medium.bin')).toBe(true);
    // the watcher was not running yet: it reports nothing
    const result = await snapshot(out, repository, { cache, changed: [] });
    expect(result.stats.filesRead).toBe(2); // script.sh and added.txt
    expect(await diffTrees(repository, root, result.root)).toEqual({
      added: ['docs/notes/deep/added.txt'],
      removed: ['docs/notes/deep/note.md'],
      changed: ['data/script.sh'],
    });
    // the snapshot's cache is clean again: told nothing changed, it looks nowhere
    const next = await snapshot(out, repository, { cache, changed: [] });
    expect(next.root).toBe(result.root);
    expect(next.stats).toMatchObject({ filesRead: 0, dirsRead: 1 });
  });

  it('keeps a file whose content is as restored but whose mode is not, and records the new mode', async () => {
    await chmod(join(out, 'docs', 'notes', 'n-7.txt'), 0o600);
    await rm(join(out, 'link-to-top'));
    await symlink('empty', join(out, 'link-to-top'));
    const primed = await primeSnapshotCache(repository, root, out);
    const reloaded = SnapshotCache.fromJSON(JSON.parse(JSON.stringify(primed)));
    const full = await snapshot(out, repository);
    for (const cache of [primed, reloaded]) {
      const result = await snapshot(out, repository, { cache, changed: [] });
      expect(result.stats.filesRead).toBe(0);
      expect(await diffTrees(repository, root, result.root)).toEqual({
        added: [],
        removed: [],
        changed: ['docs/notes/n-7.txt', 'link-to-top'],
      });
      expect(result.root).toBe(full.root);
    }
  });

  it('is only used by a snapshot with the chunker it was primed for', async () => {
    const cache = await primeSnapshotCache(repository, root, out);
    expect(cache.chunker).toEqual(DEFAULT_CHUNKER);
    const chunker = { algorithm: 'fastcdc-gear32' as const, minSize: 1024, avgSize: 4096, maxSize: 16384 };
    const result = await snapshot(out, repository, { cache, chunker });
    expect(result.stats.filesRead).toBe(27);
    expect(cache.chunker).toEqual(chunker);
    expect((await snapshot(out, repository, { cache })).stats.filesRead).toBe(0);
  });
});
