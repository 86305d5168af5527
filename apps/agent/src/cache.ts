import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { LocalRepository } from '@upc/image';
import { join } from 'node:path';
import { pool } from './objects.js';
import type { AgentHome } from './state.js';

/**
 * The object cache a device may keep between sessions, for a fast re-login. Each pack or object
 * file of the session's store is kept as `<name>.enc`: AES-256-GCM under the device's cache key,
 * which the server hands only to that user's session, so other users of the PC (and anyone with
 * the disk) cannot read it. Files are content-named, so a file already kept is not written again.
 */
const NONCE = 12;
const TAG = 16;

function decodeKey(key: string): Buffer {
  const bytes = Buffer.from(key, 'base64');
  if (bytes.length !== 32) throw new Error('the device cache key is not 32 bytes');
  return bytes;
}

async function listStoreFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const top of ['packs', 'data']) {
    let prefixes: string[];
    try {
      prefixes = await readdir(join(dir, top));
    } catch {
      continue;
    }
    for (const prefix of prefixes) {
      for (const name of await readdir(join(dir, top, prefix))) {
        if (/^[0-9a-f]{64}(\.enc)?$/.test(name)) files.push(join(top, prefix, name));
      }
    }
  }
  return files;
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

/** The version the user's cache was saved at, if it names one this key opens. */
export async function readCachedHead(
  home: AgentHome,
  userId: string,
  key: string,
): Promise<CachedHead | undefined> {
  const body = await readFile(join(home.cacheDir(userId), HEAD_FILE)).catch(() => undefined);
  const plain = body && unseal(decodeKey(key), body);
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
 * Encrypts the session's object store into the user's cache, dropping what it no longer holds,
 * and records `head`, the version it ends at.
 */
export async function saveCache(
  home: AgentHome,
  userId: string,
  key: string,
  head?: CachedHead,
): Promise<number> {
  const secret = decodeKey(key);
  const target = home.cacheDir(userId);
  const wanted = new Set((await listStoreFiles(home.objectsDir)).map((file) => `${file}.enc`));
  const present = new Set(await listStoreFiles(target));
  let written = 0;
  const missing = [...wanted].filter((file) => !present.has(file));
  await pool(missing, 4, async (file) => {
    const body = seal(secret, await readFile(join(home.objectsDir, file.slice(0, -4))));
    await mkdir(join(target, file, '..'), { recursive: true, mode: 0o700 });
    await writeFile(join(target, file), body, { mode: 0o600 });
    written++;
  });
  for (const file of present) if (!wanted.has(file)) await rm(join(target, file), { force: true });
  if (head) {
    await mkdir(target, { recursive: true, mode: 0o700 });
    await writeFile(join(target, `${HEAD_FILE}.tmp`), seal(secret, Buffer.from(JSON.stringify(head))), {
      mode: 0o600,
    });
    await rename(join(target, `${HEAD_FILE}.tmp`), join(target, HEAD_FILE));
  } else {
    await rm(join(target, HEAD_FILE), { force: true });
  }
  return written;
}

/**
 * Decrypts the user's kept cache into the session's object store, in memory: the store reads its
 * objects from there at once and writes the files later (`LocalRepository.writeHeld`), off the
 * login's path. A file that does not decrypt (another key, damage) or does not hold together is
 * dropped: its objects are fetched from the server instead.
 */
export async function loadCache(
  home: AgentHome,
  userId: string,
  key: string,
  repo: LocalRepository,
): Promise<number> {
  const secret = decodeKey(key);
  const source = home.cacheDir(userId);
  let loaded = 0;
  await pool(await listStoreFiles(source), 4, async (file) => {
    const plain = unseal(secret, await readFile(join(source, file)));
    try {
      if (!plain) throw new Error('it does not open with this key');
      repo.hold(file.slice(0, -'.enc'.length), plain);
    } catch {
      await rm(join(source, file), { force: true });
      return;
    }
    loaded++;
  });
  const head = await readFile(join(source, HEAD_FILE)).catch(() => undefined);
  if (head && !unseal(secret, head)) await rm(join(source, HEAD_FILE), { force: true });
  return loaded;
}
