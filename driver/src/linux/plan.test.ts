import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPolicy, effectivePolicy } from '@upc/policy';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureIdentity, findUser } from './identity.js';
import { claimIds, IDS_PER_SESSION, recordInit, releaseIds, startTimeOf } from './ids.js';
import { parsePlan, parseReport, PlanError } from './plan.js';
import { DriverError, HOST_SECRETS, planSession } from './session.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-driver-'));
  process.env.UPC_RUN_DIR = join(dir, 'run');
});
afterEach(async () => {
  delete process.env.UPC_RUN_DIR;
  await rm(dir, { recursive: true, force: true });
});

const spec = (agentHome: string) => ({
  policy: defaultPolicy('linux'),
  user: 'ann',
  agentHome,
  sessionDir: join(agentHome, 'session'),
  hostname: 'upc-ann',
});

describe('planSession', () => {
  it('maps the default policy: layers, scratch folders, host paths, an empty /home, and the secrets masked', () => {
    const plan = planSession(spec('/root/.upc'), { slot: 3, base: 0x10030000, count: IDS_PER_SESSION });
    expect(plan.layers).toEqual([
      { kind: 'forward', target: '/home/ann', dir: 'workspace/home' },
      { kind: 'forward', target: '/opt', dir: 'workspace/opt' },
      { kind: 'forward', target: '/usr/local', dir: 'workspace/usr-local' },
      { kind: 'cow', target: '/etc', dir: 'workspace/cow/etc', work: 'overlay/3' },
      { kind: 'cow', target: '/usr', dir: 'workspace/cow/usr', work: 'overlay/4' },
      { kind: 'cow', target: '/var/lib', dir: 'workspace/cow/var-lib', work: 'overlay/5' },
    ]);
    expect(plan.ephemeral).toEqual(['/tmp', '/var/tmp']);
    expect(plan.host).toEqual(['/proc', '/sys', '/dev', '/run']);
    expect(plan.scaffolds).toEqual([{ target: '/home', mountPoints: ['/home/ann'] }]);
    expect(plan.masks).toEqual(expect.arrayContaining([...HOST_SECRETS, '/root/.upc', join(dir, 'run')]));
    expect(plan.stageDir).toBe(join(dir, 'run', 'stage', '3'));
    expect(() => parsePlan(JSON.parse(JSON.stringify(plan)))).not.toThrow();
  });

  it("refuses an agent state folder under a saved path, where the session's root could read it", () => {
    expect(() => planSession(spec('/var/lib/upc'), { slot: 1, base: 0x10010000, count: 1 })).toThrow(
      DriverError,
    );
    expect(() => planSession(spec('/var/lib/upc'), { slot: 1, base: 0x10010000, count: 1 })).toThrow(
      /inside "cow \/var\/lib"/,
    );
  });

  it('follows an override: a rule removed is not mounted, one added is', () => {
    const policy = effectivePolicy(defaultPolicy('linux'), {
      v: 1,
      platform: 'linux',
      rules: [
        { kind: 'none', path: '/usr' },
        { kind: 'ephemeral', path: '/srv' },
      ],
    });
    const plan = planSession({ ...spec('/root/.upc'), policy }, { slot: 1, base: 0x10010000, count: 1 });
    expect(plan.layers.map((l) => l.target)).not.toContain('/usr');
    expect(plan.ephemeral).toContain('/srv');
  });
});

describe('parsePlan and parseReport', () => {
  it('refuse paths that climb, relative layer folders that are absolute, and bad ids', () => {
    const good = planSession(spec('/root/.upc'), { slot: 1, base: 0x10010000, count: IDS_PER_SESSION });
    const bad = (change: object) => () => parsePlan({ ...JSON.parse(JSON.stringify(good)), ...change });
    expect(bad({ sessionDir: '/tmp/../etc' })).toThrow(PlanError);
    expect(bad({ layers: [{ kind: 'forward', target: '/opt', dir: '/etc' }] })).toThrow(/layer paths/);
    expect(bad({ layers: [{ kind: 'cow', target: '/etc', dir: 'workspace/cow/etc' }] })).toThrow(
      /work folder/,
    );
    expect(bad({ idBase: -1 })).toThrow(/ids/);
    expect(bad({ hostname: 'a b' })).toThrow(/hostname/);
    expect(() => parseReport({ init: 0, warnings: [], ms: 1 })).toThrow(PlanError);
    expect(parseReport({ init: 42, warnings: ['x'], ms: 3 })).toEqual({ init: 42, warnings: ['x'], ms: 3 });
  });
});

describe('id ranges', () => {
  it('gives concurrent sessions different ranges, and reuses a range once its session is gone', async () => {
    const a = claimIds('/s/a');
    const b = claimIds('/s/b');
    expect(b.base - a.base).toBe(IDS_PER_SESSION);
    expect(a.base).toBeGreaterThanOrEqual(0x10000000);
    // A's session ended without a logout: its init is gone, so its slot is free again.
    recordInit(a, '/s/a', { pid: 2 ** 22 + 17, start: 'not-a-process' });
    const stage = join(dir, 'run', 'stage', String(a.slot));
    await mkdir(stage, { recursive: true });
    const c = claimIds('/s/c');
    expect(c.slot).toBe(a.slot);
    expect(existsSync(stage)).toBe(false); // its staging folder went with it
    releaseIds(b.file);
    expect(claimIds('/s/d').slot).toBe(b.slot);
    // A live session's slot is never taken.
    recordInit(c, '/s/c', { pid: process.pid, start: startTimeOf(process.pid) ?? '' });
    expect(claimIds('/s/e').slot).not.toBe(c.slot);
  });
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
    const first = await ensureIdentity('ann', '/home/ann', layer, hostEtc);
    expect(first).toEqual({ user: 'ann', uid: 1001, gid: 1001, home: '/home/ann', shell: '/bin/bash' });
    const passwd = await readFile(join(layer, 'passwd'), 'utf8');
    expect(passwd).toContain('bob:x:1000');
    expect(findUser(passwd, 'ann')?.uid).toBe(1001);
    expect(await readFile(join(layer, 'group'), 'utf8')).toMatch(/^ann:x:1001:$/m);
    // The host's files are not touched, and a second session finds the same identity.
    expect(await readFile(join(hostEtc, 'passwd'), 'utf8')).not.toContain('ann');
    expect(await ensureIdentity('ann', '/home/ann', layer, hostEtc)).toEqual(first);
    expect((await readFile(join(layer, 'passwd'), 'utf8')).match(/^ann:/gm)).toHaveLength(1);
  });
});
