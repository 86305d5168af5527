import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalRepository } from '@upc/image';
import type { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentListing, filesUnder, loginOk, logoutOk, type Pc, simulatedPcs } from '../support/agent.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * Issue 14, finding 15: the PC's encrypted cache named its files by the SHA-256 of their content
 * (`packs/xx/<id>.enc`, `data/xx/<id>.enc`), so whoever had the disk could confirm that a user had
 * a given file by hashing it. They are named by a keyed hash now.
 */

interface LoginJson {
  fetched: { objects: number; bytes: number };
}

let server: TestServer;
const pc = simulatedPcs(() => server.url);
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** A workspace made on another PC, so that a login on `pc-a` fetches it. */
async function workspaceFromElsewhere(user: string): Promise<void> {
  const w = await pc('pc-w');
  await loginOk<LoginJson>(w, user);
  await mkdir(join(w.files, 'docs'));
  for (let i = 0; i < 30; i++) await writeFile(join(w.files, 'docs', `note-${i}.txt`), `note ${i}\n`);
  await writeFile(join(w.files, 'photo.jpg'), randomBytes(700 * 1024)); // an object of its own
  await writeFile(join(w.files, 'known.pdf'), 'a document anyone can get and hash\n'.repeat(100));
  await logoutOk(w);
}

/**
 * Everything a disk could be matched against: the id of every object and every store file of the
 * session (pack ids, object ids), and the SHA-256 of every file of the workspace.
 */
async function idsOf(on: Pc): Promise<string[]> {
  const store = join(on.home, 'session', 'objects');
  const repository = await LocalRepository.open(store);
  const ids = [...repository.ids()];
  repository.close();
  for (const file of await filesUnder(store)) ids.push(file.slice(-64));
  for (const file of await filesUnder(on.files)) {
    ids.push(
      createHash('sha256')
        .update(await readFile(join(on.files, file)))
        .digest('hex'),
    );
  }
  return ids;
}

/** Every name under `root`, folders included, as paths relative to it. */
async function namesUnder(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

async function cacheKey(client: UpcClient, deviceName: string): Promise<Buffer> {
  const device = (await client.listDevices()).find((d) => d.name === deviceName);
  if (!device) throw new Error(`no device ${deviceName}`);
  return Buffer.from((await client.deviceCacheKey(device.id)).key, 'base64');
}

describe("the PC's encrypted cache", () => {
  it('names no file by the hash of anything in the workspace, and the next login still uses it', async () => {
    const { id: userId } = await server.user('ada');
    await workspaceFromElsewhere('ada');
    const a = await pc('pc-a');
    await a.ok(['device', 'keep-cache', 'on']);
    expect((await loginOk<LoginJson>(a, 'ada')).fetched.objects).toBeGreaterThan(3);
    await writeFile(join(a.files, 'made-here.txt'), 'made on this PC\n');
    await a.ok(['sync']);
    const ids = await idsOf(a);
    const expected = await contentListing(a.files);
    await logoutOk(a);

    const cache = join(a.home, 'cache', userId);
    const names = await namesUnder(cache);
    expect(names.length).toBeGreaterThan(1);
    for (const name of names) {
      expect(name).toMatch(/^([0-9a-f]{64}\.enc|head\.enc)$/);
      for (const id of ids) expect(name.includes(id), `${name} names ${id}`).toBe(false);
    }

    const again = await loginOk<LoginJson>(a, 'ada');
    expect(again.fetched.objects).toBe(0);
    expect(await contentListing(a.files)).toEqual(expected);
    await logoutOk(a);
    expect(await namesUnder(cache)).toEqual(names); // nothing written again
  });

  it("uses a cache an earlier agent kept under the objects' ids, and renames it", async () => {
    const { id: userId, client } = await server.user('bea');
    await workspaceFromElsewhere('bea');
    const a = await pc('pc-a');
    await a.ok(['device', 'keep-cache', 'on']);
    await loginOk<LoginJson>(a, 'bea');
    const storeFiles = await filesUnder(join(a.home, 'session', 'objects'));
    const ids = await idsOf(a);
    await logoutOk(a);

    // The cache as the agent before this one kept it: each store file sealed as it is, under its name.
    const cache = join(a.home, 'cache', userId);
    const key = await cacheKey(client, 'pc-a');
    const kept = new Map<string, Buffer>();
    for (const name of await namesUnder(cache)) {
      if (name === 'head.enc') continue;
      const body = await readFile(join(cache, name));
      const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, 12));
      decipher.setAuthTag(body.subarray(body.length - 16));
      const plain = Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]);
      const end = 1 + (plain[0] ?? 0);
      kept.set(plain.toString('latin1', 1, end), plain.subarray(end));
      await rm(join(cache, name));
    }
    expect([...kept.keys()].sort()).toEqual(storeFiles.sort());
    for (const [file, bytes] of kept) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      await mkdir(join(cache, file, '..'), { recursive: true });
      await writeFile(
        join(cache, `${file}.enc`),
        Buffer.concat([nonce, cipher.update(bytes), cipher.final(), cipher.getAuthTag()]),
      );
    }

    const again = await loginOk<LoginJson>(a, 'bea');
    expect(again.fetched.objects).toBe(0);
    const names = await namesUnder(cache);
    expect(names.filter((name) => name !== 'head.enc')).toHaveLength(storeFiles.length);
    for (const name of names) for (const id of ids) expect(name.includes(id), name).toBe(false);
    await logoutOk(a);
  });
});
