import { randomUUID } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { access, chmod, mkdir, open, opendir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import {
  assertValidKey,
  assertValidPrefix,
  assertValidRange,
  forEachLimited,
  ObjectNotFoundError,
  type ByteRange,
  type ObjectBody,
  type ObjectStore,
} from './object-store.js';

const IO_CONCURRENCY = 32;

// '~' can never appear in a key, so temp files can never collide with an object or be listed as one.
const TEMP_MARKER = '~';

/**
 * Objects are users' files: only the server's own user may read them, whatever its umask. Folders
 * are 0700 and files 0600 (a store written before had 0755 and 0644; see `restrictPermissions`).
 */
const FOLDER_MODE = 0o700;
const FILE_MODE = 0o600;
/** In the root once every folder and file there has been given the modes above. */
const RESTRICTED_MARKER = `${TEMP_MARKER}permissions-restricted`;

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

// ENOTDIR/EISDIR: the key's path runs through a file, or names a directory holding other keys.
function isAbsent(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * One file per key under root; the key's segments are the path's. A key cannot be both an object and
 * the directory of other keys (S3 allows that): such a write fails rather than silently shadowing.
 */
export class FsObjectStore implements ObjectStore {
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  async putIfAbsent(key: string, body: ObjectBody, _sha256Hex: string): Promise<boolean> {
    const target = this.pathOf(key);
    if (await this.isFile(target)) return false;
    const directory = path.dirname(target);
    await this.makeDirectoryDurably(directory);
    // Not derived from the key's name, which may already be as long as a file name can be.
    const temp = path.join(directory, `${TEMP_MARKER}${randomUUID()}`);
    try {
      const handle = await open(temp, 'wx', FILE_MODE);
      try {
        if (body instanceof Uint8Array) await handle.writeFile(body);
        else for await (const chunk of body.stream()) await handle.write(chunk as Buffer);
        await handle.sync();
      } finally {
        await handle.close();
      }
      // Concurrent writers of the same content-addressed key may both rename; the bytes are identical.
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await fsyncDirectory(directory);
    return true;
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const file = this.pathOf(key);
    if (range) assertValidRange(range);
    const handle = await open(file, 'r').catch((error: unknown) => {
      throw isAbsent(error) ? new ObjectNotFoundError(key) : error;
    });
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new ObjectNotFoundError(key);
      const { size } = stats;
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? size - 1, size - 1);
      const bytes = new Uint8Array(Math.max(0, end - start + 1));
      let filled = 0;
      while (filled < bytes.length) {
        const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, start + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return bytes.subarray(0, filled);
    } catch (error) {
      throw isAbsent(error) ? new ObjectNotFoundError(key) : error;
    } finally {
      await handle.close();
    }
  }

  async size(key: string): Promise<number | undefined> {
    const stats = await stat(this.pathOf(key)).catch((error: unknown) => {
      if (isAbsent(error)) return undefined;
      throw error;
    });
    return stats?.isFile() ? stats.size : undefined;
  }

  async hasMany(keys: readonly string[]): Promise<Set<string>> {
    const files = keys.map((key) => this.pathOf(key));
    const present = new Set<string>();
    await forEachLimited([...keys.keys()], IO_CONCURRENCY, async (index) => {
      if (await this.isFile(files[index] as string)) present.add(keys[index] as string);
    });
    return present;
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const files = keys.map((key) => this.pathOf(key));
    await forEachLimited(files, IO_CONCURRENCY, async (file) => {
      await unlink(file).catch((error: unknown) => {
        if (!isAbsent(error)) throw error;
      });
    });
  }

  async *listPrefix(prefix: string): AsyncIterable<string> {
    assertValidPrefix(prefix);
    const cut = prefix.lastIndexOf('/') + 1;
    yield* this.walk(prefix.slice(0, cut), prefix.slice(cut));
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: FOLDER_MODE });
    await access(this.root, constants.R_OK | constants.W_OK);
  }

  /**
   * Makes the root (creating it when missing) 0700, then, once for a store that an older server
   * wrote, every folder in it 0700 and every file 0600. The root's mode alone already keeps other
   * local users out; the walk is so that a copied or moved store stays private. Called at start.
   */
  async restrictPermissions(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: FOLDER_MODE });
    await chmod(this.root, FOLDER_MODE);
    const marker = path.join(this.root, RESTRICTED_MARKER);
    if (await this.isFile(marker)) return;
    await this.restrictBelow(this.root);
    await writeFile(marker, '', { mode: FILE_MODE });
  }

  /** Every folder and file below `root`, a level at a time, a bounded number of folders at once. */
  private async restrictBelow(root: string): Promise<void> {
    for (let level = [root]; level.length > 0;) {
      const next: string[] = [];
      await forEachLimited(level, IO_CONCURRENCY, async (directory) => {
        for await (const entry of await opendir(directory)) {
          const at = path.join(directory, entry.name);
          if (entry.isDirectory()) {
            await chmod(at, FOLDER_MODE);
            next.push(at);
          } else if (entry.isFile()) {
            await chmod(at, FILE_MODE);
          }
        }
      });
      level = next;
    }
  }

  /** Yields keys under the directory keyPrefix (empty or ending in '/') whose next segment starts with namePrefix. */
  private async *walk(keyPrefix: string, namePrefix: string): AsyncGenerator<string> {
    let entries: Dirent[];
    try {
      entries = [];
      for await (const entry of await opendir(path.join(this.root, keyPrefix))) entries.push(entry);
    } catch (error) {
      if (isAbsent(error)) return;
      throw error;
    }
    for (const entry of entries) {
      if (!entry.name.startsWith(namePrefix) || entry.name.includes(TEMP_MARKER)) continue;
      if (entry.isDirectory()) yield* this.walk(`${keyPrefix}${entry.name}/`, '');
      else if (entry.isFile()) yield `${keyPrefix}${entry.name}`;
    }
  }

  private pathOf(key: string): string {
    assertValidKey(key);
    const file = path.join(this.root, ...key.split('/'));
    // Validated keys cannot escape; this guards against a future change to the key rules.
    const relative = path.relative(this.root, file);
    if (
      relative === '' ||
      relative === '..' ||
      relative.startsWith(`..${path.sep}`) ||
      path.isAbsolute(relative)
    ) {
      throw new Error(`key escapes store root: ${key}`);
    }
    return file;
  }

  private async isFile(file: string): Promise<boolean> {
    const stats = await stat(file).catch((error: unknown) => {
      if (isAbsent(error)) return undefined;
      throw error;
    });
    return stats?.isFile() ?? false;
  }

  /** mkdir -p, then fsyncs the parent of every directory it created so the new entries survive a crash. */
  private async makeDirectoryDurably(directory: string): Promise<void> {
    const firstCreated = await mkdir(directory, { recursive: true, mode: FOLDER_MODE });
    if (firstCreated === undefined) return;
    for (let created = directory; ; created = path.dirname(created)) {
      await fsyncDirectory(path.dirname(created));
      if (created === firstCreated) break;
    }
  }
}
