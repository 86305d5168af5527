import {
  type BigIntStats,
  closeSync,
  constants,
  createReadStream,
  fstatSync,
  lstatSync,
  readdirSync,
  readFile as readFileCallback,
  readFileSync,
  readlinkSync,
  readSync,
} from 'node:fs';
import { readdir } from 'node:fs/promises';
import { closeDirectory, type Directory, entry, Folder, type OpenBeneath, self } from './beneath.js';
import {
  chunkBuffer,
  chunkStream,
  type ChunkerParams,
  DEFAULT_CHUNKER,
  validateChunkerParams,
} from './chunker.js';
import { sha256Hex } from './hash.js';
import { limiter } from './limit.js';
import type { ObjectReader, ObjectWriter } from './repository.js';
import {
  decodeTree,
  type Entry,
  type FileEntry,
  hashTree,
  type Owner,
  type Tree,
  validateName,
} from './tree.js';

/** The longest path a system call takes (Linux's PATH_MAX, its final NUL included). */
const PATH_MAX = 4096;
/** Files up to this size are read in one synchronous call. */
const SMALL_FILE = 1024 * 1024;
/** Reads of a file that keeps changing while it is read, before it is given up as unstable. */
const READ_ATTEMPTS = 3;

/** What a snapshot remembers of a file to decide, next time, whether it must be read again. */
interface CachedFile {
  size: number;
  mtime: number;
  ino: string;
  entry: FileEntry;
}

export interface Totals {
  files: number;
  dirs: number;
  symlinks: number;
  whiteouts: number;
  bytes: number;
}

function totalsOf(tree: Tree, dirs: ReadonlyMap<string, CachedDir>): Totals {
  const totals: Totals = { files: 0, dirs: 0, symlinks: 0, whiteouts: 0, bytes: 0 };
  for (const entry of tree.entries) {
    if (entry.type === 'file') {
      totals.files++;
      totals.bytes += entry.size;
    } else if (entry.type === 'symlink') totals.symlinks++;
    else if (entry.type === 'whiteout') totals.whiteouts++;
    else {
      const child = dirs.get(entry.name)?.totals;
      totals.dirs += 1 + (child?.dirs ?? 0);
      totals.files += child?.files ?? 0;
      totals.symlinks += child?.symlinks ?? 0;
      totals.whiteouts += child?.whiteouts ?? 0;
      totals.bytes += child?.bytes ?? 0;
    }
  }
  return totals;
}

/** A directory as last snapshotted: its tree id and what it held. */
export interface CachedDir {
  hash: string;
  tree: Tree;
  /** What the folder holds, all the way down: a reused folder adds these without a walk. */
  totals: Totals;
  files: Map<string, CachedFile>;
  dirs: Map<string, CachedDir>;
  /**
   * Something in this folder or below is not as cached (a file that kept changing while it was
   * read, or, in a primed cache, an entry unlike the restored tree). Whatever its `changed` hint
   * says, the next snapshot stats this folder and everything in it, and reads the files unlike
   * the cache.
   */
  stale?: true;
}

/**
 * The local cache that makes a snapshot incremental: a file whose size, mtime and inode are as
 * cached is not read again, and a directory nothing changed in keeps its tree. Keep one per
 * snapshotted folder (the agent's daemon keeps it in memory; `toJSON`/`fromJSON` persist it).
 */
export class SnapshotCache {
  root: CachedDir | undefined;
  chunker: ChunkerParams | undefined;

  toJSON(): unknown {
    const dir = (d: CachedDir): unknown => ({
      hash: d.hash,
      tree: d.tree,
      files: [...d.files].map(([name, f]) => [name, f.size, f.mtime, f.ino]),
      dirs: [...d.dirs].map(([name, child]) => [name, dir(child)]),
      ...(d.stale ? { stale: true } : {}),
    });
    return { v: 1, chunker: this.chunker, root: this.root ? dir(this.root) : null };
  }

