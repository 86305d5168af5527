import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, isAlive, type Pc, runCommand } from '../support/agent.js';
import { type SimulatedHost, sh, simulatedHosts } from '../support/hosts.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { ask, sparesReady, startService } from '../support/service.js';

let server: TestServer;
const host = simulatedHosts();

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** The pids of the processes whose command line contains `marker` (the spares and sessions). */
async function processesWith(marker: string): Promise<number[]> {
  const result = await runCommand(['pgrep', '-f', marker], { PATH: process.env.PATH ?? '' });
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => isAlive(pid));
}

async function sessionOf(pc: Pc): Promise<{ namespace: { init: number } }> {
  return JSON.parse(await readFile(join(pc.home, 'session', 'session.json'), 'utf8')) as {
    namespace: { init: number };
  };
}

describe('the resident service (upc service)', () => {
  it('logs in for upc login with spares it started ahead, and for a login manager on its socket', async () => {
    await server.user('sid');
    const pc: Pc = await (await host('s')).pc(server.url);
    const service = await startService(pc);
    await sparesReady(service.socket);

    // A second service for the same home is refused.
    const second = await pc.run(['service']);
    expect(second.code).toBe(5);
    expect(second.stderr).toContain('already serves');

    // upc login goes through the service, which used its spares and starts new ones.
    const login = await pc.login('sid');
    expect(login.code, login.stderr).toBe(0);
    const report = JSON.parse(login.stdout) as { via?: string; isolation: string };
    expect(report).toMatchObject({ via: 'service', isolation: 'namespace' });
    const inside = await pc.run(['exec', '--', 'sh', '-c', 'id -un; echo hello > ~/from-cli.txt']);
    expect(inside.stdout, inside.stderr).toBe('sid\n');
    await pc.ok(['sync']);
    await pc.ok(['logout']);
    const refilled = (await sparesReady(service.socket)) as { logins: number };
    expect(refilled.logins).toBe(1);

    // A login manager: the request on the socket (the server and the PC's name are the
    // service's own), then the user's first program through `enter`.
    const direct = await ask(service.socket, 'POST', '/login', { user: 'sid', password: 'sid-password' });
    expect(direct.status, JSON.stringify(direct.body)).toBe(200);
    const enter = direct.body.enter as { file: string; args: string[]; env: Record<string, string> };
    const shell = await runCommand(
      [enter.file, ...enter.args, 'sh', '-c', 'id -un; cat ~/from-cli.txt; pwd'],
      enter.env,
    );
    expect(shell.stdout, shell.stderr).toBe('sid\nhello\n/home/sid\n');
    expect((await sessionOf(pc)).namespace.init).toBeGreaterThan(1);
    await pc.ok(['logout']);
  });

  it('answers bad requests, wrong passwords and a second login at once with the exit code upc login would give', async () => {
    await server.user('sue');
    const pc = await (await host('t')).pc(server.url);
    const service = await startService(pc);
    const missing = await ask(service.socket, 'POST', '/login', { server: server.url, user: 'sue' });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ exit: 2 });
    expect(String(missing.body.error)).toContain('"password"');
    // A password is not sent over plain http beyond this machine, unless the request says so.
    const plain = await ask(service.socket, 'POST', '/login', {
      user: 'sue',
      password: 'sue-password',
      server: 'http://upc.example.org:8080',
    });
    expect(plain.status).toBe(400);
    expect(String(plain.body.error)).toContain('refusing to send a password over plain http');
    const wrong = await pc.run(['login', '--user', 'sue', '--password-stdin'], 'not-her-password\n');
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/upc: .*(credentials|password)/i);
    expect(existsSync(join(pc.home, 'session', 'session.json'))).toBe(false);
    const unknown = await ask(service.socket, 'POST', '/nothing');
    expect(unknown.status).toBe(404);

    // Two logins at once: one at a time, and the PC has one session, so the second is refused.
    await server.user('sky');
    const both = await Promise.all(
      ['sue', 'sky'].map((user) =>
        ask(service.socket, 'POST', '/login', { user, password: `${user}-password` }),
      ),
    );
    expect(both.map((answer) => answer.status).sort()).toEqual([200, 422]);
    const refused = both.find((answer) => answer.status === 422);
    expect(refused?.body).toMatchObject({ exit: 5 });
    expect(String(refused?.body.error)).toContain('this PC already has a session');
    await pc.ok(['logout']);
  });

  it('gives a session the mounts the PC has at login, not those its spare builder started with', async () => {
    await server.user('sal');
    const h: SimulatedHost = await host('m');
    const pc = await h.pc(server.url);
    const service = await startService(pc);
    await sparesReady(service.socket);
    // Mounted on the PC after the spare builder copied its mount table.
    const mounted = await h.exec([
      'sh',
      '-c',
      'mkdir -p /mnt/late && mount -t tmpfs late /mnt/late && echo here > /mnt/late/mark',
    ]);
    expect(mounted.code, mounted.stderr).toBe(0);
    expect((await pc.login('sal')).code).toBe(0);
    const seen = await pc.run(['exec', '--', 'cat', '/mnt/late/mark']);
    expect(seen.stdout, seen.stderr).toBe('here\n');
    await pc.ok(['logout']);
    await h.exec(['umount', '/mnt/late']);
  });

  it('replaces a session daemon that dies before it answers, and loses nothing the session wrote', async () => {
    await server.user('ray');
    const pc = await (await host('r')).pc(server.url);
    const service = await startService(pc);
    const serviceLog = () => readFile(join(pc.home, 'service.log'), 'utf8').catch(() => '');
    const failures = async () => (await serviceLog()).split("the session's daemon did not start").length - 1;
    // Enough files that the daemon begins well after the answer: the snapshot cache is primed first.
    expect((await pc.login('ray')).code).toBe(0);
    await sh(pc, 'mkdir -p ~/many && for i in $(seq 1 400); do echo $i > ~/many/f$i; done');
    await pc.ok(['logout']);

    // The daemon killed as soon as the login answers. If it was quicker and answered first, the
    // service had nothing to replace: that session is ended and the next attempt made.
    let killed = 0;
    for (let attempt = 1; attempt <= 5 && killed === 0; attempt++) {
      const before = await failures();
      await sparesReady(service.socket);
      const answer = await ask(service.socket, 'POST', '/login', { user: 'ray', password: 'ray-password' });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      const pid = (await pc.daemonPid()) ?? 0;
      process.kill(pid, 'SIGKILL');
      const seen = await eventually(async () => ((await failures()) > before ? true : undefined), 3000).catch(
        () => false,
      );
      if (seen) killed = pid;
      else await pc.ok(['logout']);
    }
    expect(killed, 'the daemon answered before it could be killed, five times').not.toBe(0);

    // Replaced by the service, not by a command: none has run since the login.
    await eventually(async () =>
      (await serviceLog()).includes("the session's daemon was restarted") ? true : undefined,
    );
    const replacement = await pc.daemonPid();
    expect(replacement).not.toBe(killed);
    expect(replacement !== undefined && isAlive(replacement)).toBe(true);
    await sh(pc, 'echo after > ~/after.txt');
    await pc.ok(['logout']);
    expect((await pc.login('ray')).code).toBe(0);
    expect(await sh(pc, 'cat ~/after.txt; ls ~/many | wc -l')).toBe('after\n400\n');
    await pc.ok(['logout']);
  });

  it('ends its spares when it stops, and the session it started goes on', async () => {
    await server.user('sam');
    const pc = await (await host('u')).pc(server.url);
    const service = await startService(pc);
    await sparesReady(service.socket);
    expect((await pc.login('sam')).code).toBe(0);
    await sparesReady(service.socket);
    // The login's daemon was a spare; the one waiting now is the next login's.
    const daemon = await pc.daemonPid();
    const spares = (await processesWith(`${pc.home} --spare`)).filter((pid) => pid !== daemon);
    expect(spares.length).toBe(1);

    service.child.kill('SIGTERM');
    await new Promise((resolve) => service.child.once('exit', resolve));
    expect(service.output()).not.toContain('Error');
    expect(existsSync(service.socket)).toBe(false);
    await eventually(() => Promise.resolve(spares.every((pid) => !isAlive(pid)) ? true : undefined));

    // Without the service, the CLI logs in and out by itself; the session is still there.
    const inside = await pc.run(['exec', '--', 'id', '-un']);
    expect(inside.stdout, inside.stderr).toBe('sam\n');
    const init = (await sessionOf(pc)).namespace.init;
    expect(daemon !== undefined && isAlive(daemon)).toBe(true);
    await pc.ok(['logout']);
    expect(isAlive(init)).toBe(false);
  });
});
