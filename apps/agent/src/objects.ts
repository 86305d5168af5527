import {
  declaredSize,
  decodeObject,
  decodeTree,
  LARGE_OBJECT,
  limiter,
  type LocalRepository,
  type ObjectReader,
  type Tree,
} from '@upc/image';
import type { UpcClient } from '@upc/protocol';
import { requireSaneExpansion } from './expansion.js';
import { Progress } from './progress.js';
import { withRetry } from './retry.js';

/**
 * The objects `newRoot` reaches that `oldRoot` does not, found by walking both trees side by side
 * and skipping every subtree whose id did not change: the cost follows the change, not the
 * workspace. Trees `oldRoot` reaches that cannot be read count as absent (the server is asked).
 */
export async function newObjects(reader: ObjectReader, oldRoot: string | undefined, newRoot: string) {
  const found = new Set<string>();
  const readTree = async (hash: string | undefined): Promise<Tree | undefined> => {
    if (hash === undefined) return undefined;
    try {
      return decodeTree(await reader.read(hash), hash);
    } catch {
      return undefined;
    }
  };
  const walk = async (before: string | undefined, after: string): Promise<void> => {
    if (before === after) return;
    found.add(after);
    const tree = decodeTree(await reader.read(after), after);
    const old = new Map((await readTree(before))?.entries.map((e) => [e.name, e]));
    for (const entry of tree.entries) {
      const previous = old.get(entry.name);
      if (entry.type === 'dir') {
        await walk(previous?.type === 'dir' ? previous.tree : undefined, entry.tree);
      } else if (entry.type === 'file') {
        const kept = previous?.type === 'file' ? new Set(previous.chunks) : undefined;
        for (const chunk of entry.chunks) if (!kept?.has(chunk)) found.add(chunk);
      }
    }
  };
  await walk(oldRoot, newRoot);
  return [...found];
}

/** Fetches objects by id; ids it cannot find are absent from the answer. */
export type Download = (hashes: string[]) => Promise<Map<string, Uint8Array>>;

/** One batch download holds at most this many objects, and about this many bytes. */
const BATCH_OBJECTS = 2000;
const BATCH_BYTES = 16 * 1024 * 1024;

export interface FetchOptions {
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
  /**
   * Called once the version's trees are in, with the bytes its files come to, before any chunk is
   * fetched: throws to stop a version that would not fit where it is going (expansion.ts).
   */
  checkFileBytes?: (fileBytes: number) => void;
  /**
   * Whether a version whose files come to far more than what it stores is refused (the default):
   * a crafted image names one tiny chunk that expands to 64 MiB, thousands of times.
   */
  refuseAmplification?: boolean;
}

export interface FetchResult {
  objects: number;
  bytes: number;
  /** The bytes the version's files come to, as its trees declare them. */
  fileBytes: number;
  /** The stored bytes of every object the version names, fetched or already here. */
  storedBytes: number;
}

/**
 * Fetches the version `root` into `repo`: trees level by level, then every chunk the repository
 * lacks, in batches (a few at once) so that many small files cost a few requests, not one each.
 * Each object is checked against its id before it is stored, without keeping its plaintext; large
 * ones one at a time. One that is missing fails the fetch.
 */
export async function fetchVersion(
  repo: LocalRepository,
  root: string,
  download: Download,
  options: FetchOptions = {},
): Promise<FetchResult> {
  let fetched = 0;
  let fileBytes = 0;
  let fetchedBytes = 0;
  let storedBytes = 0;
  const verifyLarge = limiter(1);
  const verify = async (hash: string, stored: Uint8Array): Promise<void> => {
    // Throws unless the plaintext hashes to `hash`; the plaintext itself is dropped at once.
    if ((declaredSize(stored) ?? 0) <= LARGE_OBJECT) await decodeObject(hash, stored);
    else await verifyLarge(() => decodeObject(hash, stored));
  };
  const fetchBatch = async (hashes: string[]): Promise<void> => {
    const answer = await download(hashes);
    for (const hash of hashes) {
      const stored = answer.get(hash);
      if (!stored) throw new Error(`the server does not have object ${hash} of this version`);
      await verify(hash, stored);
      await repo.writeStored(hash, stored);
      fetched++;
      fetchedBytes += stored.length;
    }
  };
  const concurrency = options.concurrency ?? 3;
  const chunks = new Map<string, number>();
  let level = [root];
  const seen = new Set<string>();
  while (level.length > 0) {
    const missing = level.filter((hash) => !repo.has(hash));
    await pool(
      batches(missing, () => 0),
      concurrency,
      fetchBatch,
    );
    const next: string[] = [];
    for (const hash of level) {
      storedBytes += repo.storedSize(hash) ?? 0;
      for (const entry of decodeTree(await repo.read(hash), hash).entries) {
        if (entry.type === 'dir' && !seen.has(entry.tree)) {
          seen.add(entry.tree);
          next.push(entry.tree);
        } else if (entry.type === 'file') {
          fileBytes += entry.size;
          // Sizes are per file; spread evenly over its chunks, they are good enough for progress.
          const share = entry.chunks.length > 0 ? entry.size / entry.chunks.length : 0;
          for (const chunk of entry.chunks) chunks.set(chunk, share);
        }
      }
    }
    level = next;
  }
  options.checkFileBytes?.(fileBytes);
  const wanted = [...chunks.keys()].filter((hash) => !repo.has(hash));
  const sizeOf = (hash: string) => chunks.get(hash) ?? 0;
  const total = wanted.reduce((sum, hash) => sum + sizeOf(hash), 0);
  let done = 0;
  await pool(batches(wanted, sizeOf), concurrency, async (batch) => {
    await fetchBatch(batch);
    for (const hash of batch) done += sizeOf(hash);
    options.onProgress?.(done, total);
  });
  await repo.flush();
  for (const chunk of chunks.keys()) storedBytes += repo.storedSize(chunk) ?? 0;
  if (options.refuseAmplification !== false) requireSaneExpansion(fileBytes, storedBytes);
  return { objects: fetched, bytes: fetchedBytes, fileBytes, storedBytes };
}

/** Splits `hashes` into download batches by count and (estimated) size. */
function batches(hashes: readonly string[], sizeOf: (hash: string) => number): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const hash of hashes) {
    if (current.length > 0 && (current.length >= BATCH_OBJECTS || bytes + sizeOf(hash) > BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(hash);
    bytes += sizeOf(hash);
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Fetches a workspace's version from the server into `repo`, with a progress bar unless `quiet`. */
export async function fetchFromServer(
  client: UpcClient,
  workspaceId: string,
  repo: LocalRepository,
  root: string,
  quiet: boolean,
  options: Pick<FetchOptions, 'checkFileBytes' | 'refuseAmplification'> = {},
): Promise<FetchResult> {
  const progress = new Progress('fetching', 'bytes', process.stderr, quiet);
  try {
    return await fetchVersion(
      repo,
      root,
      (hashes) => withRetry(() => client.fetchObjects(workspaceId, hashes)),
      {
        ...options,
        onProgress: (done, total) => {
          progress.update(done, total);
        },
      },
    );
  } finally {
    progress.done();
  }
}

/** Runs `task` over `items`, at most `concurrency` at once; the first failure rejects. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined) {
      const item = items[next++] as T;
      try {
        await task(item);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure !== undefined)
    throw failure instanceof Error ? failure : new Error('a task failed', { cause: failure });
}
