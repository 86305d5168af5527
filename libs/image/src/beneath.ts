import {
  closeSync,
  constants,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmdirSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';

/**
 * Opens `path` (relative to the folder open as `root`, '/'-separated; '' is the folder itself)
 * with `flags`, following no symbolic link on the way or at the end and never leaving the folder;
 * otherwise it throws as `fs.openSync` does (code `ELOOP`, `ENOTDIR`, `ENOENT`, `EXDEV`, …). The
 * Linux driver supplies one made of openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); without it,
 * `Folder` walks the path one name at a time.
 */
export type OpenBeneath = (root: number, path: string, flags: number, mode: number) => number;

const O_PATH = 0o10000000; // Linux: a handle on the file itself, for paths through it
const FOLDER_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** Where the kernel names a descriptor's file; absent off Linux. */
const BY_DESCRIPTOR = process.platform === 'linux' && existsSync('/proc/self/fd');
/**
 * Where this process's descriptors are named: by its pid rather than `self`, so that a path handed
 * to a program we start (an overlay hook run as a command, say) names the same file.
 */
const DESCRIPTORS = `/proc/${String(process.pid)}/fd`;

export class BeneathError extends Error {
  override name = 'BeneathError';
}

/** The parts of a relative path, each a plain name (no `.`, `..` or empty part). */
function names(path: string): string[] {
  if (path === '') return [];
  const parts = path.split('/');
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..' || part.includes('\0')) {
      throw new BeneathError(`"${path}" is not a plain relative path`);
    }
  }
  return parts;
}

/**
 * One name at a time through the process's descriptors in /proc: each folder is opened from the descriptor of the one
 * before it with O_NOFOLLOW, so no name on the way can be a link, nor be swapped for one.
 */
const walkBeneath: OpenBeneath = (root, path, flags, mode) => {
  const parts = names(path);
  const last = parts.pop();
  let folder = root;
  try {
    for (const part of parts) {
      const next = openSync(`${DESCRIPTORS}/${String(folder)}/${part}`, FOLDER_FLAGS | O_PATH);
      if (folder !== root) closeSync(folder);
      folder = next;
    }
    return openSync(`${DESCRIPTORS}/${String(folder)}/${last ?? '.'}`, flags | constants.O_NOFOLLOW, mode);
  } finally {
    if (folder !== root) closeSync(folder);
  }
};

/**
 * A folder that someone else may be changing (a session's layers, read or written by the agent as
 * the PC's root): everything in it is reached from descriptors, never by following a name that
 * could have been swapped for a symbolic link. `entry(dir, name)` names an entry of a folder opened
 * with `directory`: system calls that do not follow their last name (lstat, readlink, mkdir,
 * symlink, rename, unlink, lchown, lutimes, mknod) are safe on it, and so is open with O_NOFOLLOW.
 *
 * Off Linux there is no such naming: entries are plain paths under the folder's own, which is safe
 * only where nobody else writes (there, no session program runs with other rights than the agent).
 */
export class Folder {
  private constructor(
    readonly path: string,
    readonly fd: number,
    private readonly openBeneath: OpenBeneath,
  ) {}

  /** Opens the folder at `path`, which must be a folder and not a link (its parents are trusted). */
  static open(path: string, openBeneath: OpenBeneath = walkBeneath): Folder {
    const fd = BY_DESCRIPTOR ? openSync(path, FOLDER_FLAGS) : -1;
    return new Folder(path, fd, openBeneath);
  }

  /** Opens `relative` beneath the folder (see `OpenBeneath`); O_NOFOLLOW is implied. */
  open(relative: string, flags: number, mode = 0): number {
    if (!BY_DESCRIPTOR) return openSync(this.join(relative), flags | constants.O_NOFOLLOW, mode);
    return this.openBeneath(this.fd, relative, flags | constants.O_NOFOLLOW, mode);
  }

  /** A folder beneath, open for `entry` and listing: close it with `closeDirectory`. */
  directory(relative: string): Directory {
    if (!BY_DESCRIPTOR) return { fd: -1, path: this.join(relative) };
    return { fd: this.open(relative, FOLDER_FLAGS), path: this.join(relative) };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
  }

