import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import type { ChunkerParams } from './chunker.js';
import { decodeObject, encodeObject, MAX_OBJECT_SIZE } from './object.js';
import type { ObjectReader, ObjectWriter } from './repository.js';
import { decodeTree } from './tree.js';

/**
 * The portable `.upc` file: one self-contained file holding a version's trees and objects, so an
 * image can live on a USB stick or a file share and run without the server.
 *
 *   "UPCFILE1" | segment | segment | …
 *   segment = stored objects | index (44-byte entries, as in packs, offsets from the file's start)
 *           | manifest (UTF-8 JSON) | trailer (64 bytes)
 *   trailer = index offset (u64 BE) | entry count (u32 BE) | manifest length (u32 BE)
 *           | previous segment's end (u64 BE, 0 for the first) | SHA-256 of index + manifest (32)
 *           | "UPCFEND1"
 *
 * A file is read from its last trailer backwards. Saving changes back (`upc run`) appends a
 * segment with the new objects and a new manifest; the newest manifest names the current root.
 */
export const UPC_MAGIC = Buffer.from('UPCFILE1', 'latin1');
const UPC_END = Buffer.from('UPCFEND1', 'latin1');
const TRAILER_SIZE = 8 + 4 + 4 + 8 + 32 + 8;
const ENTRY_SIZE = 44;
const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface UpcManifest {
  v: 1;
  /** The root tree of the version this file holds. */
  root: string;
  chunker: ChunkerParams;
  createdAt: string;
  /** Where it came from, for people: workspace name, version id, server. */
  source?: Record<string, string>;
}

export class UpcFileError extends Error {
  override name = 'UpcFileError';
}

interface Location {
  offset: number;
  length: number;
}

/** Something that can hand over an object's stored bytes as they are, saving a re-encode. */
interface StoredReader extends ObjectReader {
  readStored?(hash: string): Promise<Buffer>;
}

/** Every object id a tree reaches, trees first: what a self-contained copy of a version needs. */
export async function* reachableObjects(reader: ObjectReader, root: string): AsyncGenerator<string> {
  const seen = new Set<string>();
  const trees = [root];
  for (let tree = trees.pop(); tree !== undefined; tree = trees.pop()) {
    if (seen.has(tree)) continue;
    seen.add(tree);
    yield tree;
    for (const entry of decodeTree(await reader.read(tree), tree).entries) {
      if (entry.type === 'dir') trees.push(entry.tree);
      if (entry.type !== 'file') continue;
      for (const chunk of entry.chunks) {
        if (seen.has(chunk)) continue;
        seen.add(chunk);
        yield chunk;
      }
    }
  }
}

/** Writes the version `manifest.root` (every object it reaches) into a new `.upc` file, atomically. */
export async function exportUpc(
  reader: StoredReader,
  manifest: UpcManifest,
  file: string,
  onProgress?: (objects: number, bytes: number) => void,
): Promise<{ objects: number; bytes: number }> {
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o644);
  try {
    await handle.write(UPC_MAGIC);
    const writer = new SegmentWriter(handle, UPC_MAGIC.length);
    for await (const hash of reachableObjects(reader, manifest.root)) {
      await writer.add(hash, await storedBytes(reader, hash));
      onProgress?.(writer.count, writer.end);
    }
    const end = await writer.finish(manifest, 0);
    await handle.sync();
    await handle.close();
    await rename(temporary, file);
    return { objects: writer.count, bytes: end };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}

/** An open `.upc` file: an object reader over all its segments, with the newest manifest. */
export class UpcFile implements ObjectReader {
  private constructor(
    private readonly handle: FileHandle,
    private readonly index: Map<string, Location>,
    private current: UpcManifest,
    private size: number,
  ) {}

  /**
   * True when the file ended in a segment that was never finished (a save cut short); it was
   * opened at the last complete one, and the next `append` writes over the unfinished bytes.
   */
  recovered = false;

  /** The newest manifest: the version this file holds now. */
  get manifest(): UpcManifest {
    return this.current;
  }

