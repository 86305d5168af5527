import { randomBytes } from 'node:crypto';
import { chmod, copyFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalRepository, sha256Hex } from '@upc/image';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../../apps/agent/src/ipc.js';
import { AgentHome } from '../../apps/agent/src/state.js';
import type { Pc } from '../support/agent.js';
import { sh, simulatedHosts } from '../support/hosts.js';
import { compileProgram } from '../support/native.js';
import { testFolder } from '../support/scratch.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * Whatever reads or writes a session's layers as the PC's root (the daemon's snapshot, `upc
 * restore`) must not follow a name the session controls. These attacks are made from inside real
 * isolated sessions, by their user, with host folders only the PC's root may read.
 */

/**
 * Swaps each pair of names given (renameat2 RENAME_EXCHANGE), then sleeps MICROS microseconds, for
 * SECONDS. Not flat out: each swap is events for the daemon's watcher, and a flood of them would
 * only starve it.
 */
const SWAP_SOURCE = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 5 || argc % 2 == 0) return 2;
  time_t end = time(NULL) + atoi(argv[1]);
  long swaps = 0;
  while (time(NULL) < end) {
    for (int i = 3; i + 1 < argc; i += 2)
      if (renameat2(AT_FDCWD, argv[i], AT_FDCWD, argv[i + 1], RENAME_EXCHANGE) == 0) swaps++;
    usleep(atoi(argv[2]));
  }
  printf("%ld swaps\\n", swaps);
  return 0;
}
`;

let server: TestServer;
const host = simulatedHosts();
let swap: Awaited<ReturnType<typeof compileProgram>>;

beforeAll(async () => {
  server = await startTestServer();
  swap = await compileProgram('swap', SWAP_SOURCE);
});
afterAll(async () => {
  await server.close();
  await swap.dispose();
});

/** A folder only the PC's root may enter, holding a file `name` with a secret of its own. */
async function rootOnlyFolder(name = 'f'): Promise<{ dir: string; secret: string; file: string }> {
  const dir = await testFolder('upc-root-only-');
  await chmod(dir, 0o700);
  const secret = `ROOT-ONLY ${randomBytes(16).toString('hex')}\n`;
  const file = join(dir, name);
  await writeFile(file, secret, { mode: 0o600 });
  return { dir, secret, file };
}

/** A request to the session daemon of the PC, straight on its socket. */
async function daemon(pc: Pc, path: string): Promise<{ status: number; body: unknown }> {
  return call(new AgentHome(pc.home).socketPath, 'POST', path, {}, 30_000);
}

async function isolatedLogin(user: string, name: string): Promise<Pc> {
  await server.user(user);
  const pc = await (await host(name)).pc(server.url);
  const login = await pc.login(user);
  expect(login.code, login.stderr).toBe(0);
  return pc;
}

describe("the sync daemon reads only the session's own files", () => {
  it('whatever folder the session swaps for a link to a root-only folder while it snapshots (150 rounds)', async () => {
    const pc = await isolatedLogin('rae', 'race');
    // A name the session's folder does not have: a snapshot that listed the root-only folder
    // would have to read it.
    const target = await rootOnlyFolder('loot');
    await copyFile(swap.path, join(pc.files, 'swap'));
    await chmod(join(pc.files, 'swap'), 0o755);
    // 10 folders `dN` hold an `f` of their own; each `lN` names the root-only folder. The race
    // itself is run by the thousand against the snapshot alone (test/image/beneath.test.ts); here
    // it is run against the real daemon, its watcher and its commits.
    const ids = Array.from({ length: 10 }, (_, i) => String(i));
    const folders = ids.map((i) => `d${i}`).join(' ');
    const links = ids.map((i) => `l${i}`).join(' ');
    const pairs = ids.map((i) => `d${i} l${i}`).join(' ');
    await sh(
      pc,
      `mkdir race && cd race && for d in ${folders}; do mkdir $d && echo mine > $d/f; done` +
        ` && for l in ${links}; do ln -s ${target.dir} $l; done`,
    );
    await sh(pc, `cd race && (../swap 90 20000 ${pairs} > ../swaps.txt 2>&1 &) ; true`);

    let rounds = 0;
    for (; rounds < 150; rounds++) {
      await writeFile(join(pc.files, 'tick'), String(rounds)); // a change to commit each round
      const answer = await daemon(pc, '/sync');
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    }
    const swaps = await readFile(join(pc.files, 'swaps.txt'), 'utf8').catch(() => 'still running');
    expect(swaps).not.toMatch(/^0 swaps/);
    // Nothing the snapshots stored holds the secret: not on this PC, not on the server.
    const repo = await LocalRepository.open(join(pc.home, 'objects'));
    try {
      expect(repo.has(sha256Hex(Buffer.from(target.secret)))).toBe(false);
    } finally {
      repo.close();
    }
    expect(rounds).toBe(150);
    await pc.ok(['logout']);
  }, 180_000);

  it('a link churning between a link and a file does not stop the sync (each entry is looked at again, not the whole sync paused)', async () => {
    const pc = await isolatedLogin('ros', 'churn');
    await sh(
      pc,
      '(end=$(($(date +%s) + 15)); while [ $(date +%s) -lt $end ]; do ln -sfn a churn; rm -f churn; echo x > churn; rm -f churn; done &) ; true',
    );
    for (let round = 0; round < 40; round++) {
      await writeFile(join(pc.files, 'work.txt'), `round ${String(round)}\n`);
      const answer = await daemon(pc, '/sync');
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    }
    await pc.ok(['logout']);
  }, 120_000);
});

describe('upc restore --path writes only into the session', () => {
  it('through a folder the session replaced by a link to a root-only folder: nothing there is removed or written', async () => {
    const pc = await isolatedLogin('ray', 'restore');
    const target = await rootOnlyFolder();
    await sh(pc, 'mkdir -p docs && echo "first draft" > docs/f');
    const first = (await pc.ok(['sync', '--json'])) as { versionId: string };
    // The session swaps its folder for a link to where it wants the PC's root to write.
    await sh(pc, `rm -rf docs && ln -s ${target.dir} docs`);
    await pc.ok(['sync']);
    const before = await readdir(target.dir);

    const restore = await pc.run(['restore', first.versionId, '--path', 'docs/f']);
    expect(restore.code).not.toBe(0);
    expect(restore.stderr).toMatch(/docs/);
    expect(await readFile(target.file, 'utf8')).toBe(target.secret);
    expect(await readdir(target.dir)).toEqual(before);
    expect((await stat(target.file)).mode & 0o777).toBe(0o600);

    // The session goes on: a restore of the folder itself puts a real folder back.
    await sh(pc, 'rm docs');
    const folder = await pc.run(['restore', first.versionId, '--path', 'docs']);
    expect(folder.code, folder.stderr).toBe(0);
    expect(await sh(pc, 'cat docs/f')).toBe('first draft\n');
    expect(await readFile(target.file, 'utf8')).toBe(target.secret);
    await pc.ok(['logout']);
  }, 120_000);
});
