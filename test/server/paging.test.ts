import { randomUUID } from 'node:crypto';
import type { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let admin: UpcClient;
let token: string;
const people: Record<string, { client: UpcClient; id: string }> = {};

/** Users p01 … p12, each with workspaces ws-a and ws-b and a PC "desk-NN" (p01 … p04 have Windows). */
beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
  token = admin.token ?? '';
  for (let i = 1; i <= 12; i++) {
    const name = `p${String(i).padStart(2, '0')}`;
    const person = await server.user(name);
    people[name] = person;
    await person.client.createWorkspace({ name: 'ws-a' });
    await person.client.createWorkspace({ name: i % 2 === 0 ? 'ws-b' : 'Ws_Odd' });
    await person.client.registerDevice({
      machineId: randomUUID(),
      name: `desk-${String(i).padStart(2, '0')}`,
      os: i <= 4 ? 'windows' : 'linux',
      agentVersion: 'test',
    });
  }
});
afterAll(async () => {
  await server.close();
});

const person = (name: string) => {
  const found = people[name];
  if (!found) throw new Error(`no such person ${name}`);
  return found;
};

/** The username of the person with this id. */
const usernameOf = (id: string) => Object.entries(people).find(([, p]) => p.id === id)?.[0];

/** Every item names its owner: its ownerName is the username of its ownerId. */
function expectOwnersNamed(items: { ownerId: string; ownerName: string }[]) {
  expect(items.length).toBeGreaterThan(0);
  expect(items.map((item) => item.ownerName)).toEqual(items.map((item) => usernameOf(item.ownerId)));
}

/** GET the path as the admin: the status, the body and the X-Total-Count header. */
async function get(path: string, as = token) {
  const res = await fetch(`${server.url}/api/v1${path}`, { headers: { authorization: `Bearer ${as}` } });
  return { status: res.status, total: res.headers.get('x-total-count'), body: await res.json() };
}

