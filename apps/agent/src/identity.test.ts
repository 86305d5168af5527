import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureIdentity, findUser } from './identity.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-identity-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the user inside the workspace', () => {
  it('is added once to the workspace’s own passwd and group, with a uid neither the image nor the host uses', async () => {
    const hostEtc = join(dir, 'host-etc');
    const layer = join(dir, 'cow-etc');
    await mkdir(hostEtc, { recursive: true });
    await writeFile(
      join(hostEtc, 'passwd'),
      'root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/bash\n',
    );
    await writeFile(join(hostEtc, 'group'), 'root:x:0:\nbob:x:1000:\n');
    const first = await ensureIdentity('ann', '/home/ann', layer, { hostEtc });
    expect(first).toEqual({ user: 'ann', uid: 1001, gid: 1001, home: '/home/ann', shell: '/bin/bash' });
    const passwd = await readFile(join(layer, 'passwd'), 'utf8');
    expect(passwd).toContain('bob:x:1000');
    expect(findUser(passwd, 'ann')?.uid).toBe(1001);
    expect(await readFile(join(layer, 'group'), 'utf8')).toMatch(/^ann:x:1001:$/m);
    // The host's files are not touched, and a second session finds the same identity.
    expect(await readFile(join(hostEtc, 'passwd'), 'utf8')).not.toContain('ann');
    expect(await ensureIdentity('ann', '/home/ann', layer, { hostEtc })).toEqual(first);
    expect((await readFile(join(layer, 'passwd'), 'utf8')).match(/^ann:/gm)).toHaveLength(1);
  });
});

describe('the identity update never follows a link the workspace holds', () => {
  it.each(['passwd', 'group'])(
    'a %s that is a link to a file outside: that file untouched, a file of its own instead',
    async (name) => {
      const hostEtc = join(dir, 'host-etc');
      const layer = join(dir, 'cow-etc');
      const outside = join(dir, 'outside');
      await mkdir(hostEtc, { recursive: true });
      await mkdir(layer, { recursive: true });
      await mkdir(outside, { recursive: true });
      await writeFile(join(hostEtc, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
      await writeFile(join(hostEtc, 'group'), 'root:x:0:\n');
      await writeFile(join(outside, 'nologin'), 'host file\n');
      await symlink(join(outside, 'nologin'), join(layer, name));
      const identity = await ensureIdentity('ann', '/home/ann', layer, { hostEtc });
      expect(identity.uid).toBe(1000);
      expect(await readFile(join(outside, 'nologin'), 'utf8')).toBe('host file\n');
      expect((await lstat(join(layer, name))).isFile()).toBe(true);
      expect(await readFile(join(layer, name), 'utf8')).toMatch(/^ann:x:1000:/m);
    },
  );

  it('an /etc layer that is itself a link is refused', async () => {
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await symlink(outside, join(dir, 'cow-etc'));
    await expect(ensureIdentity('ann', '/home/ann', join(dir, 'cow-etc'))).rejects.toThrow(/ELOOP|ENOTDIR/);
    expect(await readFile(join(outside, 'passwd'), 'utf8').catch(() => 'absent')).toBe('absent');
  });
});