  static fromJSON(json: unknown): SnapshotCache {
    const cache = new SnapshotCache();
    const data = json as { v: number; chunker?: ChunkerParams; root: RawDir | null };
    if (data.v !== 1) return cache;
    cache.chunker = data.chunker;
    const dir = (raw: RawDir): CachedDir => {
      const entries = new Map(raw.tree.entries.map((e) => [e.name, e]));
      return {
        hash: raw.hash,
        tree: raw.tree,
        files: new Map(
          raw.files.map(([name, size, mtime, ino]) => [
            name,
            { size, mtime, ino, entry: entries.get(name) as FileEntry },
          ]),
        ),
        dirs: new Map(raw.dirs.map(([name, child]) => [name, dir(child)])),
        totals: { files: 0, dirs: 0, symlinks: 0, whiteouts: 0, bytes: 0 },
        ...(raw.stale === true ? { stale: true as const } : {}),
      };
    };
    const withTotals = (d: CachedDir): CachedDir => {
      for (const child of d.dirs.values()) withTotals(child);
      d.totals = totalsOf(d.tree, d.dirs);
      return d;
    };
    cache.root = data.root ? withTotals(dir(data.root)) : undefined;
    return cache;
  }
}
interface RawDir {
  hash: string;
  tree: Tree;
  files: [string, number, number, string][];
  dirs: [string, RawDir][];
  stale?: true;
}

export interface SnapshotOptions {
  chunker?: ChunkerParams;
  /** Read and updated. Without one, every file is read. */
  cache?: SnapshotCache;
  /**
   * Paths (relative to the snapshotted folder, '/'-separated) that may have changed since the cache
   * was filled, as a file watcher reports them. Given with a cache, only these paths and their
   * parent folders are looked at (and the folders where the last snapshot found a file changing
   * while it read it): the cost is proportional to the change. Without it, every entry is stat'ed
   * (but only changed files are read).
   */
  changed?: Iterable<string>;
  /** Ids that count as "the session's user" (default: this process's). */
  sessionUid?: number;
  sessionGid?: number;
  /** True for paths that are never saved (the policy's `exclude` rules). */
  exclude?: (path: string) => boolean;
  /** Whether the folder open as `fd` is an overlayfs opaque directory; the Linux driver supplies this. */
  isOpaque?: (fd: number) => boolean;
  /**
   * How paths beneath the root are opened without following links (see `Folder`); the Linux
   * driver supplies a faster one than the default.
   */
  openBeneath?: OpenBeneath;
  /** Files read at once. */
  concurrency?: number;
  /** Called for entries a snapshot cannot hold (sockets, FIFOs, devices), which are left out. */
  onSkip?: (path: string, reason: string) => void;
  /**
   * Called for files still changing after every read (each read is checked against a stat taken
   * after it). Such a file keeps the entry the cache had for it, or is left out if it had none; it
   * is not cached as read, so the next snapshot reads it: snapshot again later.
   */
  onUnstable?: (path: string) => void;
}

export interface SnapshotStats {
  files: number;
  dirs: number;
  symlinks: number;
  whiteouts: number;
  bytes: number;
  /** Reads of files, a read again of a file that changed while it was read included. */
  filesRead: number;
  bytesRead: number;
  dirsRead: number;
  /** Files still changing after every read, reported through `onUnstable`. */
  unstable: number;
}

