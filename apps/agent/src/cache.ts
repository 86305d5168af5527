import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { ByteBudget, type LocalRepository } from '@upc/image';
import { join } from 'node:path';
import { pool } from './objects.js';
import type { AgentHome } from './state.js';

/**
 * The object cache a device may keep between sessions, for a fast re-login. Each pack or object
 * file of the session's store is kept sealed with AES-256-GCM under the device's cache key, which
 * the server hands only to that user's session, so other users of the PC (and anyone with the
 * disk) cannot read it. A kept file is named by a keyed hash of the store file's name (HMAC-SHA-256
 * under a key derived from the cache key): a name says nothing to whoever lacks the key, not even
 * whether the user had a file whose hash is known, yet a file already kept is known by its name
 * and not written again. The store file's name is sealed inside, ahead of its bytes.
 *
 * Caches of earlier agents named files `packs|data/xx/<id>.enc`, which gave the ids away: they are
 * still read, sealed again under their keyed name and removed.
 */
const NONCE = 12;
const TAG = 16;
/** Keys the names of kept files; a label of its own, so it is never the key that seals them. */
const NAME_KEY_LABEL = 'upc device cache: file names v1';
/** A kept file: the keyed hash of its store file's name. */
const KEPT_FILE = /^[0-9a-f]{64}\.enc$/;
/** A kept file of an earlier agent, named by the store file itself. */
const LEGACY_FILE = /^(packs|data)\/[0-9a-f]{2}\/[0-9a-f]{64}\.enc$/;
const STORE_FILE = /^(packs|data)\/[0-9a-f]{2}\/[0-9a-f]{64}$/;
/**
 * Decrypted store files a login keeps in memory for its restore; past this, they are written to
 * the session's store at once, so a big cache does not become as big a login.
 */
export const HELD_BYTES = 256 * 1024 * 1024;
/** Store files read and sealed (or opened) at once hold at most about this many bytes. */
const IN_FLIGHT_BYTES = 64 * 1024 * 1024;

interface CacheKeys {
  seal: Buffer;
  names: Buffer;
}

function keysOf(key: string): CacheKeys {
  const seal = Buffer.from(key, 'base64');
  if (seal.length !== 32) throw new Error('the device cache key is not 32 bytes');
  const names = Buffer.from(hkdfSync('sha256', seal, Buffer.alloc(0), NAME_KEY_LABEL, 32));
  return { seal, names };
}

/** The name a store file (`packs/xx/<id>`, `data/xx/<id>`) is kept under. */
export function keptName(key: string, storeFile: string): string {
  return nameOf(keysOf(key), storeFile);
}

function nameOf(keys: CacheKeys, storeFile: string): string {
  return `${createHmac('sha256', keys.names).update(storeFile).digest('hex')}.enc`;
}

/** The store files of the session's store, as `packs/xx/<id>` and `data/xx/<id>`. */
async function listStoreFiles(dir: string): Promise<string[]> {
  return (await listNested(dir)).filter((file) => STORE_FILE.test(file));
}

/** Files one and two folders down (`packs/xx/…`, `data/xx/…`). */
async function listNested(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const top of ['packs', 'data']) {
    const prefixes = await readdir(join(dir, top)).catch(() => []);
    for (const prefix of prefixes) {
      for (const name of await readdir(join(dir, top, prefix)).catch(() => [])) {
        files.push(`${top}/${prefix}/${name}`);
      }
    }
  }
  return files;
}

/** The kept files of a cache: by keyed name, and those of earlier agents. */
async function listCache(dir: string): Promise<{ kept: string[]; legacy: string[] }> {
  const names = await readdir(dir).catch(() => []);
  return {
    kept: names.filter((name) => KEPT_FILE.test(name)),
    legacy: (await listNested(dir)).filter((file) => LEGACY_FILE.test(file)),
  };
}

/**
 * The version the cache was last saved at (`head.enc`, sealed like the objects): the resident
 * service restores it while the server checks a sign-in, and keeps the result only if the server
 * then names the same version (see head-start.ts).
 */