describe('paging and search of users, workspaces and PCs, done by the database', () => {
  it('pages users by name, with the total in X-Total-Count', async () => {
    const all = await admin.listUsers();
    expect(all.map((u) => u.username)).toEqual([...all.map((u) => u.username)].sort());
    expect(all).toHaveLength(13); // the admin too

    const first = await admin.listUsersPage({ limit: 5 });
    expect(first.total).toBe(13);
    expect(first.items.map((u) => u.username)).toEqual(all.slice(0, 5).map((u) => u.username));
    const third = await admin.listUsersPage({ limit: 5, offset: 10 });
    expect(third).toMatchObject({ total: 13 });
    expect(third.items.map((u) => u.username)).toEqual(all.slice(10).map((u) => u.username));
    const beyond = await admin.listUsersPage({ limit: 5, offset: 50 });
    expect(beyond).toEqual({ items: [], total: 13 });

    const search = await admin.listUsersPage({ limit: 2, search: 'P1' }); // p10, p11, p12
    expect(search.total).toBe(3);
    expect(search.items.map((u) => u.username)).toEqual(['p10', 'p11']);
    expect((await admin.listUsersPage({ limit: 5, search: '%' })).total).toBe(0); // not a wildcard
    expect((await admin.listUsers({ search: 'p1' })).map((u) => u.username)).toEqual(['p10', 'p11', 'p12']);
  });

  it('answers exactly as before without a limit: the whole list, no X-Total-Count', async () => {
    for (const path of ['/users', '/workspaces', '/devices']) {
      const answer = await get(path);
      expect(answer.status).toBe(200);
      expect(answer.total).toBeNull();
      expect(Array.isArray(answer.body)).toBe(true);
    }
    const workspaces = await admin.listWorkspaces();
    expect(workspaces).toHaveLength(24);
    expectOwnersNamed(workspaces);
    const devices = await admin.listDevices();
    expect(devices).toHaveLength(12);
    expectOwnersNamed(devices);
    const p03 = await admin.listWorkspaces({ ownerId: person('p03').id });
    expect(p03.map((w) => w.ownerName)).toEqual(['p03', 'p03']);
  });

  it('pages workspaces by name, and searches names and owners ignoring case', async () => {
    const all = await admin.listWorkspaces();
    const page = await admin.listWorkspacesPage({ limit: 10, offset: 10 });
    expect(page.total).toBe(24);
    expect(page.items.map((w) => w.id)).toEqual(all.slice(10, 20).map((w) => w.id));
    expectOwnersNamed(page.items);
    // The pages together are the whole list, each workspace once (a stable order).
    const ids: string[] = [];
    for (let offset = 0; offset < 24; offset += 7) {
      ids.push(...(await admin.listWorkspacesPage({ limit: 7, offset })).items.map((w) => w.id));
    }
    expect(ids).toEqual(all.map((w) => w.id));

    const odd = await admin.listWorkspacesPage({ limit: 100, search: 'ws_ODD' });
    expect(odd.total).toBe(6);
    expect(new Set(odd.items.map((w) => w.name))).toEqual(new Set(['Ws_Odd']));
    // "_" is a character to match, not a wildcard: "ws-a" and "ws-b" do not match "ws_".
    expect((await admin.listWorkspacesPage({ limit: 100, search: 'ws_' })).total).toBe(6);
    // By owner: p07's two workspaces.
    const p07 = await admin.listWorkspacesPage({ limit: 100, search: 'p07' });
    expect(p07.total).toBe(2);
    expect(new Set(p07.items.map((w) => w.ownerId))).toEqual(new Set([person('p07').id]));
    expect(p07.items.map((w) => w.ownerName)).toEqual(['p07', 'p07']);
    // With an owner: only theirs match.
    const owned = await admin.listWorkspacesPage({ limit: 1, ownerId: person('p02').id, search: 'ws' });
    expect(owned.total).toBe(2);
    expect(owned.items).toHaveLength(1);
  });

  it('pages PCs by name, and searches names, OS and owners', async () => {
    const page = await admin.listDevicesPage({ limit: 5, offset: 5 });
    expect(page.total).toBe(12);
    expect(page.items.map((d) => d.name)).toEqual(['desk-06', 'desk-07', 'desk-08', 'desk-09', 'desk-10']);
    expect(page.items.map((d) => d.ownerName)).toEqual(['p06', 'p07', 'p08', 'p09', 'p10']);
    expect((await admin.listDevicesPage({ limit: 50, search: 'DESK-1' })).items.map((d) => d.name)).toEqual([
      'desk-10',
      'desk-11',
      'desk-12',
    ]);
    expect((await admin.listDevicesPage({ limit: 50, search: 'windows' })).total).toBe(4);
    const byOwner = await admin.listDevicesPage({ limit: 50, search: 'p09' });
    expect(byOwner.items.map((d) => d.name)).toEqual(['desk-09']);
    expect(byOwner.items.map((d) => d.ownerName)).toEqual(['p09']);
    expect((await admin.listDevicesPage({ limit: 50, search: 'nothing-like-it' })).total).toBe(0);
  });

  it('gives a user who is not an admin their own workspaces and PCs only, with the same params', async () => {
    const p05 = person('p05').client;
    const own = await p05.listWorkspacesPage({ limit: 1 });
    expect(own.total).toBe(2);
    expect(own.items.map((w) => w.ownerId)).toEqual([person('p05').id]);
    expect(own.items.map((w) => w.ownerName)).toEqual(['p05']);
    // A search that matches other users' workspaces still finds only p05's.
    expect((await p05.listWorkspacesPage({ limit: 50, search: 'ws-a' })).total).toBe(1);
    expect((await p05.listWorkspacesPage({ limit: 50, search: 'p06' })).total).toBe(0);
    expect((await p05.listWorkspacesPage({ limit: 50, ownerId: person('p06').id })).total).toBe(0);
    expect(await p05.listWorkspaces({ ownerId: person('p06').id })).toEqual([]);
    const pcs = await p05.listDevicesPage({ limit: 50, search: 'desk' });
    expect(pcs.items.map((d) => d.name)).toEqual(['desk-05']);
    expect(pcs.total).toBe(1);
    expect((await p05.listDevicesPage({ limit: 50, ownerId: person('p06').id })).total).toBe(0);
    // The user list stays an admin's.
    expect((await problemOf(p05.listUsersPage({ limit: 5 }))).status).toBe(403);
  });

  it('refuses bad paging params with a 400 problem that names the field', async () => {
    const bad: [string, string][] = [
      ['/users?limit=0', 'limit'],
      ['/users?limit=501', 'limit'],
      ['/workspaces?limit=ten', 'limit'],
      ['/workspaces?offset=-1', 'offset'],
      ['/devices?limit=2.5', 'limit'],
      ['/devices?search=' + 'x'.repeat(65), 'search'],
      ['/workspaces?ownerId=not-an-id', 'ownerId'],
    ];
    for (const [path, field] of bad) {
      const res = await fetch(`${server.url}/api/v1${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status, path).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const problem = (await res.json()) as { code: string; detail: string; issues: { field: string }[] };
      expect(problem.code).toBe('validation_failed');
      expect(problem.issues.map((i) => i.field)).toEqual([field]);
      expect(problem.detail).toMatch(new RegExp(`^${field}: `));
    }
  });

  it('documents limit, offset, search and X-Total-Count in OpenAPI', async () => {
    const doc = (await (await fetch(`${server.url}/api/docs-json`)).json()) as {
      paths: Record<string, { get: { parameters: { name: string }[]; responses: Record<string, unknown> } }>;
    };
    for (const path of ['/api/v1/users', '/api/v1/workspaces', '/api/v1/devices']) {
      const get = doc.paths[path]?.get;
      expect(get?.parameters.map((p) => p.name)).toEqual(
        expect.arrayContaining(['limit', 'offset', 'search']),
      );
      expect(JSON.stringify(get?.responses['200'])).toContain('X-Total-Count');
    }
  });
});
