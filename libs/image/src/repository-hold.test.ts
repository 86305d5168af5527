import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectFormatError } from './object.js';
import { PACK_TRAILER_SIZE, PackFormatError, readPackIndex } from './pack.js';
import { LocalRepository, STANDALONE_THRESHOLD } from './repository.js';

interface StoreFile {
  file: string;
  bytes: Buffer;
}

let dir: string;
let plaintexts: Map<string, Buffer>;
let packFile: StoreFile;
let dataFile: StoreFile;
const opened: LocalRepository[] = [];

/** The store files (`packs/xx/<id>`, `data/xx/<id>`) in a repository's folder, temp files included. */
async function storeFiles(repoDir: string): Promise<string[]> {
  const files: string[] = [];
  for (const top of ['packs', 'data']) {
    for (const prefix of await readdir(join(repoDir, top)).catch(() => [])) {
      for (const name of await readdir(join(repoDir, top, prefix))) files.push(`${top}/${prefix}/${name}`);
    }
  }
  return files.sort();
}

async function openRepo(repoDir: string): Promise<LocalRepository> {
  const repository = await LocalRepository.open(repoDir);
  opened.push(repository);
  return repository;
}

/** A fresh repository in a folder of its own. */
function freshRepo(): Promise<LocalRepository> {
  return openRepo(join(dir, `b-${randomBytes(4).toString('hex')}`));
}

function holdAll(repository: LocalRepository): void {
  repository.hold(packFile.file, packFile.bytes);
  repository.hold(dataFile.file, dataFile.bytes);
}

async function expectAllReadable(repository: LocalRepository): Promise<void> {
  for (const [hash, plaintext] of plaintexts) {
    expect(repository.has(hash)).toBe(true);
    expect((await repository.read(hash)).equals(plaintext)).toBe(true);
  }
}

function expectNoneIndexed(repository: LocalRepository): void {
  expect(repository.size).toBe(0);
  for (const hash of plaintexts.keys()) expect(repository.has(hash)).toBe(false);
}

function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] ?? 0) ^ 0xff;
  return copy;
}

/** Repository A writes one pack of small objects and one standalone object; we keep their files. */
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-hold-'));
  const a = await openRepo(join(dir, 'a'));
  // the random one first (stored raw, so a flipped byte is a content mismatch), then compressible ones
  const objects = [
    randomBytes(200),
    Buffer.from('hello\n'),
    Buffer.alloc(0),
    Buffer.from('compressible line\n'.repeat(500)),
    randomBytes(600 * 1024), // incompressible and over STANDALONE_THRESHOLD: a data file
  ];
  plaintexts = new Map();
  for (const plaintext of objects) plaintexts.set(await a.write(plaintext), plaintext);
  await a.flush();

  const files = await storeFiles(a.dir);
  expect(files).toHaveLength(2);
  const [data, pack] = await Promise.all(
    files.map(async (file) => ({ file, bytes: await readFile(join(a.dir, file)) })),
  );
  if (!data?.file.startsWith('data/') || !pack?.file.startsWith('packs/'))
    throw new Error('unexpected store');
  expect(data.bytes.length).toBeGreaterThanOrEqual(STANDALONE_THRESHOLD);
  dataFile = data;
  packFile = pack;
});
afterEach(async () => {
  for (const repository of opened.splice(0)) repository.close();
  await rm(dir, { recursive: true, force: true });
});

