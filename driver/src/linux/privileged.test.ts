import { closeSync, constants, existsSync, lstatSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOpaqueAt, perform } from './privileged.js';

// These run as root on Linux (as CI does): they make real whiteouts, xattrs and ioctls.
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-privileged-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the privileged operations', () => {
  it('make an overlay whiteout (a 0/0 character device) and an opaque folder the overlay reads', async () => {
    expect(perform({ op: 'whiteout', path: join(dir, 'gone') })).toEqual({ ok: true });
    const stats = lstatSync(join(dir, 'gone'), { bigint: true });
    expect(stats.isCharacterDevice()).toBe(true);
    expect(stats.rdev).toBe(0n);

    await mkdir(join(dir, 'mine'));
    const opaque = () => {
      const fd = openSync(join(dir, 'mine'), constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        return isOpaqueAt(fd);
      } finally {
        closeSync(fd);
      }
    };
    expect(opaque()).toBe(false);
    expect(perform({ op: 'set-opaque', path: join(dir, 'mine') })).toEqual({ ok: true });
    expect(opaque()).toBe(true);
  });

  it('return a failure as a result, with its errno, its name and what was being done', () => {
    const result = perform({ op: 'bind', source: join(dir, 'missing'), target: join(dir, 'also-missing') });
    expect(result).toMatchObject({ ok: false, errno: 2, code: 'ENOENT' });
    expect(result.ok ? '' : result.message).toMatch(
      /^bind .*missing on .*also-missing: No such file or directory$/,
    );
    expect(perform({ op: 'whiteout', path: join(dir, 'no', 'such', 'folder') })).toMatchObject({
      ok: false,
      code: 'ENOENT',
    });
    expect(perform({ op: 'unmount', target: dir })).toMatchObject({ ok: false, code: 'EINVAL' }); // not a mount point
  });

  it.skipIf(!existsSync('/sys/class/tty/tty0/active'))(
    'switches virtual terminals (chvt): to the one shown, a no-op',
    () => {
      const active = Number(/^tty(\d+)/.exec(readFileSync('/sys/class/tty/tty0/active', 'utf8'))?.[1]);
      expect(perform({ op: 'activate-vt', vt: active })).toEqual({ ok: true });
      expect(perform({ op: 'activate-vt', vt: 99_999 })).toMatchObject({ ok: false });
    },
  );
});
