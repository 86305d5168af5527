import { createReadStream, lstatSync, readFileSync, type BigIntStats } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  chunkBuffer,
  chunkStream,
  type ChunkerParams,
  DEFAULT_CHUNKER,
  validateChunkerParams,
} from './chunker.js';
import { sha256Hex } from './hash.js';
import { limiter } from './limit.js';
import type { ObjectWriter } from './repository.js';
import { type Entry, type FileEntry, hashTree, type Owner, type Tree, validateName } from './tree.js';

/** Files up to this size are read in one synchronous call. */
const SMALL_FILE = 1024 * 1024;

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
}

export interface SnapshotOptions {
  chunker?: ChunkerParams;
  /** Read and updated. Without one, every file is read. */
  cache?: SnapshotCache;
  /**
   * Paths (relative to the snapshotted folder, '/'-separated) that may have changed since the cache
   * was filled, as a file watcher reports them. Given with a cache, only these paths and their
   * parent folders are looked at: the cost is proportional to the change. Without it, every entry
   * is stat'ed (but only changed files are read).
   */
  changed?: Iterable<string>;
  /** Ids that count as "the session's user" (default: this process's). */
  sessionUid?: number;
  sessionGid?: number;
  /** True for paths that are never saved (the policy's `exclude` rules). */
  exclude?: (path: string) => boolean;
  /** Whether a folder is an overlayfs opaque directory; the Linux driver supplies this. */
  isOpaque?: (absolutePath: string) => Promise<boolean>;
  /** Files read at once. */
  concurrency?: number;
  /** Called for entries a snapshot cannot hold (sockets, FIFOs, devices), which are left out. */
  onSkip?: (path: string, reason: string) => void;
}

export interface SnapshotStats {
  files: number;
  dirs: number;
  symlinks: number;
  whiteouts: number;
  bytes: number;
  filesRead: number;
  bytesRead: number;
  dirsRead: number;
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
  const run = new SnapshotRun(writer, chunker, options, dirty);
  const top = await run.dir(root, '', previous);
  await writer.flush();
  if (cache) {
    cache.root = top;
    cache.chunker = chunker;
  }
  return { root: top.hash, chunker, stats: { ...run.stats, ...top.totals } };
}

class SnapshotRun {
  readonly stats: SnapshotStats = {
    files: 0,
    dirs: 0,
    symlinks: 0,
    whiteouts: 0,
    bytes: 0,
    filesRead: 0,
    bytesRead: 0,
    dirsRead: 0,
  };
  private readonly reads: ReturnType<typeof limiter>;
  private readonly uid: number;
  private readonly gid: number;

  constructor(
    private readonly writer: ObjectWriter,
    private readonly chunker: ChunkerParams,
    private readonly options: SnapshotOptions,
    private readonly dirty: Set<string> | undefined,
  ) {
    this.reads = limiter(options.concurrency ?? 8);
    this.uid = options.sessionUid ?? process.getuid?.() ?? 0;
    this.gid = options.sessionGid ?? process.getgid?.() ?? 0;
  }

  async dir(absolute: string, path: string, cached: CachedDir | undefined): Promise<CachedDir> {
    if (cached && this.dirty && !this.dirty.has(path)) {
      return cached;
    }
    this.stats.dirsRead++;
    const names: string[] = [];
    for (const raw of await readdir(absolute, { encoding: 'buffer' })) {
      const name = raw.toString('utf8');
      const childPath = path === '' ? name : `${path}/${name}`;
      if (!Buffer.from(name, 'utf8').equals(raw)) {
        // Tree names are UTF-8; a name that is not would come back changed, so say so instead.
        this.options.onSkip?.(childPath, 'its name is not valid UTF-8');
        continue;
      }
      if (!this.options.exclude?.(childPath)) names.push(name);
    }
    const result: CachedDir = {
      hash: '',
      tree: { entries: [] },
      files: new Map(),
      dirs: new Map(),
      totals: { files: 0, dirs: 0, symlinks: 0, whiteouts: 0, bytes: 0 },
    };
    const cachedEntries = new Map(cached?.tree.entries.map((e) => [e.name, e]));
    const entries = await Promise.all(
      names.map(async (name): Promise<Entry | undefined> => {
        validateName(name, `folder ${absolute}`);
        const childPath = path === '' ? name : `${path}/${name}`;
        const childAbsolute = join(absolute, name);
        const trusted = this.dirty !== undefined && !this.dirty.has(childPath);
        const cachedFile = cached?.files.get(name);
        if (trusted && cachedFile) {
          result.files.set(name, cachedFile);
          return cachedFile.entry;
        }
        const cachedDir = cached?.dirs.get(name);
        if (trusted && cachedDir) {
          const entry = cachedEntries.get(name);
          result.dirs.set(name, await this.dir(childAbsolute, childPath, cachedDir));
          return entry;
        }
        // A stat of a cached inode is cheaper than the thread-pool round trip of an asynchronous one.
        const stats = lstatSync(childAbsolute, { bigint: true });
        return this.entry(name, childAbsolute, childPath, stats, cached, result);
      }),
    );
    result.tree = { entries: entries.filter((e): e is Entry => e !== undefined) };
    result.totals = totalsOf(result.tree, result.dirs);
    const { hash, bytes } = hashTree(result.tree);
    await this.writer.write(bytes, hash);
    result.hash = hash;
    return result;
  }