  static async open(file: string, flags: 'r' | 'r+' = 'r'): Promise<UpcFile> {
    const handle = await open(file, flags);
    try {
      const { size } = await handle.stat();
      const magic = await readAt(handle, 0, UPC_MAGIC.length);
      if (!magic.equals(UPC_MAGIC)) throw new UpcFileError(`${file} is not a .upc file`);
      const last = await lastSegmentEnd(handle, size, file);
      const index = new Map<string, Location>();
      let manifest: UpcManifest | undefined;
      for (let end = last.end; end !== 0;) {
        const segment = await readSegment(handle, end, file);
        manifest ??= segment.manifest;
        for (const [hash, location] of segment.entries) if (!index.has(hash)) index.set(hash, location);
        end = segment.previousEnd;
      }
      if (!manifest) throw new UpcFileError(`${file} holds no version`);
      const upc = new UpcFile(handle, index, manifest, last.end);
      upc.recovered = last.end !== size;
      return upc;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  has(hash: string): boolean {
    return this.index.has(hash);
  }

  async readStored(hash: string): Promise<Buffer> {
    const location = this.index.get(hash);
    if (!location) throw new UpcFileError(`object ${hash} is not in the file`);
    return readAt(this.handle, location.offset, location.length);
  }

  async read(hash: string, maxSize = MAX_OBJECT_SIZE): Promise<Buffer> {
    return decodeObject(hash, await this.readStored(hash), maxSize);
  }

  /** Reads and checks every object the current version reaches; the error names a damaged object. */
  async verify(onProgress?: (objects: number) => void): Promise<number> {
    let count = 0;
    for await (const hash of reachableObjects(this, this.manifest.root)) {
      if (!this.index.has(hash)) throw new UpcFileError(`object ${hash} is missing from the file`);
      await this.read(hash);
      count++;
      onProgress?.(count);
    }
    return count;
  }

  /** Copies every object of the current version into `writer`, verified. */
  async importInto(writer: ObjectWriter, onProgress?: (objects: number) => void): Promise<UpcManifest> {
    let count = 0;
    for await (const hash of reachableObjects(this, this.manifest.root)) {
      if (!writer.has(hash)) await writer.write(await this.read(hash), hash);
      count++;
      onProgress?.(count);
    }
    await writer.flush();
    return this.manifest;
  }

  /**
   * Saves a new version back into the file: appends the objects of `reader` that the file lacks
   * and a manifest naming `manifest.root`. The file stays valid if this is interrupted: a reader
   * finds the last complete segment.
   */
  async append(reader: StoredReader, manifest: UpcManifest): Promise<number> {
    const previousEnd = this.size;
    const writer = new SegmentWriter(this.handle, previousEnd);
    for await (const hash of reachableObjects(reader, manifest.root)) {
      if (this.index.has(hash)) continue;
      await writer.add(hash, await storedBytes(reader, hash));
    }
    this.size = await writer.finish(manifest, previousEnd);
    await this.handle.truncate(this.size); // drop what a cut-short save may have left beyond it
    await this.handle.sync();
    this.recovered = false;
    for (const [hash, location] of writer.entries) this.index.set(hash, location);
    this.current = manifest;
    return writer.count;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

class SegmentWriter {
  readonly entries = new Map<string, Location>();
  end: number;

  constructor(
    private readonly handle: FileHandle,
    start: number,
  ) {
    this.end = start;
  }

  get count(): number {
    return this.entries.size;
  }

  async add(hash: string, stored: Uint8Array): Promise<void> {
    if (this.entries.has(hash)) return;
    await this.handle.write(stored, 0, stored.length, this.end);
    this.entries.set(hash, { offset: this.end, length: stored.length });
    this.end += stored.length;
  }

  async finish(manifest: UpcManifest, previousEnd: number): Promise<number> {
    const index = Buffer.alloc(this.entries.size * ENTRY_SIZE);
    let at = 0;
    for (const [hash, { offset, length }] of this.entries) {
      index.write(hash, at, 'hex');
      index.writeBigUInt64BE(BigInt(offset), at + 32);
      index.writeUInt32BE(length, at + 40);
      at += ENTRY_SIZE;
    }
    const manifestBytes = Buffer.from(JSON.stringify(manifest), 'utf8');
    const trailer = Buffer.alloc(TRAILER_SIZE);
    trailer.writeBigUInt64BE(BigInt(this.end), 0);
    trailer.writeUInt32BE(this.entries.size, 8);
    trailer.writeUInt32BE(manifestBytes.length, 12);
    trailer.writeBigUInt64BE(BigInt(previousEnd), 16);
    createHash('sha256')
      .update(index)
      .update(manifestBytes)
      .update(trailer.subarray(0, 24))
      .digest()
      .copy(trailer, 24);
    UPC_END.copy(trailer, 56);
    const tail = Buffer.concat([index, manifestBytes, trailer]);
    await this.handle.write(tail, 0, tail.length, this.end);
    this.end += tail.length;
    return this.end;
  }
}

/**
 * Where the last complete segment ends: the file's end, or — after a save that was cut short —
 * the end of the newest segment whose trailer and checksum hold, found by scanning backwards.
 */
async function lastSegmentEnd(handle: FileHandle, size: number, file: string): Promise<{ end: number }> {
  const intact = async (end: number) =>
    readSegment(handle, end, file).then(
      () => true,
      () => false,
    );
  const atEnd = await readSegment(handle, size, file).then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
  if (atEnd === undefined) return { end: size };
  const block = 1024 * 1024;
  for (let stop = size; stop > UPC_MAGIC.length; stop -= block - UPC_END.length) {
    const start = Math.max(UPC_MAGIC.length, stop - block);
    const bytes = await readAt(handle, start, stop - start);
    for (
      let at = bytes.lastIndexOf(UPC_END);
      at >= 0;
      at = at === 0 ? -1 : bytes.lastIndexOf(UPC_END, at - 1)
    ) {
      const end = start + at + UPC_END.length;
      if (end < size && (await intact(end))) return { end };
    }
    if (start === UPC_MAGIC.length) break;
  }
  // No complete earlier version either: report what is wrong at the end.
  throw atEnd;
}

async function readSegment(handle: FileHandle, end: number, file: string) {
  if (end < UPC_MAGIC.length + TRAILER_SIZE)
    throw new UpcFileError(`${file} is truncated (no complete segment)`);
  const trailer = await readAt(handle, end - TRAILER_SIZE, TRAILER_SIZE);
  if (!trailer.subarray(56).equals(UPC_END))
    throw new UpcFileError(`${file} is truncated or damaged at its end`);
  const indexOffset = Number(trailer.readBigUInt64BE(0));
  const count = trailer.readUInt32BE(8);
  const manifestLength = trailer.readUInt32BE(12);
  const previousEnd = Number(trailer.readBigUInt64BE(16));
  const indexLength = count * ENTRY_SIZE;
  if (
    manifestLength > MAX_MANIFEST_BYTES ||
    indexOffset + indexLength + manifestLength + TRAILER_SIZE !== end
  ) {
    throw new UpcFileError(`${file} has a damaged segment trailer`);
  }
  // Segments chain strictly backwards, so reading always ends.
  if (previousEnd !== 0 && (previousEnd < UPC_MAGIC.length + TRAILER_SIZE || previousEnd > indexOffset)) {
    throw new UpcFileError(`${file} has a broken segment chain`);
  }
  const tail = await readAt(handle, indexOffset, indexLength + manifestLength);
  const digest = createHash('sha256').update(tail).update(trailer.subarray(0, 24)).digest();
  if (!digest.equals(trailer.subarray(24, 56)))
    throw new UpcFileError(`${file} has a damaged index or manifest`);
  const entries = new Map<string, Location>();
  for (let at = 0; at < indexLength; at += ENTRY_SIZE) {
    const offset = Number(tail.readBigUInt64BE(at + 32));
    const length = tail.readUInt32BE(at + 40);
    if (offset < UPC_MAGIC.length || offset + length > indexOffset)
      throw new UpcFileError(`${file} has an index entry out of bounds`);
    entries.set(tail.toString('hex', at, at + 32), { offset, length });
  }
  let manifest: Partial<UpcManifest>;
  try {
    manifest = JSON.parse(tail.subarray(indexLength).toString('utf8')) as Partial<UpcManifest>;
  } catch {
    throw new UpcFileError(`${file} has a manifest that is not JSON`);
  }
  if (manifest.v !== 1 || typeof manifest.root !== 'string' || !/^[0-9a-f]{64}$/.test(manifest.root)) {
    throw new UpcFileError(`${file} has an unknown manifest`);
  }
  return { entries, manifest: manifest as UpcManifest, previousEnd };
}

/** The object's stored bytes, checked: a damaged source must not become a damaged `.upc` file. */
async function storedBytes(reader: StoredReader, hash: string): Promise<Buffer> {
  if (!reader.readStored) return (await encodeObject(await reader.read(hash), hash)).bytes;
  const stored = await reader.readStored(hash);
  await decodeObject(hash, stored);
  return stored;
}

async function readAt(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, offset);
  if (bytesRead !== length) throw new UpcFileError('unexpected end of file');
  return buffer;
}
