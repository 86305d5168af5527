import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Each session on a PC gets ids of its own: ids 0..65535 inside are SLOT_BASE + slot × 65536 and
 * up outside, far above the ids of the PC's own users. Slots are claimed by creating a file in the
 * PC-wide registry (exclusive create), and freed at logout or when their session is found gone.
 */
export const IDS_PER_SESSION = 65536;
const SLOT_BASE = 0x10000000; // 268,435,456: no host account or container range uses these by default
const SLOTS = 4096;
const CLAIM_GRACE_MS = 60_000;

export interface IdClaim {
  slot: number;
  base: number;
  count: number;
  file: string;
}

interface ClaimRecord {
  sessionDir: string;
  init?: { pid: number; start: string };
}

/** The registry: root only (0700), on the PC's run-time folder. */
export function registryDir(): string {
  return process.env.UPC_RUN_DIR ?? '/run/upc';
}

/**
 * Claims a free slot for the session at `sessionDir`. Slots are taken in turn from the one after
 * the last claimed, so a slot just freed is the last to be given again: the next person on the PC
 * does not get the ids the one before had (and so nothing of theirs that might have stayed).
 */
export function claimIds(sessionDir: string): IdClaim {
  const dir = join(registryDir(), 'ids');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const after = lastClaimed();
  for (let turn = 0; turn < SLOTS - 1; turn++) {
    const slot = ((after + turn) % (SLOTS - 1)) + 1;
    const file = join(dir, `slot-${slot}`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(file, JSON.stringify({ sessionDir } satisfies ClaimRecord), {
          flag: 'wx',
          mode: 0o600,
        });
        writeFileSync(cursorFile(), String(slot), { mode: 0o600 });
        return { slot, base: SLOT_BASE + slot * IDS_PER_SESSION, count: IDS_PER_SESSION, file };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        if (!isStale(file)) break;
        // Its session ended without a logout (killed, a reboot): its staging folder goes too.
        rmSync(join(registryDir(), 'stage', String(slot)), { recursive: true, force: true });
        unlinkSync(file);
      }
    }
  }
  throw new Error(`no free id range: ${SLOTS - 1} sessions are running on this PC`);
}

/** Where the last slot claimed is noted (a hint: claims themselves are exclusive). */
function cursorFile(): string {
  return join(registryDir(), 'ids-last');
}

function lastClaimed(): number {
  try {
    const slot = Number(readFileSync(cursorFile(), 'utf8'));
    return Number.isInteger(slot) && slot >= 1 && slot < SLOTS ? slot : 0;
  } catch {
    return 0;
  }
}

/** Records the session's init in its claim, so that a later claim can tell when it is gone. */
export function recordInit(claim: IdClaim, sessionDir: string, init: { pid: number; start: string }): void {
  writeFileSync(claim.file, JSON.stringify({ sessionDir, init } satisfies ClaimRecord), { mode: 0o600 });
}

export function releaseIds(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

/** The sessions the registry knows of: their folders (to hide them from each other). */
export function claimedSessionDirs(): string[] {
  const dir = join(registryDir(), 'ids');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    try {
      return [(JSON.parse(readFileSync(join(dir, name), 'utf8')) as ClaimRecord).sessionDir];
    } catch {
      return [];
    }
  });
}

function isStale(file: string): boolean {
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as ClaimRecord;
    if (record.init) return startTimeOf(record.init.pid) !== record.init.start;
    return Date.now() - statSync(file).mtimeMs > CLAIM_GRACE_MS;
  } catch {
    return true;
  }
}

/**
 * A live process's start time (field 22 of /proc/PID/stat), which tells a pid reused from the
 * original; undefined once it has ended (a zombie has ended).
 */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}
