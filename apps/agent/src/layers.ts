import { statfsSync } from 'node:fs';
import { lstat, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from './exit-codes.js';
import type { AgentHome, DevicePreferences } from './state.js';

/**
 * Where a session's layers (the restored workspace the user works in) are kept on this PC.
 *
 * `memory`: a folder of /dev/shm, the tmpfs every Linux system mounts. Nothing of the user's files
 * is written to the PC's disk, so a login does not wait for the disk (on a busy or slow one,
 * creating a few hundred files takes ten times longer than the whole rest of the login), and
 * logout leaves nothing behind to recover from the disk. Sessions get a /dev/shm of their own, so
 * the folder is out of their sight. What the user writes still reaches the disk within a second:
 * the daemon's snapshots go to the local object store, and the journal names the last one
 * (`journal.json`), so a power cut loses no more than it would on a disk without fsync.
 *
 * `disk`: `session/workspace` in the agent's home, as before. `auto` picks memory when /dev/shm is
 * a tmpfs with room for four times the image, leaving room for what the session writes.
 */
export type LayersPlace = 'memory' | 'disk';

const TMPFS_MAGIC = 0x01021994;
/** The image may take at most this share of /dev/shm's free space to be kept in memory. */
const MEMORY_SHARE = 4;

/** The folder for a place: the layers go in its `workspace` folder, overlay work folders beside. */
function layersRoot(home: AgentHome, place: LayersPlace): string {
  return place === 'memory' ? home.memoryLayersDir : home.sessionDir;
}

/** Where a session whose image holds `imageBytes` keeps its layers, by this PC's preference. */
export function chooseLayersPlace(preference: DevicePreferences['layers'], imageBytes: number): LayersPlace {
  if (preference === 'disk' || process.platform !== 'linux') return 'disk';
  const free = memoryRoom();
  if (preference === 'memory') {
    if (free === undefined)
      throw new AgentError(
        'this PC has no /dev/shm tmpfs to keep layers in memory; try upc device layers auto',
      );
    return 'memory';
  }
  return free !== undefined && imageBytes * MEMORY_SHARE <= free ? 'memory' : 'disk';
}

/** Free bytes of /dev/shm when it is a tmpfs. */
function memoryRoom(): number | undefined {
  try {
    const stats = statfsSync('/dev/shm');
    return stats.type === TMPFS_MAGIC ? stats.bavail * stats.bsize : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes the place's folder, empty and this process's alone. /dev/shm is open to every user of the
 * PC and the folder's name is known, so whatever holds the name is removed (never followed) and
 * the folder is made exclusively; if someone made it again in between, the login fails rather
 * than write the user's files where another can reach them.
 */
export async function claimLayersRoot(home: AgentHome, place: LayersPlace): Promise<string> {
  const root = layersRoot(home, place);
  if (place === 'disk') {
    await mkdir(root, { recursive: true, mode: 0o700 });
    return root;
  }
  await rm(root, { recursive: true, force: true });
  try {
    await mkdir(root, { mode: 0o700 });
  } catch (error) {
    throw new AgentError(`cannot make ${root} for the session's files: ${(error as Error).message}`);
  }
  const made = await lstat(root);
  if (!made.isDirectory() || made.uid !== process.getuid?.() || (made.mode & 0o077) !== 0) {
    throw new AgentError(
      `${root} is not the private folder just made; the session's files are not put there`,
    );
  }
  return root;
}

/** The workspace folder (the session's `path`) in a place's folder. */
export function workspaceIn(root: string): string {
  return join(root, 'workspace');
}
