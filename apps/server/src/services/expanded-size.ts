import { limiter } from '@upc/image';
import type { TreeSummary } from '../workers/tree-work.js';

/** What counting a version's expanded size needs from the workspace's stored trees. */
export interface StoredTrees {
  /**
   * Which of `hashes` the workspace stores, each with the size recorded for it by an earlier
   * count (null: not counted yet). Hashes it does not store are absent.
   */
  lookup(hashes: readonly string[]): Promise<Map<string, number | null>>;
  /**
   * What a stored tree holds: its files' bytes and its folders (a tree that does not decode, none).
   * Decoded off the thread that answers requests when it is big (TreeService).
   */
  summary(hash: string): Promise<TreeSummary>;
  /** Records the sizes of trees counted in full, for later counts. */
  record(sizes: ReadonlyMap<string, number>): Promise<void>;
}

/** A tree the version reaches is not stored: the version cannot be restored. */
export class TreeMissingError extends Error {
  override name = 'TreeMissingError';
  constructor(readonly hash: string) {
    super(`tree ${hash} is not stored`);
  }
}

/** Tree reads at once. */
const READS = 8;

class PastLimit extends Error {}

/**
 * The bytes the files under `root` come to, as its trees declare them: what restoring it writes
 * at most (a restore refuses a file whose chunks hold more, or less, than its size). A folder
 * named twice counts twice, as it is restored twice. Trees counted before are not read again;
 * each other tree is read once. A tree that does not decode restores nothing and counts 0. The
 * count stops as soon as it passes `limit`, and then returns a number above `limit`.
 */
export async function expandedBytes(root: string, trees: StoredTrees, limit: number): Promise<number> {
  const sizes = new Map<string, Promise<number>>();
  const counted = new Map<string, number>();
  const reads = limiter(READS);
  let stopped = false;

  const known = async (hashes: readonly string[]): Promise<void> => {
    const fresh = [...new Set(hashes)].filter((hash) => !sizes.has(hash));
    if (fresh.length === 0) return;
    const found = await trees.lookup(fresh);
    const missing = fresh.find((hash) => !found.has(hash));
    if (missing !== undefined) throw new TreeMissingError(missing);
    for (const hash of fresh) {
      if (sizes.has(hash)) continue; // a sibling walk got there first
      const recorded = found.get(hash) ?? null;
      const size = recorded === null ? count(hash) : Promise.resolve(recorded);
      size.catch(() => undefined); // awaited by whoever names it; this only keeps a rejection handled
      sizes.set(hash, size);
    }
  };

  const count = async (hash: string): Promise<number> => {
    const { fileBytes, folders } = await reads(async () => {
      if (stopped) throw new PastLimit();
      return trees.summary(hash);
    });
    let total = fileBytes;
    if (total > limit) throw new PastLimit();
    await known(folders);
    const parts = await Promise.all(folders.map((folder) => sizes.get(folder) ?? Promise.resolve(0)));
    for (const part of parts) {
      total += part;
      if (total > limit) throw new PastLimit();
    }
    counted.set(hash, total);
    return total;
  };

  try {
    await known([root]);
    return await (sizes.get(root) ?? Promise.resolve(0));
  } catch (error) {
    if (!(error instanceof PastLimit)) throw error;
    return limit + 1;
  } finally {
    stopped = true;
    await Promise.allSettled(sizes.values()); // no read still running once the count is reported
    if (counted.size > 0) await trees.record(counted);
  }
}
