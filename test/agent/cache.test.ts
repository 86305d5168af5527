import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRepository } from '@upc/image';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CachedHead,
  keptName,
  loadCache,
  readCachedHead,
  saveCache,
} from '../../apps/agent/src/cache.js';
import { AgentHome } from '../../apps/agent/src/state.js';

const USER = 'user-1';
const MARKER = Buffer.from('uPC cache test plaintext marker 7f3a');

let dir: string;
let home: AgentHome;
let key: string;
let plaintexts: Map<string, Buffer>;
const opened: LocalRepository[] = [];

function newKey(): string {
  return randomBytes(32).toString('base64');
}

/** Seals like cache.ts does: nonce (12) | AES-256-GCM ciphertext | tag (16). */
function seal(sealKey: string, plain: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(sealKey, 'base64'), nonce);
  return Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/** A store file sealed as cache.ts keeps it: its name's length, its name, its bytes. */
function sealStoreFile(sealKey: string, storeFile: string, bytes: Buffer): Buffer {
  return seal(sealKey, Buffer.concat([Buffer.of(storeFile.length), Buffer.from(storeFile), bytes]));
}

function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] ?? 0) ^ 0xff;
  return copy;
}

/** Files under `root` (relative paths), folders left out. */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort();
}

async function openRepo(): Promise<LocalRepository> {
  const repository = await LocalRepository.open(home.objectsDir);
  opened.push(repository);
  return repository;
}

async function expectAllReadable(repository: LocalRepository): Promise<void> {
  for (const [hash, plaintext] of plaintexts) {
    expect(repository.has(hash)).toBe(true);
    expect((await repository.read(hash)).equals(plaintext)).toBe(true);
  }
}

