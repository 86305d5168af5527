import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sh, simulatedHosts } from '../support/hosts.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * A workspace's policy is its user's wish; the PC decides which of its folders a session may see
 * copy-on-write or passed through, and nothing a session writes stays on the PC.
 */

let server: TestServer;
const host = simulatedHosts();

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** A file only the PC's root may read, in a folder of the PC's that no default rule names. */
async function rootSecret(folder: string): Promise<{ path: string; secret: string }> {
  const path = `${folder}/upc-secret-${randomBytes(4).toString('hex')}`;
  const secret = `ROOT SECRET ${randomBytes(8).toString('hex')}`;
  await writeFile(path, secret, { mode: 0o600 });
  return { path, secret };
}

describe("a workspace's own policy names host folders", () => {
  it('cow /root and host /root are left out on a PC that does not allow them: its root-only file stays unread', async () => {
    const secret = await rootSecret('/root');
    try {
      for (const kind of ['cow', 'host'] as const) {
        const user = `pat${kind}`;
        const { client } = await server.user(user);
        const workspace = await client.createWorkspace({ name: 'default' });
        await client.setPolicy(workspace.id, { v: 1, platform: 'linux', rules: [{ kind, path: '/root' }] });
        const pc = await (await host(`allow-${kind}`)).pc(server.url);
        const login = await pc.login(user);
        expect(login.code, login.stderr).toBe(0);
        expect(login.stderr).toContain(`${kind} /root: this PC does not let a workspace`);
        for (const admin of [false, true]) {
          const read = await pc.run([
            'exec',
            ...(admin ? ['--admin'] : []),
            '--',
            'sh',
            '-c',
            `cat ${secret.path}; true`,
          ]);
          expect(read.stdout + read.stderr).not.toContain(secret.secret);
        }
        await pc.ok(['logout']);
      }
    } finally {
      await rm(secret.path, { force: true });
    }
  });

  it('a folder the PC lists is shown copy-on-write; the PC decides, not the workspace', async () => {
    const { client } = await server.user('pia');
    const workspace = await client.createWorkspace({ name: 'default' });
    await client.setPolicy(workspace.id, { v: 1, platform: 'linux', rules: [{ kind: 'cow', path: '/srv' }] });
    const pcHost = await host('allow-srv');
    const pc = await pcHost.pc(server.url);
    const allowed = await pc.run(['device', 'host-folders', 'allow', 'cow', '/srv']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(/^ {2}\/srv$/m);
    const login = await pc.login('pia');
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).not.toContain('/srv: this PC does not let');
    await sh(pc, 'echo mine > /srv/upc-workspace-file', true);
    expect(existsSync('/srv/upc-workspace-file')).toBe(false); // in the workspace, not on the PC
    await pc.ok(['logout']);
    const refused = await pc.run(['device', 'host-folders', 'allow', 'cow', 'srv']);
    expect(refused.code).toBe(2);
  });
});

describe('host folders are read-only in a session', () => {
  it('nothing the session writes stays on the PC for the next person, who gets other ids', async () => {
    const tag = randomBytes(4).toString('hex');
    await server.user('quin');
    await server.user('quon');
    const pcHost = await host('ro-host');
    const first = await pcHost.pc(server.url);
    expect((await first.login('quin')).code).toBe(0);
    for (const admin of [false, true]) {
      for (const path of ['/run/lock', '/run', '/dev', '/sys/fs/cgroup']) {
        const attempt = await first.run([
          'exec',
          ...(admin ? ['--admin'] : []),
          '--',
          'sh',
          '-c',
          `echo left > ${path}/upc-left-${tag} 2>&1`,
        ]);
        expect(attempt.code, `${path} ${attempt.stdout}`).not.toBe(0);
        expect(existsSync(`${path}/upc-left-${tag}`)).toBe(false);
      }
    }
    // Devices still work: the terminal, /dev/null, a pseudo-terminal of the session's own.
    expect(await sh(first, 'echo fine > /dev/null && echo ok')).toBe('ok\n');
    const firstIds = await sh(first, 'cat /proc/self/uid_map');
    await first.ok(['logout']);
    const next = await pcHost.pc(server.url);
    expect((await next.login('quon')).code).toBe(0);
    const nextIds = await sh(next, 'cat /proc/self/uid_map');
    expect(nextIds.trim().split(/\s+/)[1]).not.toBe(firstIds.trim().split(/\s+/)[1]);
    await next.ok(['logout']);
  });
});