export interface SnapshotResult {
  root: string;
  chunker: ChunkerParams;
  stats: SnapshotStats;
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

/** Snapshots the folder `root` into `writer` and returns the id of its root tree. */
export async function snapshot(
  root: string,
  writer: ObjectWriter,
  options: SnapshotOptions = {},
): Promise<SnapshotResult> {
  const chunker = options.chunker ?? options.cache?.chunker ?? DEFAULT_CHUNKER;
  validateChunkerParams(chunker);
  const cache = options.cache;
  const sameChunker =
    cache?.chunker !== undefined && JSON.stringify(cache.chunker) === JSON.stringify(chunker);
  const previous = sameChunker ? cache.root : undefined;
  let dirty: Set<string> | undefined;
  if (options.changed && previous) {
    dirty = new Set(['']);
    for (const path of options.changed) {
      const parts = path.split('/').filter((p) => p !== '' && p !== '.');
      for (let i = 1; i <= parts.length; i++) dirty.add(parts.slice(0, i).join('/'));
    }
  }
  const folder = Folder.open(root, options.openBeneath);
  try {
    const run = new SnapshotRun(folder, writer, chunker, options, dirty);
    const top = await run.dir('', previous);
    if (!top) throw new SnapshotError(`${root} changed while it was read`);
    await writer.flush();
    if (cache) {
      cache.root = top.dir;
      cache.chunker = chunker;
    }
    return { root: top.dir.hash, chunker, stats: { ...run.stats, ...top.dir.totals } };
  } finally {
    folder.close();
  }
}

/** Stats of a snapshot that has read nothing yet. */
export function emptySnapshotStats(): SnapshotStats {
  return {
    files: 0,
    dirs: 0,
    symlinks: 0,
    whiteouts: 0,
    bytes: 0,
    filesRead: 0,
    bytesRead: 0,
    dirsRead: 0,
    unstable: 0,
  };
}

/** What a folder's listing found of an entry: its stats, and a link's target. */
interface Found {
  stats: BigIntStats;
  target?: string;
}

/** A folder read: what it holds, and whether it is overlay-opaque (undefined: as cached). */
interface ReadDir {
  dir: CachedDir;
  opaque: boolean | undefined;
}

/** Errors that say an entry is no longer what its folder's listing said it was. */
const CHANGED = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EINVAL', 'ENXIO', 'EXDEV']);

function changedUnderUs(error: unknown): boolean {
  return CHANGED.has((error as NodeJS.ErrnoException).code ?? '');
}

class SnapshotRun {
  readonly stats: SnapshotStats = emptySnapshotStats();
  private readonly reads: ReturnType<typeof limiter>;
  private readonly smallReads: ReturnType<typeof limiter>;
  private readonly uid: number;
  private readonly gid: number;

  constructor(
    private readonly folder: Folder,
    private readonly writer: ObjectWriter,
    private readonly chunker: ChunkerParams,
    private readonly options: SnapshotOptions,
    private readonly dirty: Set<string> | undefined,
  ) {
    this.reads = limiter(options.concurrency ?? 8);
    this.smallReads = limiter(SMALL_READS);
    this.uid = options.sessionUid ?? process.getuid?.() ?? 0;
    this.gid = options.sessionGid ?? process.getgid?.() ?? 0;
  }

  /**
   * The folder at `path` (relative to the snapshot's root), read unless the cache may be trusted;
   * undefined if it is no longer a folder (it was replaced while the snapshot ran).
   */
  async dir(path: string, cached: CachedDir | undefined): Promise<ReadDir | undefined> {
    if (cached && !cached.stale && this.dirty && !this.dirty.has(path)) {
      return { dir: cached, opaque: undefined };
    }
    const listing = await this.list(path, cached);
    if (!listing) return undefined;
    this.stats.dirsRead++;
    const result: CachedDir = {
      hash: '',
      tree: { entries: [] },
      files: new Map(),
      dirs: new Map(),
      totals: { files: 0, dirs: 0, symlinks: 0, whiteouts: 0, bytes: 0 },
      ...(listing.stale ? { stale: true as const } : {}),
    };
    const cachedEntries = new Map(cached?.tree.entries.map((e) => [e.name, e]));
    const entries = await Promise.all(
      listing.names.map(async (name): Promise<Entry | undefined> => {
        const childPath = path === '' ? name : `${path}/${name}`;
        const found = listing.found.get(name);
        if (!found) {
          // Trusted: as cached.
          const cachedFile = cached?.files.get(name);
          if (cachedFile) {
            result.files.set(name, cachedFile);
            return cachedFile.entry;
          }
          const cachedDir = cached?.dirs.get(name);
          const read = cachedDir && (await this.dir(childPath, cachedDir));
          if (read) result.dirs.set(name, read.dir);
          return cachedEntries.get(name);
        }
        return this.entry(name, childPath, found, cached, cachedEntries.get(name), result);
      }),
    );
    if ([...result.dirs.values()].some((d) => d.stale)) result.stale = true;
    result.tree = { entries: entries.filter((e): e is Entry => e !== undefined) };
    result.totals = totalsOf(result.tree, result.dirs);
    const { hash, bytes } = hashTree(result.tree);
    await this.writer.write(bytes, hash);
    result.hash = hash;
    return { dir: result, opaque: listing.opaque };
  }

