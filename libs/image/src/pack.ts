import { sha256Hex } from './hash.js';

/**
 * A pack groups small objects into one stored blob so that a commit of many small files costs a
 * handful of object-store writes, while each object stays readable alone by byte range.
 *
 *   "UPCPACK1" | stored objects, back to back | index | entry count (u32 BE) | "UPCPEND1"
 *
 * Each index entry is 44 bytes: the object's id (SHA-256 of its plaintext, 32 raw bytes), the
 * offset of its stored bytes from the start of the pack (u64 BE) and their length (u32 BE).
 * Entries are in pack order and cover the data region exactly. A pack's own id is the SHA-256 of
 * all its bytes.
 */
export const PACK_MAGIC = Buffer.from('UPCPACK1', 'latin1');
export const PACK_END = Buffer.from('UPCPEND1', 'latin1');
export const PACK_ENTRY_SIZE = 44;
export const PACK_TRAILER_SIZE = 4 + PACK_END.length;

export interface PackEntry {
  hash: string;
  offset: number;
  length: number;
}

export interface PackObject {
  hash: string;
  /** The stored (encoded) bytes. */
  bytes: Uint8Array;
}

export class PackFormatError extends Error {
  override name = 'PackFormatError';
}

export interface EncodedPack {
  hash: string;
  bytes: Buffer;
  entries: PackEntry[];
}

export function encodePack(objects: readonly PackObject[]): EncodedPack {
  const entries: PackEntry[] = [];
  let offset = PACK_MAGIC.length;
  for (const object of objects) {
    entries.push({ hash: object.hash, offset, length: object.bytes.length });
    offset += object.bytes.length;
  }
  const index = Buffer.alloc(entries.length * PACK_ENTRY_SIZE + PACK_TRAILER_SIZE);
  entries.forEach((entry, i) => {
    const at = i * PACK_ENTRY_SIZE;
    index.write(entry.hash, at, 'hex');
    index.writeBigUInt64BE(BigInt(entry.offset), at + 32);
    index.writeUInt32BE(entry.length, at + 40);
  });
  index.writeUInt32BE(entries.length, entries.length * PACK_ENTRY_SIZE);
  PACK_END.copy(index, entries.length * PACK_ENTRY_SIZE + 4);
  const bytes = Buffer.concat([PACK_MAGIC, ...objects.map((o) => o.bytes), index]);
  return { hash: sha256Hex(bytes), bytes, entries };
}

/** The number of index entries, from the last PACK_TRAILER_SIZE bytes of a pack of `packSize` bytes. */
export function readPackTrailer(trailer: Uint8Array, packSize: number): number {
  const buf = Buffer.from(trailer.buffer, trailer.byteOffset, trailer.byteLength);
  if (packSize < PACK_MAGIC.length + PACK_TRAILER_SIZE || buf.length !== PACK_TRAILER_SIZE) {
    throw new PackFormatError('pack is too short to be a pack');
  }
  if (!buf.subarray(4).equals(PACK_END)) throw new PackFormatError('pack trailer is missing or truncated');
  const count = buf.readUInt32BE(0);
  if (PACK_MAGIC.length + count * PACK_ENTRY_SIZE + PACK_TRAILER_SIZE > packSize) {
    throw new PackFormatError(`pack index of ${count} entries does not fit`);
  }
  return count;
}

/** Parses `count` index entries and checks they tile the data region of a pack of `packSize` bytes. */
export function parsePackIndex(index: Uint8Array, count: number, packSize: number): PackEntry[] {
  const buf = Buffer.from(index.buffer, index.byteOffset, index.byteLength);
  const dataEnd = packSize - PACK_TRAILER_SIZE - count * PACK_ENTRY_SIZE;
  const entries: PackEntry[] = [];
  const seen = new Set<string>();
  let expected = PACK_MAGIC.length;
  for (let i = 0; i < count; i++) {
    const at = i * PACK_ENTRY_SIZE;
    const entry = {
      hash: buf.toString('hex', at, at + 32),
      offset: Number(buf.readBigUInt64BE(at + 32)),
      length: buf.readUInt32BE(at + 40),
    };
    if (entry.length === 0)
      throw new PackFormatError(`entry ${i} is empty (a stored object has at least its format byte)`);
    if (seen.has(entry.hash)) throw new PackFormatError(`object ${entry.hash} is in the pack twice`);
    seen.add(entry.hash);
    if (entry.offset !== expected)
      throw new PackFormatError(`entry ${i} starts at ${entry.offset}, expected ${expected}`);
    expected += entry.length;
    if (expected > dataEnd) throw new PackFormatError(`entry ${i} runs past the data region`);
    entries.push(entry);
  }
  if (expected !== dataEnd) throw new PackFormatError('pack has bytes that no index entry covers');
  return entries;
}

/**
 * Reads a whole pack's index. With `verify`, each object's stored bytes are also handed to it
 * (typically `decodeObject`, which checks them against their id); its errors propagate.
 */
export async function readPackIndex(
  pack: Uint8Array,
  verify?: (hash: string, stored: Uint8Array) => Promise<unknown>,
): Promise<PackEntry[]> {
  const buf = Buffer.from(pack.buffer, pack.byteOffset, pack.byteLength);
  if (buf.length < PACK_MAGIC.length || !buf.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC)) {
    throw new PackFormatError('not a uPC pack (bad magic)');
  }
  const count = readPackTrailer(buf.subarray(Math.max(0, buf.length - PACK_TRAILER_SIZE)), buf.length);
  const indexStart = buf.length - PACK_TRAILER_SIZE - count * PACK_ENTRY_SIZE;
  const entries = parsePackIndex(
    buf.subarray(indexStart, indexStart + count * PACK_ENTRY_SIZE),
    count,
    buf.length,
  );
  if (verify) {
    for (const entry of entries)
      await verify(entry.hash, buf.subarray(entry.offset, entry.offset + entry.length));
  }
  return entries;
}
