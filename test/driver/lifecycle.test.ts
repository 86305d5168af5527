import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, history, isAlive, type Pc } from '../support/agent.js';
import { sh, simulatedHosts } from '../support/hosts.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
const host = simulatedHosts();

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const initOf = async (pc: Pc) =>
  (
    JSON.parse(await readFile(join(pc.home, 'session', 'session.json'), 'utf8')) as {
      namespace: { init: number };
    }
  ).namespace.init;

describe('an isolated session through its life', () => {
  it('gives a shell as the user, comes back after its init is killed, and restores inside the session', async () => {
    await server.user('liv');
    const pc = await (await host('l')).pc(server.url);
    expect((await pc.login('liv')).code).toBe(0);

    // upc shell: the user's shell from the workspace's passwd, in their home.
    const shell = await pc.run(['shell'], 'id -un; pwd; echo $HOME\n');
    expect(shell.code, shell.stderr).toBe(0);
    expect(shell.stdout).toBe('liv\n/home/liv\n/home/liv\n');
    const status = (await pc.ok(['status', '--json'])) as { isolation: { mode: string; running: boolean } };
    expect(status.isolation).toMatchObject({ mode: 'namespace', running: true });

    // A version to go back to: a file in home and a line in /etc.
    await sh(pc, 'echo first > ~/doc.txt');
    await sh(pc, 'echo "first" > /etc/upc-note', true);
    await pc.ok(['sync']);
    const [marked] = await history(pc);
    await sh(pc, 'echo second > ~/doc.txt');
    await sh(pc, 'echo "second" > /etc/upc-note', true);
    await pc.ok(['sync']);

    // One file, in place, while the session runs: a program in it sees the old content at once.
    const watcher = await pc.run(['exec', '--', 'sh', '-c', 'sleep 600 >/dev/null 2>&1 & echo $!']);
    expect(watcher.code).toBe(0);
    await pc.ok(['restore', marked?.id ?? '', '--path', 'doc.txt']);
    expect(await sh(pc, 'cat ~/doc.txt /etc/upc-note')).toBe('first\nsecond\n');
    const init = await initOf(pc);
    expect(isAlive(init)).toBe(true);

    // The whole workspace: the session's programs end, and it starts again over the old version.
    const whole = await pc.run(['restore', marked?.id ?? '']);
    expect(whole.code, whole.stderr).toBe(0);
    expect(whole.stderr).toMatch(/ends the programs running in the session/);
    expect(isAlive(init)).toBe(false);
    expect(await sh(pc, 'cat ~/doc.txt /etc/upc-note')).toBe('first\nfirst\n');

    // The init killed (a crash, an admin's kill -9): the next command builds the session again.
    const again = await initOf(pc);
    process.kill(again, 'SIGKILL');
    await eventually(() => Promise.resolve(isAlive(again) ? undefined : true), 5000, 'the init to end');
    expect(await sh(pc, 'cat ~/doc.txt; id -un')).toBe('first\nliv\n');
    expect(await initOf(pc)).not.toBe(again);
    await pc.ok(['logout']);
  });

  it('refuses --admin and upc desktop clearly when the session is a folder', async () => {
    await server.user('noa');
    const pc = await (await host('n')).pc(server.url);
    pc.isolation = 'none';
    expect((await pc.login('noa')).code).toBe(0);
    const admin = await pc.run(['exec', '--admin', '--', 'true']);
    expect(admin.code).toBe(2);
    expect(admin.stderr).toMatch(/--admin needs an isolated session/);
    const desktop = await pc.run(['desktop']);
    expect(desktop.code).toBe(2);
    expect(desktop.stderr).toMatch(/not isolated/);
    await pc.ok(['logout']);
  });
});
