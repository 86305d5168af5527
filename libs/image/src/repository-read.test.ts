import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { declaredSize, encodeObject } from './object.js';
import { encodePack, PackFormatError } from './pack.js';
import { LARGE_OBJECT, LocalRepository } from './repository.js';

const MiB = 1024 * 1024;
let dir: string;
let repository: LocalRepository;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-repo-read-'));
  repository = await LocalRepository.open(join(dir, 'repo'));
});
afterEach(async () => {
  repository.close();
  await rm(dir, { recursive: true, force: true });
});

describe('reading objects that expand', () => {
  it('decodes a 2 KiB object of 64 MiB once for reads at once, all given the same plaintext', async () => {
    const zeros = await encodeObject(Buffer.alloc(64 * MiB));
    expect(zeros.bytes.length).toBeLessThan(4096);
    expect(declaredSize(zeros.bytes)).toBe(64 * MiB);
    await repository.writeStored(zeros.hash, zeros.bytes);
    await repository.flush();
    const reads = await Promise.all(Array.from({ length: 8 }, () => repository.read(zeros.hash)));
    for (const plaintext of reads) expect(plaintext).toBe(reads[0]);
    expect(reads[0]?.length).toBe(64 * MiB);
    expect(reads[0]?.every((byte) => byte === 0)).toBe(true);
  });

  it('refuses one over the size asked for without decoding it', async () => {
    const zeros = await encodeObject(Buffer.alloc(LARGE_OBJECT + 1));
    await repository.writeStored(zeros.hash, zeros.bytes);
    await expect(repository.read(zeros.hash, LARGE_OBJECT)).rejects.toThrow(/would expand to/);
  });

  it('knows the stored size of what it holds, pending or packed', async () => {
    const object = await encodeObject(randomBytes(1000));
    expect(repository.storedSize(object.hash)).toBeUndefined();
    await repository.writeStored(object.hash, object.bytes);
    expect(repository.storedSize(object.hash)).toBe(object.bytes.length);
    await repository.flush();
    expect(repository.storedSize(object.hash)).toBe(object.bytes.length);
  });
});

describe('keep', () => {
  it('writes a store file given in memory at once, its objects read from the folder', async () => {
    const object = await encodeObject(randomBytes(500));
    const pack = encodePack([{ hash: object.hash, bytes: object.bytes }]);
    const file = `packs/${pack.hash.slice(0, 2)}/${pack.hash}`;
    await repository.keep(file, pack.bytes);
    expect((await readFile(join(dir, 'repo', file))).equals(pack.bytes)).toBe(true);
    expect(repository.storedSize(object.hash)).toBe(object.bytes.length);
    const reopened = await LocalRepository.open(join(dir, 'repo'));
    try {
      expect(reopened.has(object.hash)).toBe(true);
    } finally {
      reopened.close();
    }
  });

  it('refuses a broken pack before writing it', async () => {
    const object = await encodeObject(randomBytes(500));
    const pack = encodePack([{ hash: object.hash, bytes: object.bytes }]);
    const file = `packs/${pack.hash.slice(0, 2)}/${pack.hash}`;
    await expect(repository.keep(file, pack.bytes.subarray(0, -3))).rejects.toThrow(PackFormatError);
    expect(existsSync(join(dir, 'repo', file))).toBe(false);
    expect(repository.has(object.hash)).toBe(false);
  });
});
