import { compress } from '@mongodb-js/zstd';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from './hash.js';
import { declaredSize, decodeObject, encodeObject, zstdContentSize, zstdFrameLength } from './object.js';

describe('stored objects', () => {
  it('compress text, keep random data raw, and decode both to the plaintext', async () => {
    const text = Buffer.from('the same line again\n'.repeat(5000));
    const random = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 2654435761) >>> 24));
    const packed = await encodeObject(text);
    expect(packed.bytes[0]).toBe(1);
    expect(packed.bytes.length).toBeLessThan(text.length / 10);
    expect(zstdContentSize(packed.bytes.subarray(1))).toBe(text.length);
    expect((await decodeObject(packed.hash, packed.bytes)).equals(text)).toBe(true);
    const raw = await encodeObject(Buffer.from('short'));
    expect(raw.bytes[0]).toBe(0);
    expect((await decodeObject(sha256Hex(random), (await encodeObject(random)).bytes)).equals(random)).toBe(
      true,
    );
  });

  it('refuse a second frame hidden after a small first one (a bomb past the size check)', async () => {
    const small = await encodeObject(Buffer.from('x'.repeat(1000)));
    const first = small.bytes.subarray(1);
    expect(zstdFrameLength(first)).toBe(first.length);
    const bomb = await compress(Buffer.alloc(50 * 1024 * 1024), 3);
    const smuggled = Buffer.concat([small.bytes, bomb]);
    await expect(decodeObject(small.hash, smuggled, 1024 * 1024)).rejects.toThrow(/more than one zstd frame/);
  });

  it('refuse a frame with no declared size, and one that declares too much', async () => {
    const plain = Buffer.from('y'.repeat(10_000));
    const undeclared = Buffer.concat([Buffer.of(1), await compress(plain, 3)]);
    await expect(decodeObject(sha256Hex(plain), undeclared)).rejects.toThrow(/does not declare its size/);
    const encoded = await encodeObject(plain);
    await expect(decodeObject(encoded.hash, encoded.bytes, 5000)).rejects.toThrow(
      /would expand to 10000 bytes/,
    );
    await expect(
      decodeObject(encoded.hash, encoded.bytes.subarray(0, encoded.bytes.length - 2)),
    ).rejects.toThrow();
  });

  it('declare their plaintext size without being decoded', async () => {
    const text = await encodeObject(Buffer.from('z'.repeat(100_000)));
    expect(declaredSize(text.bytes)).toBe(100_000);
    expect(declaredSize((await encodeObject(Buffer.from('raw'))).bytes)).toBe(3);
    expect(declaredSize(Buffer.alloc(0))).toBeUndefined();
    expect(declaredSize(Buffer.of(7, 1, 2))).toBeUndefined();
    expect(declaredSize(Buffer.of(1, 1, 2))).toBeUndefined(); // not a zstd frame
  });
});