  /**
   * Reads a folder through a descriptor of its own: its names, and the stats (and link targets) of
   * those the cache may not be trusted for. Entries gone or changed meanwhile are left for the next
   * snapshot (the folder is then marked stale). Undefined if the folder itself is gone or replaced.
   */
  private async list(
    path: string,
    cached: CachedDir | undefined,
  ): Promise<{ names: string[]; found: Map<string, Found>; opaque: boolean; stale: boolean } | undefined> {
    let dir: Directory;
    try {
      dir = this.folder.directory(path);
    } catch (error) {
      if (path !== '' && changedUnderUs(error)) return undefined;
      throw error;
    }
    try {
      const names: string[] = [];
      const tooLong = (name: string) => Buffer.byteLength(path) + Buffer.byteLength(name) + 2 >= PATH_MAX;
      const found = new Map<string, Found>();
      let stale = false;
      // Read in the thread pool, the folder held open meanwhile by its descriptor.
      for (const raw of await readdir(self(dir), { encoding: 'buffer' })) {
        const name = raw.toString('utf8');
        const childPath = path === '' ? name : `${path}/${name}`;
        if (!Buffer.from(name, 'utf8').equals(raw)) {
          // Tree names are UTF-8; a name that is not would come back changed, so say so instead.
          this.options.onSkip?.(childPath, 'its name is not valid UTF-8');
          continue;
        }
        if (this.options.exclude?.(childPath)) continue;
        validateName(name, `folder ${path || '/'}`);
        if (tooLong(name)) {
          // Nothing takes a longer path: it could be neither read nor restored.
          this.options.onSkip?.(childPath, 'its path is longer than the system allows (4,096 bytes)');
          continue;
        }
        const trusted = this.dirty !== undefined && !this.dirty.has(childPath) && !cached?.stale;
        const cachedDir = cached?.dirs.get(name);
        if (trusted && (cached?.files.has(name) === true || (cachedDir !== undefined && !cachedDir.stale))) {
          names.push(name); // as cached
          continue;
        }
        try {
          // A stat of a cached inode is cheaper than the thread-pool round trip of an asynchronous one.
          const stats = lstatSync(entry(dir, name), { bigint: true });
          found.set(name, {
            stats,
            ...(stats.isSymbolicLink() ? { target: readlinkSync(entry(dir, name)) } : {}),
          });
          names.push(name);
        } catch (error) {
          if (!changedUnderUs(error)) throw error;
          // Gone, or a link no more by the time it was read: the next snapshot looks again.
          stale = true;
          const previous = cached?.tree.entries.find((e) => e.name === name);
          if (previous) {
            names.push(name);
            found.delete(name);
          }
        }
      }
      const opaque = dir.fd >= 0 && this.options.isOpaque !== undefined && this.options.isOpaque(dir.fd);
      return { names, found, opaque, stale };
    } finally {
      closeDirectory(dir);
    }
  }

