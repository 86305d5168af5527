import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  open as openCallback,
  openSync,
  rmSync,
  writeSync,
} from 'node:fs';
import {
  lchown,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  symlink,
} from 'node:fs/promises';
import { isAbsolute, join, posix } from 'node:path';
import {
  closeDirectory,
  type Directory,
  entry as beneathEntry,
  Folder,
  type OpenBeneath,
} from './beneath.js';
import { ByteBudget, limiter } from './limit.js';
import { ObjectFormatError } from './object.js';
import type { ObjectReader } from './repository.js';
import {
  decodeTree,
  type DirEntry,
  type Entry,
  type FileEntry,
  type Owner,
  type SymlinkEntry,
} from './tree.js';

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const FOLDER_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** The longest path a system call takes (Linux's PATH_MAX, its final NUL included). */
const PATH_MAX = 4096;
/** Paths from an image quoted in messages are cut to this many characters. */
const MESSAGE_PATH = 200;

/** A path from an image, cut short for a message (a hostile one can be 64 KiB long). */
function bounded(path: string): string {
  if (path.length <= MESSAGE_PATH) return path;
  return `${path.slice(0, MESSAGE_PATH / 2)}…${path.slice(1 - MESSAGE_PATH / 2)}`;
}
/**
 * Decoded bytes a restore holds at once, over the files it writes side by side: a hostile image of
 * many different 64 MiB chunks then costs a bounded amount of memory, not 8 × 64 MiB.
 */
const RESTORE_MEMORY = 64 * 1024 * 1024;
/** Files up to this size are gathered in memory and written with synchronous calls. */
const SMALL_FILE = 4 * 1024 * 1024;

export interface RestoreLimits {
  /** Largest file. */
  maxFileBytes: number;
  /** All files together. */
  maxTotalBytes: number;
  /** Files, folders and links together. */
  maxEntries: number;
  /** Folder nesting. */
  maxDepth: number;
  /** One decoded chunk or tree object. */
  maxObjectBytes: number;
}

export const DEFAULT_LIMITS: RestoreLimits = {
  maxFileBytes: 64 * 1024 ** 3,
  maxTotalBytes: 1024 ** 4,
  maxEntries: 10_000_000,
  maxDepth: 256,
  maxObjectBytes: 64 * 1024 * 1024,
};

export interface MaterializeOptions {
  limits?: Partial<RestoreLimits>;
  /**
   * Where this layer is seen (e.g. `/opt`). An absolute symlink target is allowed only inside it;
   * without a mount point, absolute targets are refused. Ignored for links restored `as-written`.
   */
  mountPoint?: string;
  /**
   * `contained` (the default, § 9.3 of the image format): a link must lead nowhere outside the
   * target (relative targets, and chains of them, resolved inside it; absolute ones inside the
   * mount point). `as-written`: the target is only ever seen through a session's own namespace,
   * where links resolve with the session's rights and nothing else follows them; any target is
   * then kept as the image has it (a home's `bin/python -> /usr/bin/python3`, an /etc's
   * `localtime -> /usr/share/zoneinfo/…`). The restore itself never follows a link either way.
   */
  links?: 'contained' | 'as-written';
  /**
   * How paths under the target are opened without following links, when others may be writing
   * into it (not `exclusive`): see `Folder`. The Linux driver supplies a faster one.
   */
  openBeneath?: OpenBeneath;
  /** Apply recorded owners (default: when running as root). */
  chown?: boolean;
  sessionUid?: number;
  sessionGid?: number;
  /** Files written at once. */
  concurrency?: number;
  /** Called before each entry is written; awaited. */
  onProgress?: (progress: { entries: number; bytes: number; path: string }) => void | Promise<void>;
  /** Creates an overlayfs whiteout (a 0/0 character device); the Linux driver supplies this. */
  writeWhiteout?: (absolutePath: string) => Promise<void>;
  /** Marks a folder overlayfs-opaque; the Linux driver supplies this. */
  setOpaque?: (absolutePath: string) => Promise<void>;
  /**
   * Restores only these entries of the root (a restore in parts: the target may then hold other
   * entries, but none of these unless `adopt` names it).
   */
  only?: (name: string) => boolean;
  /**
   * Root folders the caller made ahead, empty (to mount them before their content is written):
   * restored into, their recorded owner and mode applied at the end, instead of being made.
   */
  adopt?: readonly string[];
  /**
   * No one else can write into the target while it is restored (a fresh session folder no program
   * runs in yet): entries are reached by their plain paths. A restore into a folder someone else
   * may be changing leaves this off: every entry is then reached through a descriptor of its folder
   * opened beneath the target without following links (see `Folder`), so a folder swapped for a
   * link sends nothing elsewhere.
   */
  exclusive?: boolean;
  /**
   * The target is in memory (a tmpfs): small files are created with direct calls. Creating one
   * there takes microseconds, less than handing the call to the thread pool and back.
   */
  inMemory?: boolean;
}

/** A restore refused because the image is hostile or broken; nothing is written outside the target. */
export class RestoreError extends Error {
  override name = 'RestoreError';
}

export interface MaterializeResult {
  entries: number;
  bytes: number;
}

/**
 * Writes the tree `rootTree` into `target`, which must be missing or empty. No file ever holds
 * part of its content under its name: big files are streamed to a temporary name and renamed,
 * small ones are created once their content is whole and checked. Names, symlink targets and
 * sizes are checked before anything is written; folders are checked to still be the folders we
 * made (not swapped for symlinks) before anything is written into them.
 */
export async function materialize(
  reader: ObjectReader,
  rootTree: string,
  target: string,
  options: MaterializeOptions = {},
): Promise<MaterializeResult> {
  await mkdir(target, { recursive: true, mode: 0o700 });
  const real = await realpath(target);
  await checkTarget(real, target, options);
  const folder = options.exclusive === true ? undefined : Folder.open(real, options.openBeneath);
  const run = new Restore(reader, real, folder, options);
  try {
    try {
      const root = await run.loadTree(rootTree, '');
      await run.dir(root.entries, '', 0);
    } catch (error) {
      await run.settle(); // no write may still be running once we report
      throw error;
    }
    await run.finish();
  } finally {
    folder?.close();
  }
  return { entries: run.entries, bytes: run.bytes };
}

/** The target must be empty, or (a restore in parts) hold none of its entries but adopted folders. */
async function checkTarget(real: string, target: string, options: MaterializeOptions): Promise<void> {
  const present = await readdir(real);
  const only = options.only;
  if (!only) {
    if (present.length > 0) throw new RestoreError(`${bounded(target)} is not empty`);
    return;
  }
  for (const name of present) {
    if (!only(name)) continue;
    const stats = await lstat(join(real, name));
    const adoptable =
      options.adopt?.includes(name) === true &&
      stats.isDirectory() &&
      (await readdir(join(real, name))).length === 0;
    if (!adoptable) throw new RestoreError(`${join(target, name)} is already there`);
  }
}

class Restore {
  entries = 0;
  bytes = 0;
  private readonly limits: RestoreLimits;
  private readonly writes: ReturnType<typeof limiter>;
  /** Decoded bytes held at once by the files being written. */
  private readonly memory: ByteBudget;
  private readonly chown: boolean;
  private readonly pending: Promise<void>[] = [];
  private failure: Error | undefined;
  /** Relative symlinks made, checked once all exist: a chain of links must not lead out either. */
  private readonly links: { absolute: string; path: string }[] = [];
  /** Folders get their final mode and mtime last, once nothing more is written into them. */
  private readonly folders: { path: string; entry: DirEntry }[] = [];

  constructor(
    private readonly reader: ObjectReader,
    private readonly root: string,
    /** The target, when others may write into it: entries are then reached through it. */
    private readonly folder: Folder | undefined,
    private readonly options: MaterializeOptions,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.memory = new ByteBudget(RESTORE_MEMORY);
    this.writes = limiter(options.concurrency ?? 8);
    this.chown = options.chown ?? process.getuid?.() === 0;
  }

  async loadTree(hash: string, path: string) {
    const bytes = await this.reader.read(hash, this.limits.maxObjectBytes);
    try {
      return decodeTree(bytes, hash);
    } catch (error) {
      throw new RestoreError(`${bounded(path) || '/'}: ${(error as Error).message}`);
    }
  }

  async dir(entries: readonly Entry[], path: string, depth: number): Promise<void> {
    if (depth > this.limits.maxDepth)
      throw new RestoreError(`${bounded(path)}: nested deeper than ${this.limits.maxDepth} folders`);
    for (const entry of entries) {
      if (depth === 0 && this.options.only?.(entry.name) === false) continue;
      const childPath = path === '' ? entry.name : `${path}/${entry.name}`;
      if (this.failure !== undefined) throw this.failure;
      if (Buffer.byteLength(this.root) + 1 + Buffer.byteLength(childPath) >= PATH_MAX) {
        throw new RestoreError(`${bounded(childPath)}: its path is longer than the system allows`);
      }
      this.entries++;
      if (this.entries > this.limits.maxEntries)
        throw new RestoreError(`the image has more than ${this.limits.maxEntries} entries`);
      await this.options.onProgress?.({ entries: this.entries, bytes: this.bytes, path: childPath });
      switch (entry.type) {
        case 'dir': {
          const adopted = depth === 0 && this.options.adopt?.includes(entry.name) === true;
          await this.at(path, entry.name, async (absolute) => {
            await mkdir(absolute, { mode: 0o700 }).catch((error: unknown) => {
              if (!adopted || (error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
            });
            if (!(await lstat(absolute)).isDirectory())
              throw new RestoreError(`${bounded(childPath)}: is not the folder just made`);
            if (entry.opaque) await this.special('setOpaque', absolute, childPath);
          });
          this.folders.push({ path: childPath, entry });
          await this.dir((await this.loadTree(entry.tree, childPath)).entries, childPath, depth + 1);
          break;
        }
        case 'file':
          this.checkSize(entry, childPath);
          this.queue(this.writes(() => this.file(entry, path, childPath)));
          break;
        case 'symlink':
          await this.symlink(entry, path, childPath);
          break;
        case 'whiteout':
          await this.at(path, entry.name, async (absolute) => {
            await this.special('writeWhiteout', absolute, childPath);
            await this.linkAttributes(absolute, entry);
          });
          break;
      }
    }
  }

  /** Keeps a background write; its failure is raised by `finish` (and stops further work early). */
  private queue(write: Promise<void>): void {
    write.catch((error: unknown) => {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
    });
    this.pending.push(write);
  }

  async settle(): Promise<void> {
    await Promise.allSettled(this.pending);
  }

  async finish(): Promise<void> {
    await this.settle();
    if (this.failure !== undefined) throw this.failure;
    if (this.options.links !== 'as-written') await this.checkLinks();
    for (const { path, entry } of this.folders.reverse()) await this.folderAttributes(path, entry);
  }

  private checkSize(entry: FileEntry, path: string): void {
    if (entry.size > this.limits.maxFileBytes) {
      throw new RestoreError(
        `${bounded(path)}: ${entry.size} bytes is over the limit of ${this.limits.maxFileBytes} for a file`,
      );
    }
    this.bytes += entry.size;
    if (this.bytes > this.limits.maxTotalBytes) {
      throw new RestoreError(`the image holds more than ${this.limits.maxTotalBytes} bytes`);
    }
  }

  private async file(entry: FileEntry, parent: string, path: string): Promise<void> {
    if (entry.size <= SMALL_FILE) {
      // The whole file is held until it is written: its bytes count against the restore's budget.
      await this.memory.use(entry.size, async () => {
        const parts: Buffer[] = [];
        let written = 0;
        for (const chunk of entry.chunks) {
          const bytes = await this.chunk(chunk, entry, written, path);
          written += bytes.length;
          parts.push(bytes);
        }
        if (written !== entry.size)
          throw new RestoreError(`${bounded(path)}: its chunks hold ${written} bytes, not ${entry.size}`);
        await this.writeWhole(entry, parent, parts);
      });
      return;
    }
    const temporary = `.upc-restore-${randomBytes(6).toString('hex')}`;
    const handle = await this.at(parent, temporary, (absolute) => open(absolute, CREATE_FLAGS, 0o600));
    let written = 0;
    try {
      for (const chunk of entry.chunks) {
        const most = Math.min(this.limits.maxObjectBytes, entry.size - written);
        written += await this.memory.use(most, async () => {
          const bytes = await this.chunk(chunk, entry, written, path);
          await handle.write(bytes);
          return bytes.length;
        });
      }
      if (written !== entry.size)
        throw new RestoreError(`${bounded(path)}: its chunks hold ${written} bytes, not ${entry.size}`);
      // chown clears setuid and setgid, so it goes first.
      if (this.chown) await handle.chown(this.id(entry.owner, 'uid'), this.id(entry.group, 'gid'));
      await handle.chmod(entry.mode);
      const mtime = secondsOf(entry.mtime);
      await handle.utimes(mtime, mtime);
    } catch (error) {
      await handle.close();
      await this.at(parent, temporary, (absolute) => rm(absolute, { force: true }));
      throw error;
    }
    await handle.close();
    await this.at(parent, temporary, (from, sibling) => rename(from, sibling(entry.name)));
  }

  /**
   * One chunk of a file, `written` bytes of it already read: one that would expand past what is
   * left of the file is refused before it is decoded (a 2 KiB object may declare 64 MiB).
   */
  private async chunk(hash: string, entry: FileEntry, written: number, path: string): Promise<Buffer> {
    const left = entry.size - written;
    try {
      return await this.reader.read(hash, Math.min(this.limits.maxObjectBytes, left));
    } catch (error) {
      if (
        error instanceof ObjectFormatError &&
        error.kind === 'too_large' &&
        left < this.limits.maxObjectBytes
      )
        throw new RestoreError(`${bounded(path)}: its chunks hold more than its ${entry.size} bytes`);
      throw error;
    }
  }

  /**
   * Small files are the many. Their content is whole and checked before anything is written, so
   * each is created under its own name (no temporary name to rename: one directory update less,
   * and the target is the restore's alone until it ends); creating them runs in the thread pool,
   * several at once, and the cheap calls on the open descriptor are made directly. A failure
   * removes the file.
   */
  private async writeWhole(entry: FileEntry, parent: string, parts: readonly Buffer[]): Promise<void> {
    const fd = await this.at(parent, entry.name, (path) =>
      this.options.inMemory === true
        ? openSync(path, CREATE_FLAGS, 0o600)
        : openFd(path, CREATE_FLAGS, 0o600),
    );
    try {
      for (const part of parts) writeSync(fd, part);
      if (this.chown) fchownSync(fd, this.id(entry.owner, 'uid'), this.id(entry.group, 'gid'));
      fchmodSync(fd, entry.mode);
      const mtime = secondsOf(entry.mtime);
      futimesSync(fd, mtime, mtime);
    } catch (error) {
      closeSync(fd);
      await this.at(parent, entry.name, (path) => {
        rmSync(path, { force: true });
      });
      throw error;
    }
    closeSync(fd);
  }

  private async symlink(entry: SymlinkEntry, parent: string, path: string): Promise<void> {
    const { target } = entry;
    if (this.options.links === 'as-written') {
      if (target === '' || target.includes('\0'))
        throw new RestoreError(`${bounded(path)}: a symlink needs a target`);
    } else if (isAbsolute(target)) {
      const mount = this.options.mountPoint;
      const normal = posix.normalize(target);
      if (!mount || !(normal === mount || normal.startsWith(mount.endsWith('/') ? mount : `${mount}/`))) {
        throw new RestoreError(
          `${bounded(path)}: symlink to ${bounded(target)} points outside ${mount ?? 'the image'}`,
        );
      }
    } else if (posix.normalize(posix.join(parent, target)).split('/')[0] === '..') {
      throw new RestoreError(`${bounded(path)}: symlink to ${bounded(target)} points outside the image`);
    }
    await this.at(parent, entry.name, async (absolute) => {
      await symlink(target, absolute);
      await this.linkAttributes(absolute, entry);
    });
    if (!isAbsolute(target)) this.links.push({ absolute: join(this.root, path), path });
  }

  /**
   * Each link alone stays inside, but links can chain (`a -> b/..` where `b -> ../..`). With every
   * link in place, resolve each one for real; one that leads out of the target is removed and refused.
   */
  private async checkLinks(): Promise<void> {
    for (const { absolute, path } of this.links) {
      const resolved = await realpath(absolute).catch((error: unknown) => {
        const code = (error as NodeJS.ErrnoException).code;
        // dangling, through a file, or a loop: it leads nowhere, so nowhere outside either
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
        throw error;
      });
      if (resolved === undefined) continue;
      if (resolved !== this.root && !resolved.startsWith(`${this.root}/`)) {
        await rm(absolute, { force: true });
        throw new RestoreError(`${bounded(path)}: symlink leads outside the image through other links`);
      }
    }
  }

  private async special(hook: 'writeWhiteout' | 'setOpaque', absolute: string, path: string): Promise<void> {
    const apply = this.options[hook];
    if (!apply)
      throw new RestoreError(
        `${bounded(path)}: an overlay ${hook === 'setOpaque' ? 'opaque folder' : 'whiteout'} needs the driver to restore`,
      );
    await apply(absolute);
  }

  /** Owner and mtime of a link or whiteout, by calls that do not follow it. */
  private async linkAttributes(absolute: string, entry: Entry): Promise<void> {
    const mtime = secondsOf(entry.mtime);
    if (this.chown) await lchown(absolute, this.id(entry.owner, 'uid'), this.id(entry.group, 'gid'));
    await lutimes(absolute, mtime, mtime);
  }

  /** A folder's recorded owner, mode and mtime, set on the folder itself (opened, never followed). */
  private async folderAttributes(path: string, entry: DirEntry): Promise<void> {
    const parent = posix.dirname(path) === '.' ? '' : posix.dirname(path);
    const fd = await this.at(parent, entry.name, (absolute) => {
      try {
        return openSync(absolute, FOLDER_FLAGS);
      } catch (error) {
        throw new RestoreError(`${bounded(path)} is no longer a folder: ${(error as Error).message}`);
      }
    });
    try {
      // chown clears setuid and setgid, so it goes first.
      if (this.chown) fchownSync(fd, this.id(entry.owner, 'uid'), this.id(entry.group, 'gid'));
      fchmodSync(fd, entry.mode);
      const mtime = secondsOf(entry.mtime);
      futimesSync(fd, mtime, mtime);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Runs `work` on the path of `name` in the folder `parent` (relative to the target). In an
   * exclusive restore that is its plain path; otherwise `parent` is opened beneath the target
   * without following links, and the path names the entry through that descriptor, valid until
   * `work` ends (`sibling` names others of the same folder). A folder swapped for a link fails
   * here, and nothing is written elsewhere.
   */
  private async at<T>(
    parent: string,
    name: string,
    work: (path: string, sibling: (name: string) => string) => Promise<T> | T,
  ): Promise<T> {
    if (!this.folder) {
      const folder = parent === '' ? this.root : join(this.root, parent);
      return work(join(folder, name), (other) => join(folder, other));
    }
    let dir: Directory;
    try {
      dir = this.folder.directory(parent);
    } catch (error) {
      throw new RestoreError(
        `${bounded(parent)}: the folder was replaced while restoring (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
    }
    try {
      return await work(beneathEntry(dir, name), (other) => beneathEntry(dir, other));
    } finally {
      closeDirectory(dir);
    }
  }

  private id(owner: Owner, kind: 'uid' | 'gid'): number {
    if (owner === 'root') return 0;
    if (owner === 'user') {
      return (
        (kind === 'uid' ? this.options.sessionUid : this.options.sessionGid) ??
        (kind === 'uid' ? process.getuid?.() : process.getgid?.()) ??
        0
      );
    }
    return owner;
  }
}

function openFd(path: string, flags: number, mode: number): Promise<number> {
  return new Promise((resolve, reject) => {
    openCallback(path, flags, mode, (error, fd) => {
      if (error) reject(error);
      else resolve(fd);
    });
  });
}

/** Seconds for utimes: half a microsecond over, because libuv truncates the fraction it is given. */
function secondsOf(microseconds: number): number {
  return (microseconds + 0.5) / 1e6;
}
