import { sha256Hex } from './hash.js';
import { MAX_OBJECT_SIZE } from './object.js';

/** Who owns an entry, relative to the session: the session's user, root, or another numeric id. */
export type Owner = 'user' | 'root' | number;

interface EntryBase {
  name: string;
  /** Permission bits and setuid/setgid/sticky: `mode & 0o7777`. */
  mode: number;
  /** Modification time in whole microseconds since the epoch (what Node's utimes can set exactly). */
  mtime: number;
  owner: Owner;
  group: Owner;
}
export interface FileEntry extends EntryBase {
  type: 'file';
  size: number;
  /** Chunk ids in order; their plaintexts concatenated are the file. */
  chunks: string[];
}
export interface DirEntry extends EntryBase {
  type: 'dir';
  tree: string;
  /** An overlayfs opaque directory: nothing of the lower layer shows through it. */
  opaque?: true;
}
export interface SymlinkEntry extends EntryBase {
  type: 'symlink';
  target: string;
}
/** An overlayfs whiteout: the host's file of this name is deleted in this layer. */
export interface WhiteoutEntry extends EntryBase {
  type: 'whiteout';
}
export type Entry = FileEntry | DirEntry | SymlinkEntry | WhiteoutEntry;

export interface Tree {
  entries: Entry[];
}

export class TreeFormatError extends Error {
  override name = 'TreeFormatError';
}

export const MAX_NAME_BYTES = 255;
export const MAX_TREE_ENTRIES = 1_000_000;
export const MAX_SYMLINK_TARGET_BYTES = 4095;
const HASH = /^[0-9a-f]{64}$/;

/** Compares names by their UTF-8 bytes, the order entries are stored in. */
export function compareNames(a: string, b: string): number {
  // UTF-16 order equals UTF-8 byte order unless a surrogate (a character past U+FFFF) is involved.
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * The canonical bytes of a tree: UTF-8 JSON with the keys of every entry in a fixed order, no
 * white space, entries sorted by name. Equal trees have equal bytes, hence equal ids.
 */
export function encodeTree(tree: Tree): Buffer {
  if (tree.entries.length > MAX_TREE_ENTRIES) {
    throw new TreeFormatError(
      `a folder of ${tree.entries.length} entries is over the limit of ${MAX_TREE_ENTRIES}`,
    );
  }
  const entries = [...tree.entries].sort((a, b) => compareNames(a.name, b.name));
  const parts = entries.map((entry) => {
    validateEntry(entry);
    const base = `"name":${JSON.stringify(entry.name)},"type":"${entry.type}","mode":${entry.mode},"mtime":${entry.mtime},"owner":${JSON.stringify(entry.owner)},"group":${JSON.stringify(entry.group)}`;
    switch (entry.type) {
      case 'file':
        return `{${base},"size":${entry.size},"chunks":[${entry.chunks.map((c) => `"${c}"`).join(',')}]}`;
      case 'dir':
        return `{${base},"tree":"${entry.tree}"${entry.opaque ? ',"opaque":true' : ''}}`;
      case 'symlink':
        return `{${base},"target":${JSON.stringify(entry.target)}}`;
      case 'whiteout':
        return `{${base}}`;
    }
  });
  entries.reduce<Entry | undefined>((previous, entry) => {
    if (previous?.name === entry.name) throw new TreeFormatError(`duplicate name "${entry.name}"`);
    return entry;
  }, undefined);
  const bytes = Buffer.from(`{"v":1,"entries":[${parts.join(',')}]}`, 'utf8');
  if (bytes.length > MAX_OBJECT_SIZE)
    throw new TreeFormatError(`a tree of ${bytes.length} bytes is over the object limit`);
  return bytes;
}

export function hashTree(tree: Tree): { hash: string; bytes: Buffer } {
  const bytes = encodeTree(tree);
  return { hash: sha256Hex(bytes), bytes };
}

/** Parses and validates a tree object; everything a hostile image could put in one is checked here. */
export function decodeTree(bytes: Uint8Array, hash?: string): Tree {
  const where = hash ? `tree ${hash}` : 'tree';
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new TreeFormatError(`${where} is not valid JSON`);
  }
  if (!isRecord(parsed) || parsed.v !== 1 || !Array.isArray(parsed.entries)) {
    throw new TreeFormatError(`${where} is not a version 1 tree`);
  }
  if (parsed.entries.length > MAX_TREE_ENTRIES) {
    throw new TreeFormatError(
      `${where} has ${parsed.entries.length} entries, over the limit of ${MAX_TREE_ENTRIES}`,
    );
  }
  const entries = parsed.entries.map((raw: unknown) => {
    if (!isRecord(raw)) throw new TreeFormatError(`${where} has an entry that is not an object`);
    const entry = raw as unknown as Entry;
    validateEntry(entry, where);
    return entry;
  });
  entries.reduce<Entry | undefined>((previous, entry) => {
    if (previous && compareNames(previous.name, entry.name) >= 0) {
      throw new TreeFormatError(`${where} is not sorted, or repeats the name "${entry.name}"`);
    }
    return entry;
  }, undefined);
  // Only the canonical form is a tree: anything else (spaces, other key orders, extra keys, other
  // number forms) would give the same content a second id, and other readers might not accept it.
  if (!encodeTree({ entries }).equals(Buffer.from(bytes)))
    throw new TreeFormatError(`${where} is not in canonical form`);
  return { entries };
}

