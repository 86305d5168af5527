import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentError } from './exit-codes.js';
import {
  EXPANSION_FLOOR,
  MAX_EXPANSION,
  requireLayersRoom,
  requireSaneExpansion,
  restoreLimits,
  roomIn,
} from './expansion.js';
import { AgentHome } from './state.js';

const MiB = 1024 * 1024;
const canMount = process.getuid?.() === 0;

describe('the expansion a version may have', () => {
  it('is anything below the floor, and up to MAX_EXPANSION times what it stores above it', () => {
    expect(() => {
      requireSaneExpansion(EXPANSION_FLOOR, 0);
    }).not.toThrow();
    expect(() => {
      requireSaneExpansion(10 * EXPANSION_FLOOR, (10 * EXPANSION_FLOOR) / MAX_EXPANSION);
    }).not.toThrow();
    expect(() => {
      requireSaneExpansion(1024 * MiB, 2075);
    }).toThrow(/files would come to 1\.00 GiB from only 2\.0 KiB stored, over 1000 times more/);
    expect(() => {
      requireSaneExpansion(EXPANSION_FLOOR + 1, 0);
    }).toThrow(AgentError);
  });
});

describe.skipIf(!canMount)(
  `${canMount ? '' : '(skipped: mounting a tmpfs needs root) '}the room a restore has`,
  () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'upc-room-'));
      const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=600m', 'tmpfs', dir]);
      expect(mounted.status, mounted.stderr.toString()).toBe(0);
    });
    afterEach(async () => {
      spawnSync('umount', ['-l', dir]);
      await rm(dir, { recursive: true, force: true });
    });

    it('is the free space of the filesystem a folder will be on, less a reserve for the PC', () => {
      const room = roomIn(join(dir, 'not', 'made', 'yet'));
      expect(room).toBe(600 * MiB - 256 * MiB);
      expect(restoreLimits(join(dir, 'session'))).toEqual({ maxTotalBytes: room });
    });

    it('refuses, before anything is written, a version whose files do not fit on the disk', () => {
      const home = new AgentHome(join(dir, 'agent'));
      expect(requireLayersRoom(home, 'disk', 100 * MiB)).toBe('disk');
      expect(() => requireLayersRoom(home, 'disk', 400 * MiB)).toThrow(
        new RegExp(
          `files come to 400\\.0 MiB, more than the 344\\.0 MiB this PC has free for them on the disk at ${home.sessionDir}`,
        ),
      );
    });
  },
);