  private async entry(
    name: string,
    path: string,
    found: Found,
    cached: CachedDir | undefined,
    previous: Entry | undefined,
    result: CachedDir,
  ): Promise<Entry | undefined> {
    const { stats } = found;
    const base = this.base(name, stats);
    if (stats.isFile()) {
      const file = await this.file(name, path, stats, cached?.files.get(name));
      if (file === 'gone') return undefined;
      if (file) {
        result.files.set(name, file);
        return file.entry;
      }
      // Never a torn read: the content last read whole, if any, stays. Left out of `files` and
      // the folder marked, so the next snapshot reads it whatever it is told changed.
      result.stale = true;
      this.stats.unstable++;
      this.options.onUnstable?.(path);
      return previous?.type === 'file' ? previous : undefined;
    }
    if (stats.isDirectory()) {
      const read = await this.dir(path, cached?.dirs.get(name));
      if (!read) {
        // Replaced by something else since it was listed: as it was, and looked at again next time.
        result.stale = true;
        const before = cached?.dirs.get(name);
        if (before && previous?.type === 'dir') result.dirs.set(name, { ...before, stale: true });
        return previous?.type === 'dir' ? previous : undefined;
      }
      result.dirs.set(name, read.dir);
      return { ...base, type: 'dir', tree: read.dir.hash, ...(read.opaque ? { opaque: true as const } : {}) };
    }
    if (stats.isSymbolicLink()) {
      return { ...base, type: 'symlink', target: found.target ?? '' };
    }
    if (stats.isCharacterDevice() && stats.rdev === 0n) {
      return { ...base, type: 'whiteout' };
    }
    this.options.onSkip?.(path, 'not a file, folder, symlink or overlay whiteout');
    return undefined;
  }

  private base(name: string, stats: BigIntStats): Omit<FileEntry, 'type' | 'size' | 'chunks'> {
    return {
      name,
      mode: Number(stats.mode & 0o7777n),
      mtime: Number(stats.mtimeNs / 1000n),
      owner: ownerOf(Number(stats.uid), this.uid),
      group: ownerOf(Number(stats.gid), this.gid),
    };
  }

  /**
   * A regular file: as cached if its size, mtime and inode are, else read. A read is trusted only if
   * a stat of the open file after it shows it as the stat before it did; otherwise it may be torn,
   * and the file is read again, up to READ_ATTEMPTS reads. Undefined if it was still changing after
   * the last; `gone` if it was deleted (or replaced by something not a file) before it was read.
   */
  private async file(
    name: string,
    path: string,
    stats: BigIntStats,
    cached: CachedFile | undefined,
  ): Promise<CachedFile | undefined | 'gone'> {
    const listed = this.base(name, stats);
    const size = Number(stats.size);
    const ino = stats.ino.toString();
    if (cached && cached.size === size && cached.mtime === listed.mtime && cached.ino === ino) {
      return {
        size,
        mtime: listed.mtime,
        ino,
        entry: { ...listed, type: 'file', size, chunks: cached.entry.chunks },
      };
    }
    for (let attempt = 1; ; attempt++) {
      const read = await this.readChunks(path, size);
      if (read === 'gone') return attempt === 1 ? 'gone' : undefined;
      this.stats.filesRead++;
      this.stats.bytesRead += read.bytes;
      if (read.stable) {
        // What is recorded is the file read: its stats, and the size of what was read.
        const base = this.base(name, read.before);
        return {
          size: read.bytes,
          mtime: base.mtime,
          ino: read.before.ino.toString(),
          entry: { ...base, type: 'file', size: read.bytes, chunks: read.chunks },
        };
      }
      if (attempt === READ_ATTEMPTS) return undefined;
    }
  }

  /**
   * The file's chunks, stored, read through a descriptor opened beneath the root without following
   * a link; `stable` if a stat of the open file after the read shows it as one before did. `gone`
   * if it was deleted, or is no longer a regular file, by the time it is opened.
   */
  private async readChunks(
    path: string,
    size: number,
  ): Promise<{ chunks: string[]; bytes: number; before: BigIntStats; stable: boolean } | 'gone'> {
    // Small files are the many, read all at once: their descriptors are few at a time.
    return size <= SMALL_FILE
      ? this.smallReads(() => this.readOpen(path, size))
      : this.reads(() => this.readOpen(path, size));
  }

