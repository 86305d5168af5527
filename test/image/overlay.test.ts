import { execFile } from 'node:child_process';
import { fstatSync } from 'node:fs';
import { lstat, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeTree, LocalRepository, materialize, snapshot } from '@upc/image';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scratch } from '../support/trees.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

let dir: string;
beforeEach(async () => {
  dir = await scratch('upc-overlay-');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

// An overlayfs upper layer records a deleted host file as a 0/0 character device, which only
// root can make; the Linux driver provides the same hooks in real sessions.
describe.runIf(isRoot)('overlay upper layers (cow rules)', () => {
  it('keep whiteouts and opaque folders through snapshot and restore', async () => {
    const upper = join(dir, 'upper');
    await mkdir(join(upper, 'replaced'), { recursive: true });
    await writeFile(join(upper, 'replaced', 'new.conf'), 'mine\n');
    await run('mknod', [join(upper, 'hosts.deny'), 'c', '0', '0']);
    // Folders are told apart by inode: the snapshot asks about a folder it has open.
    const opaque = new Set<bigint>([(await stat(join(upper, 'replaced'), { bigint: true })).ino]);
    const isOpaque = (fd: number) => opaque.has(fstatSync(fd, { bigint: true }).ino);
    const repository = await LocalRepository.open(join(dir, 'repo'));
    const first = await snapshot(upper, repository, { isOpaque });
    expect(first.stats.whiteouts).toBe(1);
    const entries = decodeTree(await repository.read(first.root)).entries;
    expect(entries.map((e) => [e.name, e.type, e.type === 'dir' ? e.opaque : undefined])).toEqual([
      ['hosts.deny', 'whiteout', undefined],
      ['replaced', 'dir', true],
    ]);

    await expect(materialize(repository, first.root, join(dir, 'plain'))).rejects.toThrow(/needs the driver/);

    const restored = join(dir, 'restored');
    const madeOpaque: bigint[] = [];
    await materialize(repository, first.root, restored, {
      writeWhiteout: async (path) => {
        await run('mknod', [path, 'c', '0', '0']);
      },
      setOpaque: async (path) => {
        madeOpaque.push((await lstat(path, { bigint: true })).ino);
      },
    });
    expect(madeOpaque).toEqual([(await stat(join(restored, 'replaced'), { bigint: true })).ino]);
    opaque.clear();
    for (const ino of madeOpaque) opaque.add(ino);
    const again = await snapshot(restored, repository, { isOpaque });
    expect(again.root).toBe(first.root);
  });
});
