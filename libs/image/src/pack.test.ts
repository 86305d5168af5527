import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from './hash.js';
import { encodePack, PackFormatError, readPackIndex } from './pack.js';

describe('packs', () => {
  it('round-trips objects, including empty ones, each readable alone by its offset', () => {
    const objects = [randomBytes(100), Buffer.alloc(0), randomBytes(1)];
    const pack = encodePack(objects);
    expect(pack.hash).toBe(sha256Hex(pack.bytes));
    const entries = readPackIndex(pack.bytes);
    expect(entries).toEqual(pack.entries);
    entries.forEach((entry, i) => {
      expect(entry.hash).toBe(sha256Hex(objects[i] ?? Buffer.alloc(0)));
      expect(
        pack.bytes.subarray(entry.offset, entry.offset + entry.length).equals(objects[i] ?? Buffer.alloc(0)),
      ).toBe(true);
    });
  });

  it('refuses truncation, a bad magic, a flipped byte and an index that runs off the data', () => {
    const pack = encodePack([randomBytes(64), randomBytes(64)]).bytes;
    expect(() => readPackIndex(pack.subarray(0, pack.length - 3))).toThrow(PackFormatError);
    const badMagic = Buffer.from(pack);
    badMagic[0] = 0;
    expect(() => readPackIndex(badMagic)).toThrow(/bad magic/);
    const flipped = Buffer.from(pack);
    flipped[8 + 70] = (flipped[8 + 70] ?? 0) ^ 1;
    expect(() => readPackIndex(flipped)).toThrow(/does not match its hash/);
    expect(() => readPackIndex(flipped, false)).not.toThrow();
    const huge = Buffer.from(pack);
    huge.writeUInt32BE(1_000_000, huge.length - 12);
    expect(() => readPackIndex(huge)).toThrow(/does not fit/);
  });
});
