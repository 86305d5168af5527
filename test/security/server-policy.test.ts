import { randomUUID } from 'node:crypto';
import type { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * Issue 14, finding 5 (the server's half): a workspace's policy override was stored as any JSON. A
 * user stored 2,000 rules and could no longer log in anywhere; `cow /dev` or `cow /run` broke every
 * login. The server now checks an override with the agent's own parser and refuses what no PC can run.
 */
let server: TestServer;
let mallory: UpcClient;
let workspaceId: string;
const good = { v: 1, platform: 'linux', rules: [{ kind: 'forward', path: '/srv/tools' }] };

beforeAll(async () => {
  server = await startTestServer();
  ({ client: mallory } = await server.user('mallory'));
  workspaceId = (await mallory.createWorkspace({ name: 'main' })).id;
  await mallory.setPolicy(workspaceId, good);
});
afterAll(async () => {
  await server.close();
});

const linux = (rules: unknown[]) => ({ v: 1, platform: 'linux', rules });

/** Sets the policy and expects 400 invalid_policy; the stored policy must be unchanged after it. */
async function refused(policy: Record<string, unknown>): Promise<{ detail: string; problems: string[] }> {
  const error = await problemOf(mallory.setPolicy(workspaceId, policy));
  expect(error.status).toBe(400);
  expect(error.code).toBe('invalid_policy');
  expect((await mallory.getWorkspace(workspaceId)).policy).toEqual(good);
  return { detail: error.problem.detail ?? '', problems: error.problem.problems as string[] };
}

describe('a policy override the agent could not run is refused by the server', () => {
  it('refuses 2,000 rules (the override that locked a user out), saying how many are allowed', async () => {
    const rules = Array.from({ length: 2000 }, (_, i) => ({ kind: 'forward', path: `/srv/p${i}` }));
    const { detail, problems } = await refused(linux(rules));
    expect(problems).toEqual(['the override has more than 256 rules']);
    expect(detail).toBe('the policy is not valid: the override has more than 256 rules');
  });

  it.each(['/dev', '/run', '/proc', '/sys'])('refuses cow %s, which broke every login', async (path) => {
    const { problems } = await refused(linux([{ kind: 'cow', path }]));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^override rule 1 \\(cow ${path}\\): ${path} is .*`));
    expect(problems[0]).toContain('breaks at every login, so it can only be host');
  });

  it('refuses forward and ephemeral of the root, of the kernel folders and of what lies under them', async () => {
    const { problems } = await refused(
      linux([
        { kind: 'forward', path: '/' },
        { kind: 'ephemeral', path: '/run' },
        { kind: 'none', path: '/dev' },
        { kind: 'forward', path: '/dev/shm' },
      ]),
    );
    expect(problems).toEqual([
      // In the order of the merged policy: the default's rules (rule 2 replaced one), then the new ones.
      "override rule 2 (ephemeral /run): /run is the host's run-time state (sockets, PID files, logins); a session that does not see the host's own breaks at every login, so it can only be host",
      'override rule 1 (forward /): the root itself cannot be forward; name the folders under it instead',
      "override rule 4 (forward /dev/shm): it lies in /dev, the host's device nodes; a session that does not see the host's own breaks at every login, so nothing there can be forward",
    ]);
  });

  it('refuses a path of 100,000 characters without echoing it', async () => {
    const path = `/srv/${'a'.repeat(100_000)}`;
    const { detail, problems } = await refused(linux([{ kind: 'forward', path }]));
    expect(problems).toEqual([
      `override rule 1 (forward ${path.slice(0, 100)}…): the path is 100005 characters long, over the limit of 1024`,
    ]);
    expect(detail.length).toBeLessThan(300);
  });

  it('refuses any JSON that is not a policy, naming what is wrong', async () => {
    expect((await refused({ rules: [] })).problems).toEqual([
      'the override has no "v": this agent reads version 1',
      'platform must be "linux" or "windows"',
    ]);
    expect(
      (await refused({ v: 1, platform: 'linux', rules: [{ kind: 'mount', path: '/x' }] })).problems,
    ).toEqual([
      'override rule 1: unknown kind "mount" (one of forward, cow, host, ephemeral, exclude, none)',
    ]);
    expect((await refused({ v: 1, platform: 'linux', rules: [], extra: { a: 1 } })).problems).toEqual([
      'the override has an unknown field "extra" (it has v, platform and rules)',
    ]);
  });

  it('refuses it when a workspace is created with it too, and creates nothing', async () => {
    const name = `w-${randomUUID().slice(0, 8)}`;
    const error = await problemOf(
      mallory.createWorkspace({ name, policy: linux([{ kind: 'cow', path: '/dev' }]) }),
    );
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_policy');
    expect((await mallory.listWorkspaces()).map((w) => w.name)).not.toContain(name);
  });

  it('still stores a valid override, as given, and the user still logs in on a PC with it', async () => {
    const valid = linux([
      { kind: 'cow', path: '/opt' },
      { kind: 'host', path: '/dev' },
      { kind: 'none', path: '/run' },
      { kind: 'exclude', pattern: '~/build/**' },
    ]);
    expect((await mallory.setPolicy(workspaceId, valid)).policy).toEqual(valid);
    const login = await server.anonymous().pcLogin({
      username: 'mallory',
      password: 'mallory-password',
      device: { machineId: 'machine-desk', name: 'desk', os: 'linux', agentVersion: 'test' },
      workspace: 'main',
    });
    expect(login.workspace.policy).toEqual(valid);
    await mallory.setPolicy(workspaceId, good);
  });
});
