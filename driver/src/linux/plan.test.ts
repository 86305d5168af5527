import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPolicy, effectivePolicy } from '@upc/policy';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
  it('gives concurrent sessions different ranges, a freed one last of all, and reuses one whose session is gone', async () => {
    const a = claimIds('/s/a');
    const b = claimIds('/s/b');
    expect(b.base - a.base).toBe(IDS_PER_SESSION);
    expect(a.base).toBeGreaterThanOrEqual(0x10000000);
    // A's range, freed, is not the next one given: the next person gets ids nobody just had.
    releaseIds(a.file);
    const c = claimIds('/s/c');
    expect(c.slot).toBe(b.slot + 1);
    // C's session ended without a logout: its init is gone, so its slot is free again.
    recordInit(c, '/s/c', { pid: 2 ** 22 + 17, start: 'not-a-process' });
    const stage = join(dir, 'run', 'stage', String(c.slot));
    await mkdir(stage, { recursive: true });
    // Once every other slot has had its turn, the first ones come round again.
    writeFileSync(join(dir, 'run', 'ids-last'), '4095');
    expect(claimIds('/s/d').slot).toBe(a.slot);
    expect(claimIds('/s/e').slot).toBe(c.slot); // B's is still claimed, C's session is gone
    expect(existsSync(stage)).toBe(false); // its staging folder went with it
    // A live session's slot is never taken.
    const f = claimIds('/s/f');
    recordInit(f, '/s/f', { pid: process.pid, start: startTimeOf(process.pid) ?? '' });
    writeFileSync(join(dir, 'run', 'ids-last'), String(f.slot - 1));
    expect(claimIds('/s/g').slot).not.toBe(f.slot);
  });
});
