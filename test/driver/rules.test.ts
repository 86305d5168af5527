import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type Pc } from '../support/agent.js';
import { processesIn, sh, simulatedHosts } from '../support/hosts.js';
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

async function login(pc: Pc, user: string, extra: string[] = []): Promise<Login> {
  const result = await pc.login(user, extra);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Login;
}

/** Waits until everything the session wrote is on the server. */
async function durable(pc: Pc): Promise<void> {
  await eventually(
    async () => ((await pc.ok(['status', '--json'])) as { safeToLeave: boolean }).safeToLeave || undefined,
    10_000,
    'the session to be durable',
  );
}

interface SessionFile {
  namespace: { init: number; claim: string; idBase: number };
}

const sessionOf = async (pc: Pc) =>
  JSON.parse(await readFile(join(pc.home, 'session', 'session.json'), 'utf8')) as SessionFile;

describe("the paper's three rules, on simulated PCs", () => {
  it('1. write-through: what programs in the session write to home, /opt, /usr/local and /etc reaches HEAD, deletions of host files included', async () => {
    await server.user('wes');
    const a = await (await host('a')).pc(server.url);
    const report = await login(a, 'wes');
    expect(report.isolation).toBe('namespace');
    expect(report.home).toBe('/home/wes');
    expect(await sh(a, 'id -un; pwd')).toBe('wes\n/home/wes\n');
    await sh(a, 'echo notes > ~/notes.txt');
    await sh(
      a,
      [
        'mkdir -p /opt/app && echo app > /opt/app/run',
        'echo lib > /usr/local/lib.txt',
        'echo "10.0.0.9 printer" >> /etc/hosts',
        // A host file deleted under a cow path, and a host folder replaced by one of our own.
        'rm /etc/issue',
        'rm -rf /etc/apt && mkdir /etc/apt && echo mine > /etc/apt/only',
      ].join(' && '),
      true,
    );
    await durable(a);

    // PC B takes the workspace over without A logging out: all of it is in HEAD already.
    const b = await (await host('b')).pc(server.url);
    await login(b, 'wes', ['--take-over']);
    expect(await sh(b, 'cat ~/notes.txt /opt/app/run /usr/local/lib.txt; grep printer /etc/hosts')).toBe(
      'notes\napp\nlib\n10.0.0.9 printer\n',
    );
    expect(await sh(b, 'test -e /etc/issue || echo deleted; ls /etc/apt')).toBe('deleted\nonly\n');
    // The deletion is the image's, not B's: B's own /etc still has the file.
    expect((await (await host('b-check')).exec(['cat', '/etc/issue'])).code).toBe(0);
    await b.ok(['logout']);
    await a.run(['logout']);
  });

  it('2. host unchanged: after logout the system folders hash the same, and no mount or process of the session is left', async () => {
    await server.user('hal');
    const pcHost = await host('h', { '/opt/vendor/app.conf': 'host config\n' });
    const before = await pcHost.fingerprint();
    const mountsBefore = await pcHost.mountTable();
    const h = await pcHost.pc(server.url);
    await login(h, 'hal');
    const { namespace } = await sessionOf(h);
    const pidNamespace = await readlink(`/proc/${String(namespace.init)}/ns/pid`);
    await sh(h, 'echo x > ~/x; sleep 600 >/dev/null 2>&1 & echo started');
    await sh(
      h,
      [
        'echo changed >> /etc/hostname',
        'rm -f /etc/motd',
        'mkdir -p /usr/local/share/tool /opt/vendor',
        'echo mine > /opt/vendor/app.conf',
        'echo scratch > /tmp/scratch',
        'echo data > /var/lib/mine',
        'touch /usr/share/new-file',
      ].join(' && '),
      true,
    );
    // Mounted in the session, never on the PC: its mount table does not change even now.
    expect(await pcHost.mountTable()).toBe(mountsBefore);
    expect((await processesIn(pidNamespace)).length).toBeGreaterThanOrEqual(2); // init and sleep

    await h.ok(['logout']);
    expect(await pcHost.fingerprint()).toBe(before);
    expect(await pcHost.mountTable()).toBe(mountsBefore);
    expect(await processesIn(pidNamespace)).toEqual([]);
    await expect(readFile(namespace.claim)).rejects.toThrow(/ENOENT/);
    expect((await pcHost.exec(['cat', '/opt/vendor/app.conf'])).stdout).toBe('host config\n');
  });

  it("3. portable: PC A's /opt/tool runs on PC B (over B's own) and on PC C (which has none)", async () => {
    await server.user('pat');
    const hostB = await host('b', { '/opt/tool/bin/tool': '#!/bin/sh\necho B own tool\n' });
    const a = await (await host('a')).pc(server.url);
    await login(a, 'pat');
    await sh(
      a,
      "mkdir -p /opt/tool/bin && printf '#!/bin/sh\\necho pat tool 2.0\\n' > /opt/tool/bin/tool && chmod 755 /opt/tool/bin/tool",
      true,
    );
    await a.ok(['logout']);

    const b = await hostB.pc(server.url);
    await login(b, 'pat');
    expect(await sh(b, '/opt/tool/bin/tool')).toBe('pat tool 2.0\n');
    await b.ok(['logout']);
    expect((await hostB.exec(['/opt/tool/bin/tool'])).stdout).toBe('B own tool\n');

    const hostC = await host('c');
    expect((await hostC.exec(['test', '-e', '/opt/tool'])).code).toBe(1);
    const c = await hostC.pc(server.url);
    await login(c, 'pat');
    expect(await sh(c, '/opt/tool/bin/tool')).toBe('pat tool 2.0\n');
    await c.ok(['logout']);
  });
});