  private async entry(
    name: string,
    absolute: string,
    path: string,
    stats: BigIntStats,
    cached: CachedDir | undefined,
    result: CachedDir,
  ): Promise<Entry | undefined> {
    const base = {
      name,
      mode: Number(stats.mode & 0o7777n),
      mtime: Number(stats.mtimeNs / 1000n),
      owner: this.owner(Number(stats.uid), this.uid),
      group: this.owner(Number(stats.gid), this.gid),
    };
    if (stats.isFile()) {
      const file = await this.file(absolute, base, stats, cached?.files.get(name));
      result.files.set(name, file);
      return file.entry;
    }
    if (stats.isDirectory()) {
      const dir = await this.dir(absolute, path, cached?.dirs.get(name));
      result.dirs.set(name, dir);
      const opaque = (await this.options.isOpaque?.(absolute)) === true;
      return { ...base, type: 'dir', tree: dir.hash, ...(opaque ? { opaque: true as const } : {}) };
    }
    if (stats.isSymbolicLink()) {
      return { ...base, type: 'symlink', target: await readlink(absolute) };
    }
    if (stats.isCharacterDevice() && stats.rdev === 0n) {
      return { ...base, type: 'whiteout' };
    }
    this.options.onSkip?.(path, 'not a file, folder, symlink or overlay whiteout');
    return undefined;
  }

  private async file(
    absolute: string,
    base: Omit<FileEntry, 'type' | 'size' | 'chunks'>,
    stats: BigIntStats,
    cached: CachedFile | undefined,
  ): Promise<CachedFile> {
    const size = Number(stats.size);
    const ino = stats.ino.toString();
    if (cached && cached.size === size && cached.mtime === base.mtime && cached.ino === ino) {
      return {
        size,
        mtime: base.mtime,
        ino,
        entry: { ...base, type: 'file', size, chunks: cached.entry.chunks },
      };
    }
    // The size recorded is what was read: a file written to meanwhile still gets a consistent entry
    // (its new mtime makes the next snapshot read it again).
    const { chunks, bytes } =
      size <= SMALL_FILE
        ? await this.readChunks(absolute, size)
        : await this.reads(() => this.readChunks(absolute, size));
    this.stats.filesRead++;
    this.stats.bytesRead += bytes;
    return { size: bytes, mtime: base.mtime, ino, entry: { ...base, type: 'file', size: bytes, chunks } };
  }

  private async readChunks(absolute: string, size: number): Promise<{ chunks: string[]; bytes: number }> {
    const chunks: string[] = [];
    let bytes = 0;
    const store = async (chunk: Uint8Array) => {
      const hash = sha256Hex(chunk);
      chunks.push(hash);
      bytes += chunk.length;
      if (!this.writer.has(hash)) await this.writer.write(chunk, hash);
    };
    if (size <= SMALL_FILE) {
      // Most files are small and in the page cache: one synchronous read beats the four thread-pool
      // round trips (open, stat, read, close) of an asynchronous one.
      for (const chunk of chunkBuffer(readFileSync(absolute), this.chunker)) await store(chunk);
    } else if (size <= this.chunker.maxSize * 2) {
      for (const chunk of chunkBuffer(await readFile(absolute), this.chunker)) await store(chunk);
    } else {
      const stream = createReadStream(absolute, { highWaterMark: this.chunker.maxSize });
      for await (const chunk of chunkStream(stream as AsyncIterable<Buffer>, this.chunker))
        await store(chunk);
    }
    return { chunks, bytes };
  }

  private owner(id: number, session: number): Owner {
    if (id === 0) return 'root';
    return id === session ? 'user' : id;
  }
}