/** The session's store: one pack of small objects (the marker among them, stored raw) and one data file. */
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-cache-'));
  home = new AgentHome(dir);
  key = newKey();
  const repository = await openRepo();
  plaintexts = new Map();
  for (const plaintext of [
    MARKER,
    randomBytes(300),
    Buffer.from('line\n'.repeat(1000)),
    randomBytes(600 * 1024),
  ])
    plaintexts.set(await repository.write(plaintext), plaintext);
  await repository.flush();
  repository.close();
});
afterEach(async () => {
  for (const repository of opened.splice(0)) repository.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the object cache', () => {
  it('round-trips the store through the cache, held in memory until writeHeld', async () => {
    const storeFiles = await filesUnder(home.objectsDir);
    expect(storeFiles).toHaveLength(2);
    expect(await saveCache(home, USER, key)).toBe(2);
    expect(await filesUnder(home.cacheDir(USER))).toEqual(
      storeFiles.map((file) => keptName(key, file)).sort(),
    );
    expect(await saveCache(home, USER, key)).toBe(0); // already kept

    await rm(home.objectsDir, { recursive: true, force: true });
    const repository = await openRepo();
    expect(await loadCache(home, USER, key, repository)).toBe(2);
    await expectAllReadable(repository);
    expect(await filesUnder(home.objectsDir)).toEqual([]); // no plaintext on disk yet

    await repository.writeHeld();
    expect(await filesUnder(home.objectsDir)).toEqual(storeFiles);
    const reopened = await openRepo();
    await expectAllReadable(reopened);
  });

  it('keeps no plaintext in the cache files', async () => {
    const [pack] = (await filesUnder(home.objectsDir)).filter((file) => file.startsWith('packs/'));
    if (!pack) throw new Error('no pack');
    expect((await readFile(join(home.objectsDir, pack))).includes(MARKER)).toBe(true); // sanity
    await saveCache(home, USER, key);
    const big = [...plaintexts.values()].find((plaintext) => plaintext.length > 512 * 1024);
    if (!big) throw new Error('no big object');
    for (const file of await filesUnder(home.cacheDir(USER))) {
      const body = await readFile(join(home.cacheDir(USER), file));
      expect(body.includes(MARKER), file).toBe(false);
      expect(body.includes(big.subarray(1000, 1064)), file).toBe(false);
    }
  });

  it('records the head, and forgets it when saved without one', async () => {
    const head: CachedHead = {
      workspaceId: 'ws-1',
      versionId: 'v-42',
      root: 'ab'.repeat(32),
      fileBytes: 1234,
    };
    await saveCache(home, USER, key, head);
    expect(await readCachedHead(home, USER, key)).toEqual(head);
    const first: CachedHead = { ...head, versionId: null, fileBytes: 0 };
    await saveCache(home, USER, key, first);
    expect(await readCachedHead(home, USER, key)).toEqual(first);
    expect((await readFile(join(home.cacheDir(USER), 'head.enc'))).includes('ws-1')).toBe(false);

    await saveCache(home, USER, key);
    expect(existsSync(join(home.cacheDir(USER), 'head.enc'))).toBe(false);
    expect(await readCachedHead(home, USER, key)).toBeUndefined();
  });

  it('gives no head when there is none, for another key, or when head.enc is damaged', async () => {
    expect(await readCachedHead(home, USER, key)).toBeUndefined();
    const head: CachedHead = { workspaceId: 'ws-1', versionId: 'v-1', root: 'r', fileBytes: 1 };
    await saveCache(home, USER, key, head);
    expect(await readCachedHead(home, USER, newKey())).toBeUndefined();
    expect(await readCachedHead(home, 'someone-else', key)).toBeUndefined();

    const file = join(home.cacheDir(USER), 'head.enc');
    const sealed = await readFile(file);
    for (const at of [0, 20, sealed.length - 1]) {
      await writeFile(file, flipped(sealed, at));
      expect(await readCachedHead(home, USER, key), `byte ${at}`).toBeUndefined();
    }
    await writeFile(file, sealed.subarray(0, 20));
    expect(await readCachedHead(home, USER, key)).toBeUndefined();
    await writeFile(file, sealed);
    expect(await readCachedHead(home, USER, key)).toEqual(head);
  });

  it('gives no head for a sealed record that is not a valid head', async () => {
    const file = join(home.cacheDir(USER), 'head.enc');
    await saveCache(home, USER, key, { workspaceId: 'ws', versionId: null, root: 'r', fileBytes: 0 });
    const valid = { workspaceId: 'ws', versionId: 'v', root: 'r', fileBytes: 10 };
    for (const record of [
      'not json',
      'null',
      '42',
      JSON.stringify({ ...valid, fileBytes: -1 }),
      JSON.stringify({ ...valid, fileBytes: 1.5 }),
      JSON.stringify({ ...valid, fileBytes: 2 ** 53 }),
      JSON.stringify({ ...valid, fileBytes: '10' }),
      JSON.stringify({ ...valid, root: '' }),
      JSON.stringify({ ...valid, root: 7 }),
      JSON.stringify({ ...valid, workspaceId: undefined }),
    ]) {
      await writeFile(file, seal(key, Buffer.from(record)));
      expect(await readCachedHead(home, USER, key), record).toBeUndefined();
    }
    await writeFile(file, seal(key, Buffer.from(JSON.stringify(valid))));
    expect(await readCachedHead(home, USER, key)).toEqual(valid);
  });

  it('drops a cache file sealed with another key, damaged, or not a valid store file; loads the rest', async () => {
    await saveCache(home, USER, key);
    const cache = home.cacheDir(USER);
    const [packFile, dataFile] = (await filesUnder(home.objectsDir)).sort((a, b) =>
      a.startsWith('packs/') === b.startsWith('packs/') ? 0 : a.startsWith('packs/') ? -1 : 1,
    );
    if (!packFile?.startsWith('packs/') || !dataFile?.startsWith('data/'))
      throw new Error('unexpected store');
    const dataEnc = keptName(key, dataFile);
    const packEnc = keptName(key, packFile);
    expect((await filesUnder(cache)).sort()).toEqual([dataEnc, packEnc].sort());
    const sealed = { data: await readFile(join(cache, dataEnc)), pack: await readFile(join(cache, packEnc)) };
    const packPlain = await readFile(join(home.objectsDir, packFile));
    const dataPlain = await readFile(join(home.objectsDir, dataFile));
    const dataHash = dataFile.slice(-64);
    const packHashes = [...plaintexts.keys()].filter((hash) => hash !== dataHash);

    const cases: [string, 'data' | 'pack', Buffer][] = [
      ['another key', 'data', sealStoreFile(newKey(), dataFile, dataPlain)],
      ['another key', 'pack', sealStoreFile(newKey(), packFile, packPlain)],
      ['a flipped byte', 'pack', flipped(sealed.pack, 100)],
      ['cut short', 'data', sealed.data.subarray(0, 10)],
      ['a broken pack, well sealed', 'pack', sealStoreFile(key, packFile, packPlain.subarray(0, -3))],
      ['the other file, under this name', 'pack', sealed.data],
      ['no name inside', 'data', seal(key, dataPlain)],
    ];
    for (const [i, [what, which, body]] of cases.entries()) {
      // a cache of the two files, the one named bad
      await writeFile(join(cache, dataEnc), which === 'data' ? body : sealed.data);
      await writeFile(join(cache, packEnc), which === 'pack' ? body : sealed.pack);
      const repository = await LocalRepository.open(join(dir, `fresh-${i}`));
      opened.push(repository);

      expect(await loadCache(home, USER, key, repository), what).toBe(1);
      expect(existsSync(join(cache, dataEnc)), what).toBe(which !== 'data');
      expect(existsSync(join(cache, packEnc)), what).toBe(which !== 'pack');
      const lost = which === 'data' ? [dataHash] : packHashes;
      for (const hash of lost) expect(repository.has(hash), what).toBe(false);
      for (const [hash, plaintext] of plaintexts) {
        if (!lost.includes(hash)) expect((await repository.read(hash)).equals(plaintext), what).toBe(true);
      }
    }
  });

  it('names kept files by a keyed hash: no object id, pack id or store file name shows', async () => {
    await saveCache(home, USER, key, {
      workspaceId: 'ws',
      versionId: 'v',
      root: 'ab'.repeat(32),
      fileBytes: 1,
    });
    const names = await filesUnder(home.cacheDir(USER));
    const ids = [...plaintexts.keys(), ...(await filesUnder(home.objectsDir)).map((file) => file.slice(-64))];
    expect(names.length).toBe(3);
    for (const name of names) {
      expect(name, name).toMatch(/^([0-9a-f]{64}\.enc|head\.enc)$/);
      for (const id of ids) expect(name.includes(id), name).toBe(false);
    }
    // Another key, other names: the same files cannot be matched across users or PCs either.
    const other = newKey();
    for (const file of await filesUnder(home.objectsDir))
      expect(keptName(other, file)).not.toBe(keptName(key, file));
  });

  it("reads an earlier agent's cache, and keeps it again under keyed names", async () => {
    const cache = home.cacheDir(USER);
    const storeFiles = await filesUnder(home.objectsDir);
    for (const file of storeFiles) {
      await mkdir(join(cache, file, '..'), { recursive: true });
      await writeFile(join(cache, `${file}.enc`), seal(key, await readFile(join(home.objectsDir, file))));
    }
    await writeFile(join(cache, 'packs', 'ff.enc'), 'not a kept file'); // left alone, never read
    const repository = await LocalRepository.open(join(dir, 'fresh'));
    opened.push(repository);
    expect(await loadCache(home, USER, key, repository)).toBe(storeFiles.length);
    await expectAllReadable(repository);
    expect((await filesUnder(cache)).filter((file) => !file.startsWith('packs/ff'))).toEqual(
      storeFiles.map((file) => keptName(key, file)).sort(),
    );
    await rm(join(cache, 'packs', 'ff.enc'));

    await rm(home.objectsDir, { recursive: true, force: true });
    const again = await openRepo();
    expect(await loadCache(home, USER, key, again)).toBe(storeFiles.length);
    await expectAllReadable(again);
    await again.writeHeld();
    expect(await saveCache(home, USER, key)).toBe(0); // nothing to write again
    expect(await filesUnder(cache)).toEqual(storeFiles.map((file) => keptName(key, file)).sort());
    expect((await readdir(cache)).sort()).toEqual(storeFiles.map((file) => keptName(key, file)).sort());
  });

  it('holds no more than it is allowed in memory: the rest goes to the store at once', async () => {
    await saveCache(home, USER, key);
    await rm(home.objectsDir, { recursive: true, force: true });
    const repository = await openRepo();
    expect(await loadCache(home, USER, key, repository, { heldBytes: 0 })).toBe(2);
    expect(await filesUnder(home.objectsDir)).toHaveLength(2); // written, not held
    await expectAllReadable(repository);
  });
});
