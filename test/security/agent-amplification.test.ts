import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { encodeObject, hashTree, type Entry } from '@upc/image';
import type { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pc, simulatedPcs, type UpcResult } from '../support/agent.js';
import { workspaceWithLease } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { testFolder } from '../support/scratch.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * Issue 14, finding 8: decompression amplification. A 2 KiB object declaring 64 MiB of zeros,
 * named by many files, became 1 GiB in a PC's memory at login (813 MiB in the login process, the
 * rest in the layers in /dev/shm), and the quota counted only the 2 KiB.
 */

const MiB = 1024 * 1024;
/**
 * What the login of a bomb may hold beyond the login of an empty workspace: at most two decoded
 * 64 MiB chunks (one checked as it is fetched, one being written), and some slack. Before the fix,
 * it held 700 MiB more, and 1 GiB more in /dev/shm.
 */
const HEADROOM = 160 * MiB;
const TIME = '/usr/bin/time';
const canMeasure = existsSync(TIME);
const canMount = process.getuid?.() === 0;

let server: TestServer;
const pc = simulatedPcs(() => server.url);
/** The peak of a login of an empty workspace on this machine, the measure of what is normal. */
let normalPeak = 0;
beforeAll(async () => {
  server = await startTestServer();
  if (!canMeasure) return;
  await server.user('ivy');
  const a = await Pc.create('pc-normal', server.url);
  try {
    const { result, peak } = await measuredLogin(a, 'ivy');
    expect(result.code, result.stderr).toBe(0);
    normalPeak = peak;
  } finally {
    await a.dispose();
  }
});
afterAll(async () => {
  await server.close();
});

const base = { mode: 0o644, mtime: 1_700_000_000_000_000, owner: 'user', group: 'user' } as const;

interface Bomb {
  /** Files of 64 MiB, each the same 2 KiB chunk of zeros. */
  files: number;
  /** Random bytes beside them, enough to pass the agent's ratio check. */
  padding?: number;
}

type Leased = Awaited<ReturnType<typeof workspaceWithLease>>;

/**
 * Crafts the image with libs/image's primitives and sends it as a client would: objects first,
 * then the version, onto `parentId`.
 */
async function commitBomb(
  client: UpcClient,
  setup: Leased,
  bomb: Bomb,
  options: { parentId?: string | null; stats?: Record<string, number> } = {},
) {
  const id = setup.workspace.id;
  const zeros = await encodeObject(Buffer.alloc(64 * MiB));
  expect(zeros.bytes.length).toBeLessThan(4096);
  const objects = [zeros];
  const entries: Entry[] = Array.from({ length: bomb.files }, (_, i) => ({
    ...base,
    name: `zeros-${String(i).padStart(4, '0')}`,
    type: 'file',
    size: 64 * MiB,
    chunks: [zeros.hash],
  }));
  if (bomb.padding) {
    const noise = await encodeObject(randomBytes(bomb.padding));
    objects.push(noise);
    entries.push({ ...base, name: 'padding', type: 'file', size: bomb.padding, chunks: [noise.hash] });
  }
  const home = hashTree({ entries });
  const root = hashTree({ entries: [{ ...base, mode: 0o755, name: 'home', type: 'dir', tree: home.hash }] });
  for (const tree of [home, root]) objects.push(await encodeObject(tree.bytes, tree.hash));
  for (const object of objects) await client.uploadObject(id, object.hash, object.bytes);
  return client.commit(id, {
    parentId: options.parentId ?? null,
    rootTree: root.hash,
    kind: 'sync',
    deviceId: setup.device.id,
    fencingToken: setup.lease.fencingToken,
    stats: options.stats ?? {},
    chunker: null,
    objects: objects.map((object) => object.hash),
  });
}

/** A user whose workspace `default` holds the bomb, its lease released for a PC to log in. */
async function userWithBomb(username: string, bomb: Bomb): Promise<void> {
  const { client } = await server.user(username);
  const setup = await workspaceWithLease(client, 'default');
  await commitBomb(client, setup, bomb);
  await client.releaseLease(setup.workspace.id, setup.device.id, setup.lease.fencingToken);
}