export interface CachedHead {
  workspaceId: string;
  versionId: string | null;
  root: string;
  /** The bytes of the version's files: where its layers go depends on it (layers.ts). */
  fileBytes: number;
}

const HEAD_FILE = 'head.enc';

function seal(secret: Buffer, plain: Buffer): Buffer {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', secret, nonce);
  return Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/** The plaintext of a sealed file, or undefined when it does not open with this key (or is damaged). */
function unseal(secret: Buffer, body: Buffer): Buffer | undefined {
  if (body.length < NONCE + TAG) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', secret, body.subarray(0, NONCE));
    decipher.setAuthTag(body.subarray(body.length - TAG));
    const plain = decipher.update(body.subarray(NONCE, body.length - TAG));
    decipher.final(); // checks the tag; GCM has no bytes left to give
    return plain;
  } catch {
    return undefined;
  }
}

/** A store file sealed as kept: its name's length (one byte), its name, its bytes. */
function sealStoreFile(keys: CacheKeys, storeFile: string, bytes: Buffer): Buffer {
  const name = Buffer.from(storeFile, 'latin1');
  return seal(keys.seal, Buffer.concat([Buffer.of(name.length), name, bytes]));
}

/** The store file a kept file holds, if it opens with these keys and is the one its name says. */
function openStoreFile(
  keys: CacheKeys,
  keptAs: string,
  body: Buffer,
): { storeFile: string; bytes: Buffer } | undefined {
  const plain = unseal(keys.seal, body);
  if (!plain || plain.length < 1) return undefined;
  const end = 1 + (plain[0] ?? 0);
  const storeFile = plain.toString('latin1', 1, end);
  if (!STORE_FILE.test(storeFile) || nameOf(keys, storeFile) !== keptAs) return undefined;
  return { storeFile, bytes: plain.subarray(end) };
}

/** The version the user's cache was saved at, if it names one this key opens. */
export async function readCachedHead(
  home: AgentHome,
  userId: string,
  key: string,
): Promise<CachedHead | undefined> {
  const body = await readFile(join(home.cacheDir(userId), HEAD_FILE)).catch(() => undefined);
  const plain = body && unseal(keysOf(key).seal, body);
  if (!plain) return undefined;
  try {
    const head = JSON.parse(plain.toString('utf8')) as Partial<CachedHead>;
    const { workspaceId, root, fileBytes } = head;
    if (typeof workspaceId !== 'string' || typeof root !== 'string' || root === '') return undefined;
    if (typeof fileBytes !== 'number' || !Number.isSafeInteger(fileBytes) || fileBytes < 0) return undefined;
    const versionId = head.versionId ?? null;
    if (versionId !== null && typeof versionId !== 'string') return undefined;
    return { workspaceId, versionId, root, fileBytes };
  } catch {
    return undefined;
  }
}

/**
 * Encrypts the session's object store into the user's cache, dropping what it no longer holds
 * (files of earlier agents included), and records `head`, the version it ends at.
 */
export async function saveCache(
  home: AgentHome,
  userId: string,
  key: string,
  head?: CachedHead,
): Promise<number> {
  const keys = keysOf(key);
  const target = home.cacheDir(userId);
  await mkdir(target, { recursive: true, mode: 0o700 });
  const wanted = new Map((await listStoreFiles(home.objectsDir)).map((file) => [nameOf(keys, file), file]));
  const { kept, legacy } = await listCache(target);
  const present = new Set(kept);
  const missing = [...wanted].filter(([name]) => !present.has(name));
  const inFlight = new ByteBudget(IN_FLIGHT_BYTES);
  let written = 0;
  await pool(missing, 4, async ([name, file]) => {
    const source = join(home.objectsDir, file);
    await inFlight.use(2 * (await stat(source)).size, async () => {
      await writeKept(target, name, sealStoreFile(keys, file, await readFile(source)));
    });
    written++;
  });
  for (const name of kept) if (!wanted.has(name)) await rm(join(target, name), { force: true });
  await removeLegacy(target, legacy);
  for (const name of await readdir(target)) {
    if (name.endsWith('.tmp')) await rm(join(target, name), { force: true }); // a save cut short
  }
  if (head) {
    await writeKept(target, HEAD_FILE, seal(keys.seal, Buffer.from(JSON.stringify(head))));
  } else {
    await rm(join(target, HEAD_FILE), { force: true });
  }
  return written;
}

