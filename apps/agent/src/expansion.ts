import { type StatsFs, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RestoreLimits } from '@upc/image';
import { AgentError } from './exit-codes.js';
import { chooseLayersPlace, type LayersPlace } from './layers.js';
import { formatBytes } from './progress.js';
import type { AgentHome, DevicePreferences } from './state.js';

/**
 * How much of this PC a workspace's restore may take. An image's size on the server says little:
 * a 2 KiB object may declare 64 MiB of zeros, and a tree may name it thousands of times. So what a
 * restore writes is bounded by the room where the layers go, checked before anything is fetched
 * and again as files are written, and a version that expands absurdly is refused outright.
 */

/** A restore leaves at least this much of its filesystem free (or 5 % of it, if more) for the PC. */
const RESERVE_BYTES = 256 * 1024 * 1024;
const RESERVE_SHARE = 0.05;
/**
 * A version's files may come to at most this many times what it stores. Real workspaces stay in
 * the single digits; zero-filled and sparse files are the exception, and they need a few real
 * bytes beside them to pass it.
 */
export const MAX_EXPANSION = 1000;
/** Below this, a version's files are never refused for their ratio: they cannot hurt the PC. */
export const EXPANSION_FLOOR = 256 * 1024 * 1024;

/** What a restore may write into `folder`: its filesystem's free space, less a reserve. */
export function roomIn(folder: string): number {
  const stats = statfsOf(folder);
  const reserve = Math.max(RESERVE_BYTES, stats.blocks * stats.bsize * RESERVE_SHARE);
  return Math.max(0, Math.floor(stats.bavail * stats.bsize - reserve));
}

/** Limits for `materialize` into `folder`: its files together fit its filesystem's room. */
export function restoreLimits(folder: string): Partial<RestoreLimits> {
  return { maxTotalBytes: roomIn(folder) };
}

/** The folder a place's layers go in, for the room it has (its parent, before it is made). */
function placeFolder(home: AgentHome, place: LayersPlace): string {
  return place === 'memory' ? home.memoryLayersDir : home.sessionDir;
}

/**
 * The place a version of `fileBytes` goes by this PC's preference (layers.ts), once it is sure
 * to fit there; otherwise a clear refusal, before anything is fetched or written.
 */
export function requireLayersRoom(
  home: AgentHome,
  preference: DevicePreferences['layers'],
  fileBytes: number,
): LayersPlace {
  const place = chooseLayersPlace(preference, fileBytes);
  const folder = placeFolder(home, place);
  const room = roomIn(folder);
  if (fileBytes > room) {
    const where = place === 'memory' ? 'in memory (/dev/shm)' : `on the disk at ${folder}`;
    throw new AgentError(
      `this workspace's files come to ${formatBytes(fileBytes)}, more than the ${formatBytes(room)} ` +
        `this PC has free for them ${where}; nothing was restored. Free some space there, or ask an ` +
        'administrator to restore a smaller version of the workspace',
    );
  }
  return place;
}

/** Refuses a version whose files come to absurdly more than the bytes it stores. */
export function requireSaneExpansion(fileBytes: number, storedBytes: number): void {
  if (fileBytes <= EXPANSION_FLOOR || fileBytes <= storedBytes * MAX_EXPANSION) return;
  throw new AgentError(
    `this workspace's files would come to ${formatBytes(fileBytes)} from only ${formatBytes(storedBytes)} ` +
      `stored, over ${MAX_EXPANSION} times more: that is a crafted image or one of huge empty ` +
      '(sparse) files, and it is not restored. Ask an administrator to restore an earlier version',
  );
}

/** The filesystem `folder` is on, or will be on once made (that of its nearest existing parent). */
function statfsOf(folder: string): StatsFs {
  for (let path = folder; ; path = dirname(path)) {
    try {
      return statfsSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(path) === path) throw error;
    }
  }
}
