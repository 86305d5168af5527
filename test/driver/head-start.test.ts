import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pc } from '../support/agent.js';
import { sh, simulatedHosts } from '../support/hosts.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { type Answer, ask, type Service, sparesReady, startService } from '../support/service.js';

/**
 * The resident service's head start: a user's cached workspace is restored (and its namespaces
 * built) while the server checks the sign-in, and kept only if the server names that version.
 */

let server: TestServer;
const host = simulatedHosts();

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** A PC keeping caches, with its service running and its spares loaded. */
async function servedPc(name: string, args: string[] = []): Promise<{ pc: Pc; service: Service }> {
  const pc = await (await host(name, { '/etc/upc-host-only': 'the host has it\n' })).pc(server.url);
  await pc.ok(['device', 'keep-cache', 'on']);
  const service = await startService(pc, args);
  await sparesReady(service.socket);
  return { pc, service };
}

/** A login through the service's socket, as a login manager makes it. */
async function login(service: Service, user: string, password = `${user}-password`): Promise<Answer> {
  await sparesReady(service.socket);
  return ask(service.socket, 'POST', '/login', { user, password });
}

async function loggedIn(service: Service, user: string): Promise<{ headStart?: boolean }> {
  const answer = await login(service, user);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body;
}

/** What the session sees of the workspace: a home file, an installed program, /etc's changes. */
const seen = (pc: Pc) =>
  sh(pc, 'cat ~/note.txt /opt/tool/run; test -e /etc/upc-host-only && echo kept || echo deleted; id -un');

/** Nothing of a session on the PC: no record, no layers in memory, no namespaces claimed. */
async function nothingLeft(pc: Pc): Promise<void> {
  expect(existsSync(join(pc.home, 'session', 'session.json'))).toBe(false);
  expect(existsSync(pc.memoryLayers)).toBe(false);
  const claims = await readdir('/run/upc/ids').catch(() => [] as string[]);
  for (const claim of claims) {
    const record = await readFile(join('/run/upc/ids', claim), 'utf8').catch(() => '{}');
    expect((JSON.parse(record) as { sessionDir?: string }).sessionDir).not.toBe(pc.memoryLayers);
  }
}

describe("the service's head start", () => {
  it('restores a user it remembers while the server answers, and keeps it only when the server names that version', async () => {
    const { client } = await server.user('hana');
    const { pc, service } = await servedPc('ha');

    // Unknown to the service yet: the login waits for the server, as without a head start.
    expect((await loggedIn(service, 'hana')).headStart).toBeUndefined();
    await sh(pc, 'echo one > ~/note.txt');
    await sh(pc, 'mkdir -p /opt/tool && echo v1 > /opt/tool/run && rm /etc/upc-host-only', true);
    await pc.ok(['logout']);

    // Remembered: restored ahead, whiteouts and owners included, and the same as HEAD.
    expect((await loggedIn(service, 'hana')).headStart).toBe(true);
    expect(await seen(pc)).toBe('one\nv1\ndeleted\nhana\n');
    expect(await sh(pc, 'stat -c %U ~/note.txt')).toBe('hana\n');
    await sh(pc, 'echo two > ~/note.txt');
    await pc.ok(['logout']);
    expect((await loggedIn(service, 'hana')).headStart).toBe(true);
    expect(await seen(pc)).toBe('two\nv1\ndeleted\nhana\n');
    await pc.ok(['logout']);

    // Another PC moves HEAD on: this PC's cache is behind, so the login is made from HEAD.
    const other = await (await host('hb')).pc(server.url);
    expect((await other.login('hana')).code).toBe(0);
    await sh(other, 'echo from-b > ~/note.txt');
    await other.ok(['logout']);
    expect((await loggedIn(service, 'hana')).headStart).toBeUndefined();
    expect(await seen(pc)).toBe('from-b\nv1\ndeleted\nhana\n');
    await pc.ok(['logout']);
    expect((await loggedIn(service, 'hana')).headStart).toBe(true);
    await pc.ok(['logout']);

    // A policy changed on the server: what was made under the old one is not used.
    const workspace = (await client.listWorkspaces()).find((w) => w.name === 'default');
    if (!workspace) throw new Error('no workspace');
    await client.setPolicy(workspace.id, {
      v: 1,
      platform: 'linux',
      rules: [{ kind: 'ephemeral', path: '/srv' }],
    });
    expect((await loggedIn(service, 'hana')).headStart).toBeUndefined();
    expect(await sh(pc, 'echo x > /srv/scratch && echo written', true)).toBe('written\n');
    expect(await seen(pc)).toBe('from-b\nv1\ndeleted\nhana\n');
    await pc.ok(['logout']);
    await nothingLeft(pc);
    const status = await ask(service.socket, 'GET', '/status');
    expect(status.body.headStart).toEqual({ remembered: 1 });
  });

  it('leaves nothing behind when the sign-in fails, and forgets the user until they sign in again', async () => {
    await server.user('ivo');
    const { pc, service } = await servedPc('hc');
    expect((await loggedIn(service, 'ivo')).headStart).toBeUndefined();
    await sh(pc, 'echo mine > ~/note.txt');
    await pc.ok(['logout']);

    const wrong = await login(service, 'ivo', 'not-his-password');
    expect(wrong.status).toBe(422);
    expect(wrong.body).toMatchObject({ exit: 3 });
    await nothingLeft(pc);
    expect((await ask(service.socket, 'GET', '/status')).body.headStart).toEqual({ remembered: 0 });

    // Forgotten: the next login waits for the server, and has everything.
    expect((await loggedIn(service, 'ivo')).headStart).toBeUndefined();
    expect(await sh(pc, 'cat ~/note.txt')).toBe('mine\n');
    await pc.ok(['logout']);

    // The workspace in use on another PC: refused, and nothing made ahead is left.
    const other = await (await host('hd')).pc(server.url);
    expect((await other.login('ivo')).code).toBe(0);
    const held = await login(service, 'ivo');
    expect(held.status).toBe(422);
    expect(held.body).toMatchObject({ exit: 5 });
    expect(String(held.body.error)).toContain('in use on');
    await nothingLeft(pc);
    await other.ok(['logout']);
    expect((await loggedIn(service, 'ivo')).headStart).toBeUndefined();
    await pc.ok(['logout']);
  });

  it('is off with --no-head-start: nothing is remembered', async () => {
    await server.user('jon');
    const { pc, service } = await servedPc('he', ['--no-head-start']);
    for (let i = 0; i < 2; i++) {
      expect((await loggedIn(service, 'jon')).headStart).toBeUndefined();
      await pc.ok(['logout']);
    }
    expect((await ask(service.socket, 'GET', '/status')).body.headStart).toBeNull();
  });
});