/** Writes a kept file whole under its name (through a temporary one), readable by root alone. */
async function writeKept(target: string, name: string, body: Buffer): Promise<void> {
  const temporary = join(target, `${name}.${randomBytes(4).toString('hex')}.tmp`);
  await writeFile(temporary, body, { mode: 0o600 });
  await rename(temporary, join(target, name));
}

/** Removes kept files of earlier agents, and their folders once empty. */
async function removeLegacy(target: string, legacy: readonly string[]): Promise<void> {
  for (const file of legacy) await rm(join(target, file), { force: true });
  for (const top of ['packs', 'data']) {
    const folder = join(target, top);
    for (const prefix of await readdir(folder).catch(() => [])) {
      await rmdir(join(folder, prefix)).catch(() => undefined); // only if empty
    }
    await rmdir(folder).catch(() => undefined);
  }
}

/**
 * Decrypts the user's kept cache into the session's object store. Up to HELD_BYTES of it stays in
 * memory: the store reads those objects from there at once and writes the files later
 * (`LocalRepository.writeHeld`), off the login's path; the rest is written to the store now. A
 * file that does not decrypt (another key, damage) or does not hold together is dropped: its
 * objects are fetched from the server instead. Files of an earlier agent are sealed again under
 * their keyed names.
 */
export async function loadCache(
  home: AgentHome,
  userId: string,
  key: string,
  repo: LocalRepository,
  options: { heldBytes?: number } = {},
): Promise<number> {
  const heldBytes = options.heldBytes ?? HELD_BYTES;
  const keys = keysOf(key);
  const source = home.cacheDir(userId);
  const { kept, legacy } = await listCache(source);
  const inFlight = new ByteBudget(IN_FLIGHT_BYTES);
  let held = 0;
  let loaded = 0;
  const take = async (storeFile: string, bytes: Buffer): Promise<void> => {
    if (held + bytes.length <= heldBytes) {
      held += bytes.length;
      repo.hold(storeFile, bytes);
    } else {
      await repo.keep(storeFile, bytes);
    }
  };
  const load = async (keptAs: string, open: (body: Buffer) => Promise<boolean>): Promise<void> => {
    const path = join(source, keptAs);
    const size = await stat(path).then(
      (stats) => stats.size,
      () => 0,
    );
    const opened = await inFlight.use(2 * size, async () => {
      const body = await readFile(path).catch(() => undefined);
      return body !== undefined && (await open(body).catch(() => false));
    });
    if (opened) loaded++;
    else await rm(path, { force: true });
  };
  await pool(kept, 4, (name) =>
    load(name, async (body) => {
      const file = openStoreFile(keys, name, body);
      if (!file) return false;
      await take(file.storeFile, file.bytes);
      return true;
    }),
  );
  await pool(legacy, 4, (file) =>
    load(file, async (body) => {
      const plain = unseal(keys.seal, body);
      if (!plain) return false;
      const storeFile = file.slice(0, -'.enc'.length);
      await take(storeFile, plain);
      // Kept under its keyed name; if that fails, the old file stays and is read again next time.
      await writeKept(source, nameOf(keys, storeFile), sealStoreFile(keys, storeFile, plain))
        .then(() => rm(join(source, file), { force: true }))
        .catch(() => undefined);
      return true;
    }),
  );
  if (legacy.length > 0) await removeLegacy(source, []);
  const head = await readFile(join(source, HEAD_FILE)).catch(() => undefined);
  if (head && !unseal(keys.seal, head)) await rm(join(source, HEAD_FILE), { force: true });
  return loaded;
}
