import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type Pc } from '../support/agent.js';
import { simulatedHosts } from '../support/hosts.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
const host = simulatedHosts();

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

interface Login {
  isolation: string;
  home: string;
  timings: Record<string, number>;
}

async function login(pc: Pc, user: string): Promise<Login> {
  const result = await pc.login(user);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Login;
}

/** Runs a shell command in the session (as the user, or as the workspace's root). */
async function sh(pc: Pc, script: string, admin = false): Promise<string> {
  const result = await pc.run(['exec', ...(admin ? ['--admin'] : []), '--', 'sh', '-c', script]);
  expect(result.code, `${script}\n${result.stderr}`).toBe(0);
  return result.stdout;
}

describe("the paper's three rules, on simulated PCs", () => {
  it('1. write-through: what programs in the session write to home, /opt, /usr/local and /etc reaches HEAD', async () => {
    await server.user('wes');
    const a = await (await host('a')).pc(server.url);
    const report = await login(a, 'wes');
    expect(report.isolation).toBe('namespace');
    expect(report.home).toBe('/home/wes');
    expect(await sh(a, 'id -un; pwd')).toBe('wes\n/home/wes\n');
    await sh(a, 'echo notes > ~/notes.txt');
    await sh(
      a,
      'mkdir -p /opt/app && echo app > /opt/app/run && echo lib > /usr/local/lib.txt && echo "10.0.0.9 printer" >> /etc/hosts && rm /etc/issue',
      true,
    );
    const b = await (await host('b')).pc(server.url);
    // Written through: once the daemon is quiet, a logout-free takeover on PC B sees all of it.
    await eventually(
      async () =>
        ((await a.ok(['status', '--json'])) as { pendingChanges: number; safeToLeave: boolean })
          .safeToLeave || undefined,
    );
    await a.ok(['logout']);
    await login(b, 'wes');
    expect(
      await sh(
        b,
        'cat ~/notes.txt /opt/app/run /usr/local/lib.txt; grep printer /etc/hosts; test -e /etc/issue || echo issue-deleted',
      ),
    ).toBe('notes\napp\nlib\n10.0.0.9 printer\nissue-deleted\n');
    await b.ok(['logout']);
  });
});
