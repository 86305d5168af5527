import type { PcLoginResponse } from '@upc/protocol';
import { describe, expect, it } from 'vitest';
import { HeadStart, REMEMBER_MS } from '../../apps/agent/src/head-start.js';
import type { LoginOptions } from '../../apps/agent/src/session.js';
import type { AgentHome } from '../../apps/agent/src/state.js';

/** What the service remembers between logins, and for how long (no files: a home that counts its reads). */

const options = (user: string, workspace = 'default'): LoginOptions => ({
  server: 'https://upc.example.org',
  user,
  password: 'unused',
  workspace,
  takeOver: false,
  deviceName: 'pc',
  quiet: true,
});

const answer = (cacheKey: string | null) =>
  ({
    device: { ownerId: 'user-1' },
    workspace: { id: 'ws-1', policy: null },
    cacheKey,
  }) as unknown as PcLoginResponse;

/** A home whose preferences say "no cache": `prepare` stops there, after counting the read. */
function countingHome(): { home: AgentHome; reads: () => number } {
  let reads = 0;
  const home = {
    readDevicePreferences: () => {
      reads++;
      return Promise.resolve({ keepCache: false, layers: 'auto' });
    },
  } as unknown as AgentHome;
  return { home, reads: () => reads };
}

describe('what the head start remembers', () => {
  it('keeps a user the server gave a cache key, per server, user and workspace, until forgotten', async () => {
    const { home, reads } = countingHome();
    const headStart = new HeadStart(home);
    headStart.remember(options('ann'), answer('a2V5'));
    expect(headStart.size()).toBe(1);
    await headStart.prepare(options('bob'), () => undefined);
    await headStart.prepare(options('ann', 'other'), () => undefined);
    expect(reads()).toBe(0); // not known: nothing is even looked at
    await headStart.prepare(options('ann'), () => undefined);
    expect(reads()).toBe(1);
    headStart.forget(options('ann'));
    expect(headStart.size()).toBe(0);
    await headStart.prepare(options('ann'), () => undefined);
    expect(reads()).toBe(1);
  });

  it('remembers nobody the server gave no cache key, and drops one it knew', () => {
    const headStart = new HeadStart(countingHome().home);
    headStart.remember(options('ann'), answer('a2V5'));
    headStart.remember(options('ann'), answer(null));
    expect(headStart.size()).toBe(0);
  });

  it(`forgets a user ${String(REMEMBER_MS / 3_600_000)} hours after their last login`, async () => {
    let now = 1_000_000;
    const { home, reads } = countingHome();
    const headStart = new HeadStart(home, () => now);
    headStart.remember(options('ann'), answer('a2V5'));
    now += REMEMBER_MS - 1;
    expect(headStart.size()).toBe(1);
    headStart.remember(options('ann'), answer('a2V5')); // a login renews it
    now += REMEMBER_MS - 1;
    await headStart.prepare(options('ann'), () => undefined);
    expect(reads()).toBe(1);
    now += 1;
    await headStart.prepare(options('ann'), () => undefined);
    expect(reads()).toBe(1);
    expect(headStart.size()).toBe(0);
  });
});
