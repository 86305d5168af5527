import type { Readable } from 'node:stream';

/** Inclusive on both ends, like an HTTP Range header. */
export interface ByteRange {
  start: number;
  end: number;
}

export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';

  constructor(readonly key: string) {
    super(`object not found: ${key}`);
  }
}

export class InvalidKeyError extends Error {
  override readonly name = 'InvalidKeyError';

  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`invalid object key ${JSON.stringify(key)}: ${reason}`);
  }
}

/**
 * Bytes to store that are not in memory (an upload waiting on disk): `stream` gives all `size` of
 * them each time it is called, so a backend may read them more than once (to retry a write).
 */
export interface ObjectSource {
  readonly size: number;
  stream(): Readable;
}

/** What `putIfAbsent` stores: bytes in memory, or a source it streams from. */
export type ObjectBody = Uint8Array | ObjectSource;

export const bodySize = (body: ObjectBody): number =>
  body instanceof Uint8Array ? body.byteLength : body.size;

export interface ObjectStore {
  /**
   * Stores body under key unless key already exists. Content-addressed callers make this idempotent:
   * calling again is safe. Resolves true if this call wrote it. The caller has already verified body's
   * SHA-256 (hex, sha256Hex); backends that can (S3 ChecksumSHA256) pass it on so the store verifies it
   * end to end. The write is durable when the promise resolves.
   */
  putIfAbsent(key: string, body: ObjectBody, sha256Hex: string): Promise<boolean>;
  /**
   * Whole object, or the inclusive byte range. Rejects with ObjectNotFoundError. A range beyond the end
   * is clamped to the object's end; a range starting at or after the end yields no bytes.
   */
  get(key: string, range?: ByteRange): Promise<Uint8Array>;
  /** Size in bytes, or undefined when absent. */
  size(key: string): Promise<number | undefined>;
  /** The subset of keys that exist. */
  hasMany(keys: readonly string[]): Promise<Set<string>>;
  /** Deletes keys; absent keys are ignored. */
  deleteMany(keys: readonly string[]): Promise<void>;
  /** Every key that starts with prefix, in any order. */
  listPrefix(prefix: string): AsyncIterable<string>;
  /** Resolves when the store is reachable and writable (used by GET /health). */
  ping(): Promise<void>;
}

export const MAX_KEY_LENGTH = 512;
// Filesystems cap a file name at 255 bytes; applying the cap everywhere keeps the backends interchangeable.
export const MAX_SEGMENT_LENGTH = 255;
const KEY_CHARS = /^[A-Za-z0-9._/-]*$/;

function invalidSegment(segment: string): boolean {
  return segment === '' || segment === '.' || segment === '..' || segment.length > MAX_SEGMENT_LENGTH;
}

/**
 * Keys are '/'-separated segments of [A-Za-z0-9._-] of at most 255 chars; no empty, '.' or '..'
 * segments; at most 512 chars in all.
 */
export function assertValidKey(key: string): void {
  if (key === '') throw new InvalidKeyError(key, 'empty');
  assertValidPrefix(key);
  if (key.split('/').some(invalidSegment)) {
    throw new InvalidKeyError(key, `empty, '.', '..' or over-long (>${MAX_SEGMENT_LENGTH}) segment`);
  }
}

/**
 * A prefix may end anywhere inside a key (even right after a '/'), but its complete segments follow the
 * key rules, so a listing can never start outside the store.
 */
export function assertValidPrefix(prefix: string): void {
  if (prefix.length > MAX_KEY_LENGTH) throw new InvalidKeyError(prefix, `longer than ${MAX_KEY_LENGTH}`);
  if (!KEY_CHARS.test(prefix)) throw new InvalidKeyError(prefix, 'only [A-Za-z0-9._-] and / are allowed');
  if (prefix.split('/').slice(0, -1).some(invalidSegment)) {
    throw new InvalidKeyError(prefix, `empty, '.', '..' or over-long (>${MAX_SEGMENT_LENGTH}) segment`);
  }
}

export function assertValidRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range ${start}-${end}`);
  }
}

/** Runs task over items with at most `limit` in flight, so large batches don't exhaust fds or sockets. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