  private async readOpen(
    path: string,
    size: number,
  ): Promise<{ chunks: string[]; bytes: number; before: BigIntStats; stable: boolean } | 'gone'> {
    let fd: number;
    try {
      fd = this.folder.open(path, READ_FLAGS);
    } catch (error) {
      if (changedUnderUs(error)) return 'gone';
      throw error;
    }
    try {
      const before = fstatSync(fd, { bigint: true });
      if (!before.isFile()) return 'gone';
      const chunks: string[] = [];
      let bytes = 0;
      const store = async (chunk: Uint8Array) => {
        const hash = sha256Hex(chunk);
        chunks.push(hash);
        bytes += chunk.length;
        if (!this.writer.has(hash)) await this.writer.write(chunk, hash);
      };
      if (size <= SMALL_FILE) {
        // One synchronous read: the file is small and likely in the page cache.
        for (const chunk of chunkBuffer(readSmall(fd, Number(before.size)), this.chunker)) await store(chunk);
      } else if (size <= this.chunker.maxSize * 2) {
        for (const chunk of chunkBuffer(await readWhole(fd), this.chunker)) await store(chunk);
      } else {
        const stream = createReadStream('', { fd, autoClose: false, highWaterMark: this.chunker.maxSize });
        for await (const chunk of chunkStream(stream as AsyncIterable<Buffer>, this.chunker))
          await store(chunk);
      }
      // The open file as the read ended (its chunks stored): unchanged, or it may be torn.
      const after = fstatSync(fd, { bigint: true });
      return { chunks, bytes, before, stable: sameVersion(before, after) && Number(before.size) === bytes };
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * All of a small open file, read at once into a buffer of its size and a byte more (to see that it
 * grew); what is read is what there was.
 */
function readSmall(fd: number, size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size + 1);
  let length = 0;
  for (;;) {
    const read = readSync(fd, buffer, length, buffer.length - length, null);
    if (read === 0) return buffer.subarray(0, length);
    length += read;
    if (length === buffer.length) return Buffer.concat([buffer, readFileSync(fd)]);
  }
}

/** How files are opened to be read: never a link, never waiting on a FIFO, never a terminal. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;
/** Small files open at once (each for its read and the storing of its chunks). */
const SMALL_READS = 64;

/** The whole content of an open file, read in the thread pool. */
function readWhole(fd: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    readFileCallback(fd, (error, data) => {
      if (error) reject(error);
      else resolve(data);
    });
  });
}

export interface PrimeOptions {
  /**
   * The parameters the tree was chunked with (default DEFAULT_CHUNKER). A snapshot not given
   * others takes these; one given others ignores the cache.
   */
  chunker?: ChunkerParams;
  /** Ids that count as "the session's user" (default: this process's), as for `snapshot`. */
  sessionUid?: number;
  sessionGid?: number;
  /** As for `snapshot`. */
  openBeneath?: OpenBeneath;
}

/**
 * A cache for `root` just restored from `rootTree` (by `materialize`), so that the first snapshot
 * after a restore reads only what changed since instead of every file. The tree is walked alongside
 * the folder: a file is cached only if it is still a regular file of the entry's size and mtime;
 * one that is not, or is missing, is left out (the snapshot reads it). Anything unlike the tree
 * (such a file, another mode or owner, a symlink or folder changed, a name the tree does not hold)
 * marks its folder stale, so the next snapshot looks at it whatever its `changed` hint says.
 */
export async function primeSnapshotCache(
  reader: ObjectReader,
  rootTree: string,
  root: string,
  options: PrimeOptions = {},
): Promise<SnapshotCache> {
  const chunker = options.chunker ?? DEFAULT_CHUNKER;
  validateChunkerParams(chunker);
  const uid = options.sessionUid ?? process.getuid?.() ?? 0;
  const gid = options.sessionGid ?? process.getgid?.() ?? 0;
  const folder = Folder.open(root, options.openBeneath);
  const stale = (hash: string, tree: Tree): CachedDir => ({
    hash,
    tree,
    files: new Map(),
    dirs: new Map(),
    totals: totalsOf(tree, new Map()),
    stale: true,
  });
  const prime = async (hash: string, path: string): Promise<CachedDir> => {
    const tree = decodeTree(await reader.read(hash), hash);
    const result: CachedDir = {
      hash,
      tree,
      files: new Map(),
      dirs: new Map(),
      totals: { files: 0, dirs: 0, symlinks: 0, whiteouts: 0, bytes: 0 },
    };
    const subfolders: [string, string][] = [];
    // The session may be running: the folder is looked at through a descriptor, and anything
    // unlike the tree, gone or replaced meanwhile, marks it stale.
    let dir: Directory;
    try {
      dir = folder.directory(path);
    } catch (error) {
      if (path !== '' && changedUnderUs(error)) return stale(hash, tree);
      throw error;
    }
    try {
      const names = new Set(tree.entries.map((e) => e.name));
      const present = readdirSync(self(dir), { encoding: 'buffer' });
      if (present.length !== names.size || present.some((raw) => !names.has(raw.toString('utf8'))))
        result.stale = true;
      for (const entry of tree.entries) {
        const stats = lstatPresent(dir, entry.name);
        if (!stats) {
          result.stale = true;
          continue;
        }
        // Whether a snapshot would record it as the tree does, but for the content.
        const mtime = Number(stats.mtimeNs / 1000n);
        const same =
          Number(stats.mode & 0o7777n) === entry.mode &&
          mtime === entry.mtime &&
          ownerOf(Number(stats.uid), uid) === entry.owner &&
          ownerOf(Number(stats.gid), gid) === entry.group;
        switch (entry.type) {
          case 'file':
            // The content is the entry's if the size and mtime are (materialize set the mtime last).
            if (stats.isFile() && Number(stats.size) === entry.size && mtime === entry.mtime) {
              result.files.set(entry.name, { size: entry.size, mtime, ino: stats.ino.toString(), entry });
            }
            if (!same || !stats.isFile() || Number(stats.size) !== entry.size) result.stale = true;
            break;
          case 'dir':
            if (!stats.isDirectory()) result.stale = true;
            else {
              if (!same) result.stale = true;
              subfolders.push([entry.name, entry.tree]);
            }
            break;
          case 'symlink':
            if (!stats.isSymbolicLink() || !same || readlinkPresent(dir, entry.name) !== entry.target)
              result.stale = true;
            break;
          case 'whiteout':
            if (!stats.isCharacterDevice() || stats.rdev !== 0n || !same) result.stale = true;
            break;
        }
      }
    } finally {
      closeDirectory(dir);
    }
    for (const [name, tree] of subfolders) {
      const child = await prime(tree, path === '' ? name : `${path}/${name}`);
      if (child.stale) result.stale = true;
      result.dirs.set(name, child);
    }
    result.totals = totalsOf(tree, result.dirs);
    return result;
  };
  try {
    const cache = new SnapshotCache();
    cache.root = await prime(rootTree, '');
    cache.chunker = chunker;
    return cache;
  } finally {
    folder.close();
  }
}

/** `lstat` (bigint) of `name` in the folder, or undefined if nothing is there any more. */
function lstatPresent(dir: Directory, name: string): BigIntStats | undefined {
  try {
    return lstatSync(entry(dir, name), { bigint: true });
  } catch (error) {
    if (changedUnderUs(error)) return undefined;
    throw error;
  }
}

/** The target of the link `name` in the folder, or undefined if it is no longer a link. */
function readlinkPresent(dir: Directory, name: string): string | undefined {
  try {
    return readlinkSync(entry(dir, name));
  } catch (error) {
    if (changedUnderUs(error)) return undefined;
    throw error;
  }
}

function ownerOf(id: number, session: number): Owner {
  if (id === 0) return 'root';
  return id === session ? 'user' : id;
}

/** Whether two stats of a path show the same version of the same file. */
function sameVersion(before: BigIntStats, after: BigIntStats): boolean {
  return (
    before.size === after.size &&
    before.mtimeNs === after.mtimeNs &&
    before.ctimeNs === after.ctimeNs &&
    before.ino === after.ino
  );
}