/** Refuses names that could leave their directory, and fields of the wrong kind. */
export function validateName(name: unknown, where = 'tree'): asserts name is string {
  if (typeof name !== 'string' || name === '')
    throw new TreeFormatError(`${where} has an empty or missing name`);
  if (name === '.' || name === '..') throw new TreeFormatError(`${where} has the name "${name}"`);
  if (name.includes('/'))
    throw new TreeFormatError(`${where} has a name containing "/": ${JSON.stringify(name)}`);
  if (name.includes('\0'))
    throw new TreeFormatError(`${where} has a name containing NUL: ${JSON.stringify(name)}`);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new TreeFormatError(`${where} has a name longer than ${MAX_NAME_BYTES} bytes`);
  }
}

function validateEntry(entry: Entry, where = 'tree'): void {
  // Entries come from untrusted images: check every field, whatever the static type says.
  const raw = entry as unknown as Record<string, unknown>;
  validateName(entry.name, where);
  const at = `${where}, entry ${JSON.stringify(entry.name)}`;
  if (!Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0o7777)
    throw new TreeFormatError(`${at}: bad mode`);
  if (!Number.isSafeInteger(entry.mtime)) throw new TreeFormatError(`${at}: bad mtime`);
  for (const id of [entry.owner, entry.group]) {
    if (id !== 'user' && id !== 'root' && !(Number.isInteger(id) && id >= 0 && id < 2 ** 32)) {
      throw new TreeFormatError(`${at}: bad owner or group`);
    }
  }
  switch (entry.type) {
    case 'file':
      if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new TreeFormatError(`${at}: bad size`);
      if (!Array.isArray(entry.chunks) || !entry.chunks.every((c) => typeof c === 'string' && HASH.test(c))) {
        throw new TreeFormatError(`${at}: bad chunk list`);
      }
      if (entry.size > 0 && entry.chunks.length === 0)
        throw new TreeFormatError(`${at}: has a size but no chunks`);
      return;
    case 'dir':
      if (typeof entry.tree !== 'string' || !HASH.test(entry.tree))
        throw new TreeFormatError(`${at}: bad tree id`);
      if (raw.opaque !== undefined && raw.opaque !== true)
        throw new TreeFormatError(`${at}: bad opaque flag`);
      return;
    case 'symlink':
      if (typeof entry.target !== 'string' || entry.target === '' || entry.target.includes('\0')) {
        throw new TreeFormatError(`${at}: bad symlink target`);
      }
      if (Buffer.byteLength(entry.target) > MAX_SYMLINK_TARGET_BYTES)
        throw new TreeFormatError(`${at}: target too long`);
      return;
    case 'whiteout':
      return;
    default:
      throw new TreeFormatError(`${at}: unknown type ${JSON.stringify((entry as { type: unknown }).type)}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