/** `upc login` on the PC under GNU time: its result, and the login process's peak resident memory. */
async function measuredLogin(on: Pc, user: string): Promise<{ result: UpcResult; peak: number }> {
  on.prefix = [TIME, '-f', 'upc-peak-rss-kb=%M'];
  try {
    const result = await on.login(user);
    const kb = /upc-peak-rss-kb=(\d+)/.exec(result.stderr)?.[1];
    if (kb === undefined) throw new Error(`no peak memory in: ${result.stderr}`);
    return { result, peak: Number(kb) * 1024 };
  } finally {
    on.prefix = [];
  }
}

/** Bytes of every file under `root`. */
async function bytesUnder(root: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) total += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Nothing big is left of the login on the PC: not in its agent home, not in memory. */
async function expectNothingLarge(on: Pc): Promise<void> {
  expect(await bytesUnder(on.home)).toBeLessThan(MiB);
  expect(existsSync(on.memoryLayers)).toBe(false);
}

describe('a tiny chunk named as gigabytes of files', () => {
  it.skipIf(!canMeasure)(
    `${canMeasure ? '' : `(skipped: no ${TIME} to measure peak memory) `}is refused at login before anything is restored, the login holding little memory`,
    async () => {
      await userWithBomb('eve', { files: 16 });

      const a = await pc('pc-a');
      const { result, peak } = await measuredLogin(a, 'eve');
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(/files would come to 1\.00 GiB from only 2\.\d KiB stored/);
      expect(result.stderr).toMatch(/crafted image/);
      expect(peak).toBeLessThan(normalPeak + HEADROOM);
      await expectNothingLarge(a);
    },
    120_000,
  );

  it.skipIf(!canMeasure)(
    `${canMeasure ? '' : `(skipped: no ${TIME} to measure peak memory) `}with enough real bytes to pass the ratio, is restored without the login holding more than one chunk`,
    async () => {
      await userWithBomb('fay', { files: 16, padding: 2 * MiB });

      const a = await pc('pc-a');
      const { result, peak } = await measuredLogin(a, 'fay');
      expect(result.code, result.stderr).toBe(0);
      expect(peak).toBeLessThan(normalPeak + HEADROOM);
      const logout = await a.run(['logout']);
      expect(logout.code, logout.stderr).toBe(0);
      await expectNothingLarge(a);
    },
    180_000,
  );

  it.skipIf(!canMount)(
    `${canMount ? '' : '(skipped: it needs root, to mount a small tmpfs) '}does not fit where the layers go: the login says so before writing anything`,
    async () => {
      await userWithBomb('gus', { files: 4, padding: MiB });
      // The PC's agent home on a filesystem of 128 MiB, its layers kept on disk there.
      const small = await testFolder('upc-small-disk-');
      const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=128m', 'tmpfs', small]);
      expect(mounted.status, mounted.stderr.toString()).toBe(0);
      const a = await Pc.create('pc-a', server.url, small);
      try {
        await a.ok(['device', 'layers', 'disk']);
        const result = await a.login('gus');
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(
          /files come to 257\.\d MiB, more than the .* free for them on the disk/,
        );
        await expectNothingLarge(a);
      } finally {
        await a.dispose();
        spawnSync('umount', ['-l', small]);
      }
    },
  );
});

describe('the quota counts what a version expands to', () => {
  it('refuses a commit whose files pass the quota, whatever the agent says in its stats', async () => {
    const { client } = await server.user('hal');
    const setup = await workspaceWithLease(client, 'default');
    const first = await commitBomb(client, setup, { files: 0 });
    await (await server.admin()).setQuota(setup.workspace.id, 100 * MiB);

    // 2 KiB stored, well inside the quota; 1 GiB of files, whatever the stats claim.
    const bomb = commitBomb(client, setup, { files: 16 }, { parentId: first.id, stats: { bytes: 0 } });
    const problem = await problemOf(bomb);
    expect(problem.status).toBe(413);
    expect(problem.code).toBe('quota_exceeded');
    expect(problem.message).toMatch(/files come to more than the workspace's quota of 104857600 bytes/);

    // A version within it is taken.
    const fits = await commitBomb(client, setup, { files: 1 }, { parentId: first.id });
    expect(fits.parentId).toBe(first.id);
  });
});
