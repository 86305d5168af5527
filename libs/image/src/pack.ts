import { sha256Hex } from './hash.js';

/**
 * A pack groups small objects into one stored blob so that a commit of many small files costs a
 * handful of object-store writes, while each object stays readable alone by byte range.
 *
 *   "UPCPACK1" | object bytes, back to back | index | entry count (u32 BE) | "UPCPEND1"
 *
 * Each index entry is 44 bytes: object hash (32 raw bytes), offset from the start of the
 * pack (u64 BE), length (u32 BE). Entries are in pack order and cover the data exactly.
 * The pack's own id is the SHA-256 of all its bytes.
 */
export const PACK_MAGIC = Buffer.from('UPCPACK1', 'latin1');
export const PACK_END = Buffer.from('UPCPEND1', 'latin1');
const ENTRY_SIZE = 44;
const TRAILER_SIZE = 4 + PACK_END.length;

export interface PackEntry {
  hash: string;
  offset: number;
  length: number;
}

export class PackFormatError extends Error {
  override name = 'PackFormatError';
}

export interface EncodedPack {
  hash: string;
  bytes: Buffer;
  entries: PackEntry[];
}

export function encodePack(objects: readonly Uint8Array[]): EncodedPack {
  const entries: PackEntry[] = [];
  let offset = PACK_MAGIC.length;
  for (const bytes of objects) {
    entries.push({ hash: sha256Hex(bytes), offset, length: bytes.length });
    offset += bytes.length;
  }
  const index = Buffer.alloc(entries.length * ENTRY_SIZE + TRAILER_SIZE);
  entries.forEach((entry, i) => {
    const at = i * ENTRY_SIZE;
    index.write(entry.hash, at, 'hex');
    index.writeBigUInt64BE(BigInt(entry.offset), at + 32);
    index.writeUInt32BE(entry.length, at + 40);
  });
  index.writeUInt32BE(entries.length, entries.length * ENTRY_SIZE);
  PACK_END.copy(index, entries.length * ENTRY_SIZE + 4);
  const bytes = Buffer.concat([PACK_MAGIC, ...objects, index]);
  return { hash: sha256Hex(bytes), bytes, entries };
}

/**
 * Reads a pack's index and checks that its entries tile the data region exactly. With
 * `verifyObjects`, also checks every object's bytes against its hash.
 */
export function readPackIndex(pack: Uint8Array, verifyObjects = true): PackEntry[] {
  const buf = Buffer.from(pack.buffer, pack.byteOffset, pack.byteLength);
  if (
    buf.length < PACK_MAGIC.length + TRAILER_SIZE ||
    !buf.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC)
  ) {
    throw new PackFormatError('not a uPC pack (bad magic)');
  }
  if (!buf.subarray(buf.length - PACK_END.length).equals(PACK_END)) {
    throw new PackFormatError('pack trailer is missing or truncated');
  }
  const count = buf.readUInt32BE(buf.length - TRAILER_SIZE);
  const indexStart = buf.length - TRAILER_SIZE - count * ENTRY_SIZE;
  if (indexStart < PACK_MAGIC.length)
    throw new PackFormatError(`pack index of ${count} entries does not fit`);
  const entries: PackEntry[] = [];
  let expected = PACK_MAGIC.length;
  for (let i = 0; i < count; i++) {
    const at = indexStart + i * ENTRY_SIZE;
    const entry = {
      hash: buf.toString('hex', at, at + 32),
      offset: Number(buf.readBigUInt64BE(at + 32)),
      length: buf.readUInt32BE(at + 40),
    };
    if (entry.offset !== expected)
      throw new PackFormatError(`entry ${i} starts at ${entry.offset}, expected ${expected}`);
    expected += entry.length;
    if (expected > indexStart) throw new PackFormatError(`entry ${i} runs past the data region`);
    if (verifyObjects && sha256Hex(buf.subarray(entry.offset, expected)) !== entry.hash) {
      throw new PackFormatError(`object ${entry.hash} in the pack does not match its hash`);
    }
    entries.push(entry);
  }
  if (expected !== indexStart) throw new PackFormatError('pack has bytes that no index entry covers');
  return entries;
}