  private join(relative: string): string {
    return relative === '' ? this.path : join(this.path, ...names(relative));
  }
}

/** A folder open beneath a `Folder` (its descriptor, -1 off Linux, and its path for messages). */
export interface Directory {
  readonly fd: number;
  readonly path: string;
}

/** The folder itself, by its descriptor (to list it). */
export function self(dir: Directory): string {
  return dir.fd < 0 ? dir.path : `${DESCRIPTORS}/${String(dir.fd)}`;
}

/** `name` in the folder, reached through its descriptor (see `Folder`); valid while it is open. */
export function entry(dir: Directory, name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new BeneathError(`"${name}" is not a plain name`);
  }
  return dir.fd < 0 ? join(dir.path, name) : `${DESCRIPTORS}/${String(dir.fd)}/${name}`;
}

export function closeDirectory(dir: Directory): void {
  if (dir.fd >= 0) closeSync(dir.fd);
}

/** Runs `work` on a folder beneath `folder`, closing it after (also when `work` fails). */
export async function inDirectory<T>(
  folder: Folder,
  relative: string,
  work: (dir: Directory) => Promise<T> | T,
): Promise<T> {
  const dir = folder.directory(relative);
  try {
    return await work(dir);
  } finally {
    closeDirectory(dir);
  }
}

/**
 * Removes `relative` beneath `folder` and everything in it, never following a link: each folder is
 * emptied through a descriptor of its own, and a link is removed, not what it points at. Nothing
 * there is not an error.
 */
export function removeBeneath(folder: Folder, relative: string): void {
  const parts = names(relative);
  const last = parts.pop();
  if (last === undefined) throw new BeneathError('removeBeneath removes an entry, not the folder itself');
  let parent: Directory;
  try {
    parent = folder.directory(parts.join('/'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    removeEntry(parent, last);
  } finally {
    closeDirectory(parent);
  }
}

function removeEntry(dir: Directory, name: string): void {
  const path = entry(dir, name);
  // Whoever else writes here may swap names or add entries meanwhile: looked at again, a few times.
  for (let attempt = 0; ; attempt++) {
    let stats;
    try {
      stats = lstatSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    if (!stats.isDirectory()) {
      try {
        unlinkSync(path);
        return;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (code === 'EISDIR' && attempt < 3) continue; // a folder again by now
        throw error;
      }
    }
    let fd = -1;
    if (dir.fd >= 0) {
      try {
        fd = openSync(path, FOLDER_FLAGS);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if ((code === 'ELOOP' || code === 'ENOTDIR') && attempt < 3) continue; // no longer a folder
        throw error;
      }
    }
    const child: Directory = { fd, path: join(dir.path, name) };
    try {
      for (const inner of readdirSync(self(child))) removeEntry(child, inner);
    } finally {
      closeDirectory(child);
    }
    try {
      rmdirSync(path);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if ((code !== 'ENOTEMPTY' && code !== 'ENOTDIR') || attempt === 3) throw error;
    }
  }
}

/**
 * Makes the folders of `relative` beneath `folder` that are missing (mode `mode`, owned by `owner`
 * when given), never following a link: an existing name that is not a folder is refused.
 */
export function mkdirBeneath(
  folder: Folder,
  relative: string,
  options: { mode: number; owner?: { uid: number; gid: number } },
): void {
  const parts = names(relative);
  for (let i = 1; i <= parts.length; i++) {
    const parent = folder.directory(parts.slice(0, i - 1).join('/'));
    try {
      const path = entry(parent, parts[i - 1] ?? '');
      try {
        mkdirSync(path, { mode: options.mode });
        if (options.owner) lchownSync(path, options.owner.uid, options.owner.gid);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        if (!lstatSync(path).isDirectory()) {
          throw new BeneathError(`${join(folder.path, ...parts.slice(0, i))} is not a folder`);
        }
      }
    } finally {
      closeDirectory(parent);
    }
  }
}
