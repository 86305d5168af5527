import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hasOpenBeneath, openBeneath } from '@upc/driver';
import {
  Folder,
  LocalRepository,
  type OpenBeneath,
  removeBeneath,
  sha256Hex,
  snapshot,
  SnapshotCache,
} from '@upc/image';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compileProgram } from '../support/native.js';
import { scratch } from '../support/trees.js';

/**
 * A folder's names can be swapped for links at any moment by whoever else writes into it (a
 * session, while the PC's root snapshots or wipes its layers). These races run the library's own
 * code against a program that exchanges folders and links (renameat2 RENAME_EXCHANGE) in a loop.
 * Against the snapshot of old, which read a folder by its name, the same race stored the secret
 * within the first 30 of 1,979 rounds (and failed most rounds with EINVAL or ENOENT); here no round
 * may fail, and at least 200 must store it never.
 */

const SWAP_SOURCE = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  time_t end = time(NULL) + atoi(argv[1]);
  while (time(NULL) < end) {
    for (int i = 3; i + 1 < argc; i += 2) renameat2(AT_FDCWD, argv[i], AT_FDCWD, argv[i + 1], RENAME_EXCHANGE);
    usleep(atoi(argv[2]));
  }
  return 0;
}
`;

const PAIRS = 20;
const SECRET = 'OUTSIDE THE FOLDER\n';

let swap: Awaited<ReturnType<typeof compileProgram>>;
let dir: string;
let swapper: ChildProcess | undefined;

beforeAll(async () => {
  swap = await compileProgram('swap-pairs', SWAP_SOURCE);
});
afterAll(async () => {
  await swap.dispose();
});
beforeEach(async () => {
  dir = await scratch('upc-beneath-');
  return async () => {
    swapper?.kill('SIGKILL');
    swapper = undefined;
    await rm(dir, { recursive: true, force: true });
  };
});

/** `root` with PAIRS folders `dN` holding an `f`, and links `lN` to `outside`, being swapped. */
async function racingFolder(root: string, outside: string, seconds: number): Promise<void> {
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'loot'), SECRET);
  const args: string[] = [];
  for (let i = 0; i < PAIRS; i++) {
    await mkdir(join(root, `d${String(i)}`), { recursive: true });
    await writeFile(join(root, `d${String(i)}`, 'f'), 'mine\n');
    await symlink(outside, join(root, `l${String(i)}`));
    args.push(join(root, `d${String(i)}`), join(root, `l${String(i)}`));
  }
  swapper = spawn(swap.path, [String(seconds), '1000', ...args], { stdio: 'ignore' });
}

const openers: [string, OpenBeneath | undefined][] = [
  ['one name at a time through /proc', undefined],
  ...(hasOpenBeneath() ? [['openat2 (the driver)', openBeneath] as [string, OpenBeneath]] : []),
];

describe.each(openers)('folders reached %s', (_how, opener) => {
  it('a snapshot racing a swapper never stores what a link points at (at least 200 rounds)', async () => {
    const root = join(dir, 'ws');
    await racingFolder(root, join(dir, 'outside'), 8);
    const secret = sha256Hex(Buffer.from(SECRET));
    const cache = new SnapshotCache();
    let rounds = 0;
    let stored = 0;
    const until = Date.now() + 6000;
    while (Date.now() < until || rounds < 200) {
      const repo = await LocalRepository.open(join(dir, 'repo'));
      try {
        const result = await snapshot(root, repo, { cache, ...(opener ? { openBeneath: opener } : {}) });
        expect(result.root).toMatch(/^[0-9a-f]{64}$/); // it does not fail: what changed is looked at again
        if (repo.has(secret)) stored++;
      } finally {
        repo.close();
      }
      rounds++;
    }
    expect(stored).toBe(0);
    expect(rounds).toBeGreaterThanOrEqual(200);
  }, 60_000);

  it('a removal racing a swapper removes the folder and nothing outside it', async () => {
    for (let round = 0; round < 20; round++) {
      const root = join(dir, `ws-${String(round)}`);
      const outside = join(dir, 'outside');
      await racingFolder(root, outside, 2);
      const parent = Folder.open(dir, opener);
      try {
        removeBeneath(parent, `ws-${String(round)}`);
      } finally {
        parent.close();
      }
      swapper?.kill('SIGKILL');
      expect(existsSync(root)).toBe(false);
      expect(await readdir(outside)).toEqual(['loot']);
      expect(await readFile(join(outside, 'loot'), 'utf8')).toBe(SECRET);
    }
  }, 60_000);

  it('opens nothing through a link, nor out of the folder', async () => {
    const root = join(dir, 'ws');
    await mkdir(join(root, 'a'), { recursive: true });
    await writeFile(join(dir, 'outside.txt'), SECRET);
    await symlink(join(dir, 'outside.txt'), join(root, 'a', 'link'));
    await symlink(dir, join(root, 'up'));
    const folder = Folder.open(root, opener);
    try {
      for (const path of ['a/link', 'up/outside.txt']) {
        expect(() => folder.open(path, 0), path).toThrow(/ELOOP|ENOTDIR/);
      }
      for (const path of ['../outside.txt', 'a/../../outside.txt', '/etc/passwd', 'a//link']) {
        expect(() => folder.open(path, 0), path).toThrow();
      }
    } finally {
      folder.close();
    }
  });
});
