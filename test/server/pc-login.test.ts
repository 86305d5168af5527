import type { PcLoginRequest, PcLoginResponse, UpcClient } from '@upc/protocol';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitTree } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let admin: UpcClient;
let db: pg.Client;
beforeAll(async () => {
  server = await startTestServer({
    env: { UPC_LOGIN_MAX_FAILURES_PER_USER: '3', UPC_LOGIN_BACKOFF_SECONDS: '600' },
  });
  admin = await server.admin();
  db = new pg.Client({ connectionString: server.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await db.end();
  await server.close();
});

/** A user of their own for each test, so that leases, sign-in limits and audit entries do not mix. */
async function newUser(username: string): Promise<string> {
  return (await admin.createUser({ username, password: `${username}-password` })).id;
}

/** The body of a PC named `pc` logging `username` in to `workspace`. */
const loginOn = (
  username: string,
  pc: string,
  workspace = 'main',
  extra: Partial<PcLoginRequest> = {},
): PcLoginRequest => ({
  username,
  password: `${username}-password`,
  device: { machineId: `machine-${pc}`, name: pc, os: 'linux', agentVersion: 'test' },
  workspace,
  ...extra,
});

/** Token rows of the user, revoked or not: a token that was never issued cannot be used. */
async function tokensOf(userId: string): Promise<number> {
  const result = await db.query<{ n: string }>('SELECT count(*) AS n FROM tokens WHERE user_id = $1', [
    userId,
  ]);
  return Number(result.rows[0]?.n);
}

const actionsOf = async (actorId: string): Promise<string[]> =>
  (await admin.listAudit({ actorId })).map((event) => event.action).reverse();

/** POST /auth/pc-login without the client, to see the raw answer. */
const rawPcLogin = (body: PcLoginRequest) =>
  fetch(`${server.url}/api/v1/auth/pc-login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('POST /auth/pc-login', () => {
  it('on a first login creates the workspace, registers the PC, takes the lease, and signs in', async () => {
    const userId = await newUser('ada');
    const client = server.anonymous();
    const answer = await client.pcLogin(loginOn('ada', 'desk'));

    expect(client.token).toBe(answer.token);
    expect(answer.user).toMatchObject({ id: userId, username: 'ada' });
    expect(answer.device).toMatchObject({
      ownerId: userId,
      ownerName: 'ada',
      machineId: 'machine-desk',
      name: 'desk',
    });
    expect(answer.workspace).toMatchObject({
      ownerId: userId,
      ownerName: 'ada',
      name: 'main',
      headVersionId: null,
    });
    expect(answer.lease).toMatchObject({
      workspaceId: answer.workspace.id,
      deviceId: answer.device.id,
      userId,
      fencingToken: 1,
    });
    expect(answer.head).toBeNull();
    expect(answer.cacheKey).toBeNull();

    expect(await client.me()).toMatchObject({ id: userId });
    expect(await client.getLease(answer.workspace.id)).toEqual(answer.lease);
    expect(await client.listWorkspaces()).toEqual([answer.workspace]);
    // The PC and the workspace are registered together (either may be audited first); the lease
    // follows them, and the sign-in is audited last, with its token.
    const actions = await actionsOf(userId);
    expect(actions.slice(0, 2).sort()).toEqual(['device.register', 'workspace.create']);
    expect(actions.slice(2)).toEqual(['lease.acquire', 'auth.login']);
  });

  it('finds an existing workspace by its exact name instead of creating another', async () => {
    await newUser('bea');
    const client = server.anonymous();
    await client.login('bea', 'bea-password');
    const existing = await client.createWorkspace({ name: 'Work' });
    const answer = await server.anonymous().pcLogin(loginOn('bea', 'desk', 'Work'));
    expect(answer.workspace.id).toBe(existing.id);
    const other = await server.anonymous().pcLogin(loginOn('bea', 'laptop', 'work'));
    expect(other.workspace.id).not.toBe(existing.id);
    expect((await client.listWorkspaces()).map((w) => w.name).sort()).toEqual(['Work', 'work']);
  });

  it('refuses a second PC while the first holds the lease, naming the holder, and issues no token', async () => {
    const userId = await newUser('cleo');
    const first = await server.anonymous().pcLogin(loginOn('cleo', 'desk'));
    const tokensBefore = await tokensOf(userId);

    const res = await rawPcLogin(loginOn('cleo', 'laptop'));
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await res.json()) as Record<string, unknown>;
    expect(problem.code).toBe('lease_held');
    expect(problem).not.toHaveProperty('token');
    expect(problem.holder).toEqual({
      deviceId: first.device.id,
      deviceName: 'desk',
      userId,
      username: 'cleo',
      since: first.lease.acquiredAt,
      expiresAt: first.lease.expiresAt,
    });
    expect(await tokensOf(userId)).toBe(tokensBefore);

    // The client too: an error, and no token kept.
    const client = server.anonymous();
    expect((await problemOf(client.pcLogin(loginOn('cleo', 'laptop')))).code).toBe('lease_held');
    expect(client.token).toBeUndefined();
    expect(await tokensOf(userId)).toBe(tokensBefore);

    // The device registered before the lease failed stays, as with the separate routes; no sign-in is audited.
    const desk = server.anonymous();
    await desk.login('cleo', 'cleo-password');
    expect((await desk.listDevices()).map((d) => d.name).sort()).toEqual(['desk', 'laptop']);
    expect((await actionsOf(userId)).filter((a) => a === 'auth.login')).toHaveLength(2);
  });

  it('takes the lease over when asked: the fencing token grows and the old holder goes stale', async () => {
    const userId = await newUser('dora');
    const desk = server.anonymous();
    const first = await desk.pcLogin(loginOn('dora', 'desk'));
    const taken = await server.anonymous().pcLogin(loginOn('dora', 'laptop', 'main', { takeOver: true }));
    expect(taken.workspace.id).toBe(first.workspace.id);
    expect(taken.lease.deviceId).toBe(taken.device.id);
    expect(taken.lease.fencingToken).toBeGreaterThan(first.lease.fencingToken);
    const stale = await problemOf(
      desk.renewLease(first.workspace.id, first.device.id, first.lease.fencingToken),
    );
    expect(stale.code).toBe('stale_fencing_token');
    const audit = await admin.listAudit({ actorId: userId, action: 'lease.takeover' });
    expect(audit[0]?.details.previousHolder).toMatchObject({ deviceId: first.device.id });
  });

  it('answers a wrong password with 401, counted toward the same sign-in limit as /auth/login', async () => {
    const userId = await newUser('edda');
    const wrong = loginOn('edda', 'desk', 'main', { password: 'wrong-password' });
    const refused = await problemOf(server.anonymous().pcLogin(wrong));
    expect(refused.status).toBe(401);
    expect(refused.code).toBe('invalid_credentials');
    await problemOf(server.anonymous().login('edda', 'wrong-password'));
    await problemOf(server.anonymous().pcLogin(wrong));

    // Three failures (the limit here) through either route hold both up from this address, the right
    // password too.
    const locked = await problemOf(server.anonymous().login('edda', 'edda-password'));
    expect(locked.status).toBe(429);
    const res = await rawPcLogin(loginOn('edda', 'desk'));
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await res.json()) as { code: string }).code).toBe('rate_limited');

    // Nothing past the credential check ran.
    expect(await admin.listDevices({ ownerId: userId })).toEqual([]);
    expect(await admin.listWorkspaces({ ownerId: userId })).toEqual([]);
    const failures = await admin.listAudit({ action: 'auth.login_failed' });
    expect(failures.filter((e) => e.details.username === 'edda')).toHaveLength(3);
  });

  it('answers the device cache key when asked, the same one POST /devices/:id/cache-key gives', async () => {
    await newUser('fern');
    const client = server.anonymous();
    const answer = await client.pcLogin(loginOn('fern', 'desk', 'main', { cacheKey: true }));
    expect(answer.cacheKey).not.toBeNull();
    expect(Buffer.from(answer.cacheKey ?? '', 'base64')).toHaveLength(32);
    expect((await client.deviceCacheKey(answer.device.id)).key).toBe(answer.cacheKey);

    const res = await rawPcLogin(loginOn('fern', 'desk', 'main', { cacheKey: true }));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(((await res.json()) as PcLoginResponse).cacheKey).toBe(answer.cacheKey);
  });

  it('answers the current HEAD once a version was committed', async () => {
    await newUser('gwen');
    const client = server.anonymous();
    const first = await client.pcLogin(loginOn('gwen', 'desk'));
    const version = await commitTree(client, first, null);

    const again = await server.anonymous().pcLogin(loginOn('gwen', 'desk'));
    expect(again.head).toEqual(version);
    expect(again.head).toEqual(await client.getVersion(first.workspace.id, version.id));
    expect(again.workspace.headVersionId).toBe(version.id);
    // The same PC logging in again keeps its lease, under a new fencing token.
    expect(again.lease.acquiredAt).toBe(first.lease.acquiredAt);
    expect(again.lease.fencingToken).toBe(first.lease.fencingToken + 1);
  });

  it('refuses a disabled user like /auth/login does, before doing anything', async () => {
    const userId = await newUser('hana');
    await admin.updateUser(userId, { disabled: true });
    const viaLogin = await problemOf(server.anonymous().login('hana', 'hana-password'));
    const client = server.anonymous();
    const viaPcLogin = await problemOf(client.pcLogin(loginOn('hana', 'desk')));
    expect(viaPcLogin.status).toBe(403);
    expect(viaPcLogin.code).toBe(viaLogin.code);
    expect(viaPcLogin.code).toBe('user_disabled');
    expect(client.token).toBeUndefined();
    expect(await tokensOf(userId)).toBe(0);
    expect(await admin.listDevices({ ownerId: userId })).toEqual([]);
  });

  it('validates the body like the routes it stands for', async () => {
    await newUser('iris');
    const badName = await problemOf(server.anonymous().pcLogin(loginOn('iris', 'desk', '../etc')));
    expect(badName.code).toBe('validation_failed');
    const badTtl = await problemOf(
      server.anonymous().pcLogin(loginOn('iris', 'desk', 'main', { leaseTtlSeconds: 1 })),
    );
    expect(badTtl.code).toBe('validation_failed');
  });

  it('gives the lease to exactly one of several PCs racing to create the same workspace, which exists once', async () => {
    const userId = await newUser('june');
    // When two find no workspace, one creates it and the other's insert collides and finds that one
    // (not always hit: it depends on timing; the outcome must be the same either way). As many PCs
    // as the sign-in limit here (3): each try is counted before its password is checked, so a
    // fourth at once from the same address could be told to wait.
    const outcomes = await Promise.allSettled(
      ['a', 'b', 'c'].map((pc) => server.anonymous().pcLogin(loginOn('june', `pc-${pc}`, 'shared'))),
    );
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(outcomes.length - lost.length).toBe(1);
    expect(lost.map((o) => (o.reason as { code?: string }).code)).toEqual(['lease_held', 'lease_held']);
    const shared = (await admin.listWorkspaces({ ownerId: userId })).filter((w) => w.name === 'shared');
    expect(shared).toHaveLength(1);
  });
});
