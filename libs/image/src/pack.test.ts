import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from './hash.js';
import { decodeObject, encodeObject } from './object.js';
import { encodePack, PackFormatError, readPackIndex } from './pack.js';

describe('packs', () => {
  it('round-trips stored objects, including empty ones, each readable alone by its offset', async () => {
    const plaintexts = [randomBytes(100), Buffer.alloc(0), Buffer.from('x'.repeat(5000))];
    const objects = await Promise.all(plaintexts.map((p) => encodeObject(p)));
    const pack = encodePack(objects);
    expect(pack.hash).toBe(sha256Hex(pack.bytes));
    const entries = await readPackIndex(pack.bytes, (hash, stored) => decodeObject(hash, stored));
    expect(entries).toEqual(pack.entries);
    for (const [i, entry] of entries.entries()) {
      expect(entry.hash).toBe(sha256Hex(plaintexts[i] ?? Buffer.alloc(0)));
      const stored = pack.bytes.subarray(entry.offset, entry.offset + entry.length);
      expect((await decodeObject(entry.hash, stored)).equals(plaintexts[i] ?? Buffer.alloc(0))).toBe(true);
    }
  });

  it('refuses truncation, a bad magic, a flipped byte and an index that runs off the data', async () => {
    const objects = await Promise.all([encodeObject(randomBytes(64)), encodeObject(randomBytes(64))]);
    const pack = encodePack(objects).bytes;
    const verify = (hash: string, stored: Uint8Array) => decodeObject(hash, stored);
    await expect(readPackIndex(pack.subarray(0, pack.length - 3))).rejects.toThrow(PackFormatError);
    const badMagic = Buffer.from(pack);
    badMagic[0] = 0;
    await expect(readPackIndex(badMagic)).rejects.toThrow(/bad magic/);
    const flipped = Buffer.from(pack);
    flipped[8 + 70] = (flipped[8 + 70] ?? 0) ^ 1;
    await expect(readPackIndex(flipped, verify)).rejects.toThrow(
      new RegExp(`object ${objects[1].hash}: content does not match`),
    );
    await expect(readPackIndex(flipped)).resolves.toHaveLength(2);
    const huge = Buffer.from(pack);
    huge.writeUInt32BE(1_000_000, huge.length - 12);
    await expect(readPackIndex(huge)).rejects.toThrow(/does not fit/);
  });
});
