import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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

/** Encrypts the session's object store into the user's cache, dropping what it no longer holds. */
export async function saveCache(home: AgentHome, userId: string, key: string): Promise<number> {
  const secret = decodeKey(key);
  const target = home.cacheDir(userId);
  const wanted = new Set((await listStoreFiles(home.objectsDir)).map((file) => `${file}.enc`));
  const present = new Set(await listStoreFiles(target));
  let written = 0;
  const missing = [...wanted].filter((file) => !present.has(file));
  await pool(missing, 4, async (file) => {
    const plain = await readFile(join(home.objectsDir, file.slice(0, -4)));
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', secret, nonce);
    const body = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    await mkdir(join(target, file, '..'), { recursive: true, mode: 0o700 });
    await writeFile(join(target, file), body, { mode: 0o600 });
    written++;
  });
  for (const file of present) if (!wanted.has(file)) await rm(join(target, file), { force: true });
  return written;
}

/**
 * Decrypts the user's kept cache into the session's object store. A file that does not decrypt
 * (another key, damage) is dropped: its objects are fetched from the server instead.
 */
export async function loadCache(home: AgentHome, userId: string, key: string): Promise<number> {
  const secret = decodeKey(key);
  const source = home.cacheDir(userId);
  let loaded = 0;
  await pool(await listStoreFiles(source), 4, async (file) => {
    const body = await readFile(join(source, file));
    let plain: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', secret, body.subarray(0, NONCE));
      decipher.setAuthTag(body.subarray(body.length - TAG));
      plain = decipher.update(body.subarray(NONCE, body.length - TAG));
      decipher.final(); // checks the tag; GCM has no bytes left to give
    } catch {
      await rm(join(source, file), { force: true });
      return;
    }
    const path = join(home.objectsDir, file.slice(0, -4));
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    await writeFile(`${path}.tmp`, plain, { mode: 0o600 }); // the store ignores *.tmp names
    await rename(`${path}.tmp`, path);
    loaded++;
  });
  return loaded;
}
