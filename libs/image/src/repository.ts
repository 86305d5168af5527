import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { open, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from './hash.js';
import { limiter } from './limit.js';
import { declaredSize, decodeObject, encodeObject, MAX_OBJECT_SIZE } from './object.js';
import {
  encodePack,
  PACK_ENTRY_SIZE,
  PACK_MAGIC,
  PACK_TRAILER_SIZE,
  PackFormatError,
  type PackObject,
  parsePackIndex,
  readPackTrailer,
} from './pack.js';

/** Reads objects by id; what comes back is plaintext checked against the id. */
export interface ObjectReader {
  read(hash: string, maxSize?: number): Promise<Buffer>;
}

/** Stores objects. `write` may buffer; `flush` makes everything written so far durable. */
export interface ObjectWriter {
  has(hash: string): boolean;
  write(plaintext: Uint8Array, hash?: string): Promise<string>;
  flush(): Promise<void>;
}

export type Repository = ObjectReader & ObjectWriter;

export class ObjectMissingError extends Error {
  override name = 'ObjectMissingError';
  constructor(readonly hash: string) {
    super(`object ${hash} is not in the repository`);
  }
}

interface Location {
  file: string;
  offset: number;
  length: number;
}

/** Objects whose stored form is at least this big are kept in files of their own, not packs. */
export const STANDALONE_THRESHOLD = 512 * 1024;
/** A pack is written once its pending objects reach this size. */
export const PACK_TARGET = 16 * 1024 * 1024;
/**
 * Objects whose plaintext is bigger than this (the default chunker's largest chunk) are decoded one
 * at a time: an image can name a 2 KiB object that expands to 64 MiB, many times over.
 */
export const LARGE_OBJECT = 4 * 1024 * 1024;

/**
 * A repository in a local folder: `packs/xx/<pack id>` for small objects, `data/xx/<object id>` for
 * big ones, each written to a temporary file, fsynced and renamed into place. The index of what
 * is where is rebuilt at open from the pack trailers and the data folder.
 */
export class LocalRepository implements Repository {
  private readonly index = new Map<string, Location>();
  private pending: PackObject[] = [];
  private pendingIds = new Set<string>();
  /** Objects waiting for their pack, by id, so reads of them do not scan the list. */
  private readonly pendingStored = new Map<string, Uint8Array>();
  private pendingBytes = 0;
  private readonly descriptors = new Map<string, number>();
  /** Store files given in memory (`hold`) and not yet written to the folder, by file name. */
  private readonly held = new Map<string, Buffer>();
  private readonly decodeLarge = limiter(1);
  /**
   * The last large object decoded, while anyone still holds it: a file made of one chunk repeated
   * (zeros, or a crafted image) is decoded once, not once per read, and never held twice.
   */
  private lastLarge: { hash: string; plaintext: WeakRef<Buffer> } | undefined;
  /** Stored bytes written by this instance (packs and standalone objects). */
  bytesWritten = 0;

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<LocalRepository> {
    const repository = new LocalRepository(dir);
    await mkdir(join(dir, 'packs'), { recursive: true });
    await mkdir(join(dir, 'data'), { recursive: true });
    repository.loadIndex();
    return repository;
  }

  get size(): number {
    return this.index.size + this.pending.length;
  }

  has(hash: string): boolean {
    return this.index.has(hash) || this.pendingIds.has(hash);
  }

  async write(plaintext: Uint8Array, hash = sha256Hex(plaintext)): Promise<string> {
    if (this.has(hash)) return hash;
    const encoded = await encodeObject(plaintext, hash);
    await this.writeStored(hash, encoded.bytes); // a no-op if written meanwhile by a concurrent caller
    return hash;
  }

  /**
   * Stores an object given in its stored (encoded) form, as fetched from a server, without
   * re-encoding it. The caller has verified it (`decodeObject` checks the plaintext against `hash`).
   */
  async writeStored(hash: string, stored: Uint8Array): Promise<void> {
    if (this.has(hash)) return;
    if (stored.length >= STANDALONE_THRESHOLD) {
      const file = join('data', hash.slice(0, 2), hash);
      this.pendingIds.add(hash);
      try {
        await this.writeFile(file, stored);
      } finally {
        this.pendingIds.delete(hash);
      }
      this.index.set(hash, { file, offset: 0, length: stored.length });
      return;
    }
    this.pending.push({ hash, bytes: stored });
    this.pendingIds.add(hash);
    this.pendingStored.set(hash, stored);
    this.pendingBytes += stored.length;
    if (this.pendingBytes >= PACK_TARGET) await this.writePack();
  }

  async flush(): Promise<void> {
    if (this.pending.length > 0) await this.writePack();
  }

  async read(hash: string, maxSize = MAX_OBJECT_SIZE): Promise<Buffer> {
    const stored = this.pendingStored.get(hash) ?? (await this.readStored(hash));
    const size = declaredSize(stored);
    if (size === undefined || size <= LARGE_OBJECT || size > maxSize)
      return decodeObject(hash, stored, maxSize);
    return this.decodeLarge(async () => {
      const kept = this.lastLarge?.hash === hash ? this.lastLarge.plaintext.deref() : undefined;
      if (kept) return kept;
      const plaintext = await decodeObject(hash, stored, maxSize);
      this.lastLarge = { hash, plaintext: new WeakRef(plaintext) };
      return plaintext;
    });
  }

  /** The length of an object's stored (encoded) form, or undefined when the repository lacks it. */
  storedSize(hash: string): number | undefined {
    return this.pendingStored.get(hash)?.length ?? this.index.get(hash)?.length;
  }

  /**
   * Takes a store file given in memory, named as it would be in the folder (`packs/xx/<pack id>`
   * or `data/xx/<object id>`), such as one decrypted from a cache: its objects are read from
   * memory at once, and the file is written to the folder by `writeHeld`. A pack whose index does
   * not hold together is refused; each object is checked against its id when it is read, as any.
   */
  hold(file: string, bytes: Buffer): void {
    this.locate(file, bytes);
    this.held.set(file, bytes);
  }

  /**
   * Takes a store file given in memory, as `hold` does, but writes it to the folder now (not
   * synced: a copy of what the server stores) instead of keeping it in memory.
   */
  async keep(file: string, bytes: Buffer): Promise<void> {
    const locations = this.objectsIn(file, bytes);
    if (!existsSync(join(this.dir, file))) await this.writeFile(file, bytes, false);
    for (const [hash, location] of locations) this.index.set(hash, location);
  }

  /** Indexes the objects of a store file given in memory. */
  private locate(file: string, bytes: Buffer): void {
    for (const [hash, location] of this.objectsIn(file, bytes)) this.index.set(hash, location);
  }

  /** Where each object of a store file is in it; a file that is not one, or a broken pack, is refused. */
  private objectsIn(file: string, bytes: Buffer): [string, Location][] {
    const match = /^(packs|data)\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(file);
    if (!match) throw new Error(`${file} is not the name of a store file`);
    const [, top, name] = match as unknown as [string, string, string];
    if (top === 'data') return [[name, { file, offset: 0, length: bytes.length }]];
    if (!bytes.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC))
      throw new PackFormatError('not a uPC pack (bad magic)');
    const count = readPackTrailer(bytes.subarray(bytes.length - PACK_TRAILER_SIZE), bytes.length);
    const end = bytes.length - PACK_TRAILER_SIZE;
    const index = bytes.subarray(end - count * PACK_ENTRY_SIZE, end);
    return parsePackIndex(index, count, bytes.length).map((entry) => [
      entry.hash,
      { file, offset: entry.offset, length: entry.length },
    ]);
  }

  /**
   * Writes the files given by `hold` to the folder. Not synced to the disk: they are copies of
   * what the server stores, kept for this PC's convenience.
   */
  async writeHeld(): Promise<void> {
    for (const [file, bytes] of this.held) {
      if (!existsSync(join(this.dir, file))) await this.writeFile(file, bytes, false);
      this.held.delete(file);
    }
  }

  /** The stored (encoded) bytes of an object, as they sit in its pack or file. */
  readStored(hash: string): Promise<Buffer> {
    const waiting = this.pendingStored.get(hash);
    if (waiting) return Promise.resolve(Buffer.from(waiting));
    const location = this.index.get(hash);
    if (!location) return Promise.reject(new ObjectMissingError(hash));
    const held = this.held.get(location.file);
    if (held) return Promise.resolve(held.subarray(location.offset, location.offset + location.length));
    // Small reads from a few pack files: a kept descriptor and a synchronous read beat a
    // FileHandle round trip through the thread pool per object many times over.
    let fd = this.descriptors.get(location.file);
    if (fd === undefined) {
      fd = openSync(join(this.dir, location.file), 'r');
      this.descriptors.set(location.file, fd);
    }
    const buffer = Buffer.allocUnsafe(location.length);
    const bytesRead = readSync(fd, buffer, 0, location.length, location.offset);
    if (bytesRead !== location.length) {
      return Promise.reject(new Error(`object ${hash} is truncated in ${location.file}`));
    }
    return Promise.resolve(buffer);
  }

  /** Closes the files kept open for reading. The repository can still be used; they reopen. */
  close(): void {
    for (const fd of this.descriptors.values()) closeSync(fd);
    this.descriptors.clear();
  }

  /** Every object id in the repository. */
  ids(): IterableIterator<string> {
    return this.index.keys();
  }

  private async writePack(): Promise<void> {
    const objects = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const pack = encodePack(objects);
    const file = join('packs', pack.hash.slice(0, 2), pack.hash);
    await this.writeFile(file, pack.bytes);
    for (const entry of pack.entries) {
      this.index.set(entry.hash, { file, offset: entry.offset, length: entry.length });
      this.pendingIds.delete(entry.hash);
      this.pendingStored.delete(entry.hash);
    }
  }

  private async writeFile(file: string, bytes: Uint8Array, durable = true): Promise<void> {
    const path = join(this.dir, file);
    await mkdir(join(path, '..'), { recursive: true });
    const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    this.bytesWritten += bytes.length;
  }

  /**
   * Reads every pack's index and lists the standalone objects. Synchronous calls: a few small reads
   * per pack, which through the thread pool would cost a round trip each (opening a repository is
   * on the way to every login and every daemon's start).
   */
  private loadIndex(): void {
    for (const file of listFiles(this.dir, 'packs')) {
      const fd = openSync(join(this.dir, file), 'r');
      try {
        const { size } = fstatSync(fd);
        const trailer = Buffer.alloc(PACK_TRAILER_SIZE);
        readSync(fd, trailer, 0, PACK_TRAILER_SIZE, Math.max(0, size - PACK_TRAILER_SIZE));
        const count = readPackTrailer(trailer, size);
        const index = Buffer.alloc(count * PACK_ENTRY_SIZE);
        readSync(fd, index, 0, index.length, size - PACK_TRAILER_SIZE - index.length);
        for (const entry of parsePackIndex(index, count, size)) {
          this.index.set(entry.hash, { file, offset: entry.offset, length: entry.length });
        }
      } finally {
        closeSync(fd);
      }
    }
    for (const file of listFiles(this.dir, 'data')) {
      const hash = file.slice(file.lastIndexOf('/') + 1);
      this.index.set(hash, { file, offset: 0, length: statSync(join(this.dir, file)).size });
    }
  }
}

function listFiles(dir: string, top: string): string[] {
  const files: string[] = [];
  for (const prefix of readdirSync(join(dir, top))) {
    for (const name of readdirSync(join(dir, top, prefix))) {
      // `*.tmp` files are writes under way (ours or another process's) or interrupted: not objects.
      if (/^[0-9a-f]{64}$/.test(name)) files.push(join(top, prefix, name));
    }
  }
  return files;
}
