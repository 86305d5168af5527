import { appendFile, mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { diffTrees, LocalRepository, snapshot, SnapshotCache } from '@upc/image';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scratch } from '../support/trees.js';

let dir: string;
let src: string;
let repository: LocalRepository;
beforeEach(async () => {
  dir = await scratch('upc-incremental-');
  src = join(dir, 'src');
  repository = await LocalRepository.open(join(dir, 'repo'));
  for (let d = 0; d < 10; d++) {
    await mkdir(join(src, `dir-${d}`), { recursive: true });
    for (let f = 0; f < 20; f++)
      await writeFile(join(src, `dir-${d}`, `file-${f}.txt`), `dir ${d} file ${f}\n`);
  }
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('incremental snapshots', () => {
  it('read only the files whose size, mtime or inode changed, and write only new objects', async () => {
    const cache = new SnapshotCache();
    const first = await snapshot(src, repository, { cache });
    expect(first.stats).toMatchObject({ files: 200, filesRead: 200, dirs: 10 });
    const objects = repository.size;

    const unchanged = await snapshot(src, repository, { cache });
    expect(unchanged.root).toBe(first.root);
    expect(unchanged.stats.filesRead).toBe(0);
    expect(repository.size).toBe(objects);

    await appendFile(join(src, 'dir-3', 'file-7.txt'), 'more\n');
    const edited = join(src, 'dir-5', 'file-1.txt');
    await unlink(edited);
    await writeFile(edited, 'dir 5 file 1\n'); // same size and content, new inode
    const second = await snapshot(src, repository, { cache });
    expect(second.stats.filesRead).toBe(2);
    expect(second.stats.bytesRead).toBe('dir 3 file 7\nmore\n'.length + 'dir 5 file 1\n'.length);
    // new: one chunk, and the trees on the changed paths (two folders and the root)
    expect(repository.size - objects).toBe(4);
    expect(await diffTrees(repository, first.root, second.root)).toEqual({
      added: [],
      removed: [],
      changed: ['dir-3/file-7.txt', 'dir-5/file-1.txt'],
    });
  });

  it('with the watcher’s list of changed paths, look at nothing else', async () => {
    const cache = new SnapshotCache();
    const first = await snapshot(src, repository, { cache });
    await writeFile(join(src, 'dir-2', 'new.txt'), 'new file\n');
    await rm(join(src, 'dir-8'), { recursive: true });
    // a change the watcher did not report is not looked at: that is the contract
    await appendFile(join(src, 'dir-0', 'file-0.txt'), 'unreported\n');
    const second = await snapshot(src, repository, { cache, changed: ['dir-2/new.txt', 'dir-8'] });
    expect(second.stats.dirsRead).toBe(2); // the root and dir-2
    expect(second.stats.filesRead).toBe(1);
    expect(await diffTrees(repository, first.root, second.root)).toEqual({
      added: ['dir-2/new.txt'],
      removed: ['dir-8'],
      changed: [],
    });
    // a full rescan then finds the unreported change too
    const third = await snapshot(src, repository, { cache });
    expect((await diffTrees(repository, second.root, third.root)).changed).toEqual(['dir-0/file-0.txt']);
  });

  it('survive being saved and loaded', async () => {
    const cache = new SnapshotCache();
    const first = await snapshot(src, repository, { cache });
    const reloaded = SnapshotCache.fromJSON(JSON.parse(JSON.stringify(cache)));
    const second = await snapshot(src, repository, { cache: reloaded });
    expect(second.root).toBe(first.root);
    expect(second.stats.filesRead).toBe(0);
  });

  it('diff reports kinds that changed as removed and added', async () => {
    const first = await snapshot(src, repository);
    await rm(join(src, 'dir-1'), { recursive: true });
    await writeFile(join(src, 'dir-1'), 'now a file');
    const second = await snapshot(src, repository);
    expect(await diffTrees(repository, first.root, second.root)).toEqual({
      added: ['dir-1'],
      removed: ['dir-1'],
      changed: [],
    });
    expect((await diffTrees(repository, null, first.root)).added).toHaveLength(10);
  });
});

describe('names that are not UTF-8', () => {
  it('are reported and left out rather than saved changed', async () => {
    const raw = Buffer.concat([Buffer.from(src + '/'), Buffer.from([0x66, 0xff, 0x6f])]);
    await writeFile(raw, 'latin-1 name');
    const skipped: string[] = [];
    const result = await snapshot(src, repository, {
      onSkip: (path, reason) => skipped.push(`${path}: ${reason}`),
    });
    expect(skipped).toEqual(['f\uFFFDo: its name is not valid UTF-8']);
    expect(result.stats.files).toBe(200);
  });
});