describe('LocalRepository.hold', () => {
  it('serves a held pack and a held standalone object from memory before anything is written', async () => {
    const b = await freshRepo();
    holdAll(b);
    expect(b.size).toBe(plaintexts.size);
    await expectAllReadable(b);
    // a standalone object's stored bytes are its whole file
    expect((await b.readStored(dataFile.file.slice(-64))).equals(dataFile.bytes)).toBe(true);
    expect(await storeFiles(b.dir)).toEqual([]);
  });

  it('writeHeld writes the files so that a fresh open reads every object, and reads still work', async () => {
    const b = await freshRepo();
    holdAll(b);
    await b.writeHeld();
    // the same bytes under the same names, no temp files left behind
    expect(await storeFiles(b.dir)).toEqual([dataFile.file, packFile.file].sort());
    expect((await readFile(join(b.dir, packFile.file))).equals(packFile.bytes)).toBe(true);
    expect((await readFile(join(b.dir, dataFile.file))).equals(dataFile.bytes)).toBe(true);
    await expectAllReadable(b);

    const reopened = await openRepo(b.dir);
    expect(reopened.size).toBe(plaintexts.size);
    await expectAllReadable(reopened);

    await b.writeHeld(); // nothing left to write
    expect(await storeFiles(b.dir)).toEqual([dataFile.file, packFile.file].sort());
  });

  it('refuses a name that is not a store file name', async () => {
    const b = await freshRepo();
    const hex = packFile.file.slice(-64);
    for (const name of [
      'packs/zz/short',
      '../x',
      `other/ab/${hex}`,
      `../packs/${hex.slice(0, 2)}/${hex}`,
      `packs/${hex.slice(0, 2)}/${hex}.tmp`,
      `packs/${hex.slice(0, 2).toUpperCase()}/${hex.toUpperCase()}`,
      hex,
    ]) {
      expect(() => {
        b.hold(name, packFile.bytes);
      }, name).toThrow(/not the name of a store file/);
    }
    expectNoneIndexed(b);
    await b.writeHeld();
    expect(await storeFiles(b.dir)).toEqual([]);
  });

  it('refuses a truncated pack or one whose trailer or index is altered, and indexes nothing', async () => {
    const b = await freshRepo();
    const bytes = packFile.bytes;
    const countAt = bytes.length - PACK_TRAILER_SIZE; // u32 BE entry count, then "UPCPEND1"
    const entries = await readPackIndex(bytes);
    const indexStart = countAt - entries.length * 44;
    const bad = {
      'last bytes cut': bytes.subarray(0, bytes.length - 3),
      'one byte': bytes.subarray(0, 1),
      empty: Buffer.alloc(0),
      'magic altered': flipped(bytes, 0),
      'end marker altered': flipped(bytes, bytes.length - 1),
      'entry count altered': flipped(bytes, countAt + 3),
      'an entry offset altered': flipped(bytes, indexStart + 44 + 32 + 7),
      'an entry length altered': flipped(bytes, indexStart + 40 + 3),
      'a byte cut from the data': Buffer.concat([bytes.subarray(0, 20), bytes.subarray(21)]),
    };
    for (const [what, pack] of Object.entries(bad)) {
      expect(() => {
        b.hold(packFile.file, pack);
      }, what).toThrow(PackFormatError);
    }
    expectNoneIndexed(b);
    await b.writeHeld();
    expect(await storeFiles(b.dir)).toEqual([]);
  });

  it('refuses to read a held object whose bytes were tampered with; the others still read', async () => {
    const b = await freshRepo();
    const [first] = await readPackIndex(packFile.bytes);
    if (!first) throw new Error('empty pack');
    b.hold(packFile.file, flipped(packFile.bytes, first.offset + first.length - 1));
    b.hold(dataFile.file, flipped(dataFile.bytes, dataFile.bytes.length - 1));
    const big = dataFile.file.slice(-64);

    for (const hash of [first.hash, big]) {
      expect(b.has(hash)).toBe(true);
      await expect(b.read(hash)).rejects.toThrow(ObjectFormatError);
      await expect(b.read(hash)).rejects.toMatchObject({ kind: 'mismatch', hash });
    }
    for (const [hash, plaintext] of plaintexts) {
      if (hash === first.hash || hash === big) continue;
      expect((await b.read(hash)).equals(plaintext)).toBe(true);
    }
  });
});
