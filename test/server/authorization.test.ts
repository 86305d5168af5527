import type { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomObject, workspaceWithLease } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let alice: UpcClient;
let bob: UpcClient;
let aliceId: string;
let a: Awaited<ReturnType<typeof workspaceWithLease>> & { versionId: string; object: string };

beforeAll(async () => {
  server = await startTestServer();
  ({ client: alice, id: aliceId } = await server.user('alice'));
  ({ client: bob } = await server.user('bob'));
  const setup = await workspaceWithLease(alice, 'alice-ws');
  const object = randomObject();
  await alice.uploadObject(setup.workspace.id, object.hash, object.bytes);
  const version = await alice.commit(setup.workspace.id, {
    parentId: null,
    rootTree: object.hash,
    kind: 'sync',
    deviceId: setup.device.id,
    fencingToken: setup.lease.fencingToken,
  });
  a = { ...setup, versionId: version.id, object: object.hash };
});
afterAll(async () => {
  await server.close();
});

describe("another user's workspace is invisible", () => {
  const attempts: [string, () => Promise<unknown>][] = [
    ['get the workspace', () => bob.getWorkspace(a.workspace.id)],
    ['set its policy', () => bob.setPolicy(a.workspace.id, { v: 1, platform: 'linux', rules: [] })],
    ['delete it', () => bob.deleteWorkspace(a.workspace.id)],
    ['ask which objects are missing', () => bob.missingObjects(a.workspace.id, [a.object])],
    [
      'upload an object into it',
      () => bob.uploadObject(a.workspace.id, randomObject().hash, Buffer.alloc(0)),
    ],
    ['download its object', () => bob.downloadObject(a.workspace.id, a.object)],
    ['list its versions', () => bob.listVersions(a.workspace.id)],
    ['get its version', () => bob.getVersion(a.workspace.id, a.versionId)],
    [
      'commit to it',
      () =>
        bob.commit(a.workspace.id, {
          parentId: a.versionId,
          rootTree: a.object,
          kind: 'sync',
          deviceId: a.device.id,
          fencingToken: a.lease.fencingToken,
        }),
    ],
    ['read its lease', () => bob.getLease(a.workspace.id)],
    ['acquire its lease', () => bob.acquireLease(a.workspace.id, a.device.id)],
    ['renew its lease', () => bob.renewLease(a.workspace.id, a.device.id, a.lease.fencingToken)],
    ['release its lease', () => bob.releaseLease(a.workspace.id, a.device.id, a.lease.fencingToken)],
    ['take over its lease', () => bob.takeOverLease(a.workspace.id, a.device.id)],
    ['force-release its lease', () => bob.forceReleaseLease(a.workspace.id)],
    ["send a heartbeat for alice's device", () => bob.heartbeat(a.device.id)],
  ];

  it.each(attempts)('bob cannot %s (404)', async (_what, attempt) => {
    const problem = await problemOf(attempt());
    expect(problem.status).toBe(404);
    expect(problem.code).toBe('not_found');
  });

  it("bob's lists do not show alice's workspaces or devices", async () => {
    expect(await bob.listWorkspaces()).toEqual([]);
    expect(await bob.listWorkspaces({ ownerId: aliceId })).toEqual([]);
    expect(await bob.listDevices({ ownerId: aliceId })).toEqual([]);
  });

  it("bob cannot use alice's device on his own workspace", async () => {
    const own = await bob.createWorkspace({ name: 'bob-ws' });
    expect((await problemOf(bob.acquireLease(own.id, a.device.id))).code).toBe('not_found');
  });

  it('nothing bob tried changed anything', async () => {
    const workspace = await alice.getWorkspace(a.workspace.id);
    expect(workspace.headVersionId).toBe(a.versionId);
    expect(workspace.policy).toBeNull();
    expect((await alice.getLease(a.workspace.id))?.fencingToken).toBe(a.lease.fencingToken);
    expect(await alice.listVersions(a.workspace.id)).toHaveLength(1);
  });

  it('an admin sees and reads every workspace', async () => {
    const admin = await server.admin();
    expect((await admin.listWorkspaces()).map((w) => w.id)).toContain(a.workspace.id);
    expect(Buffer.from(await admin.downloadObject(a.workspace.id, a.object)).length).toBe(65);
    expect(await admin.listVersions(a.workspace.id)).toHaveLength(1);
  });
});

describe('admin endpoints refuse non-admins with 403', () => {
  const attempts: [string, () => Promise<unknown>][] = [
    ['list users', () => bob.listUsers()],
    ['create a user', () => bob.createUser({ username: 'mallory', password: 'mallory-password' })],
    ['disable a user', () => bob.updateUser(aliceId, { disabled: true })],
    ['make themselves admin', () => bob.updateUser(aliceId, { role: 'admin' })],
    ["reset someone's password", () => bob.resetPassword(aliceId, 'new-password-1')],
    ['delete a user', () => bob.deleteUser(aliceId)],
    ['read the audit log', () => bob.listAudit()],
    ['create a workspace for someone else', () => bob.createWorkspace({ name: 'x', ownerId: aliceId })],
  ];

  it.each(attempts)('bob cannot %s', async (_what, attempt) => {
    const problem = await problemOf(attempt());
    expect(problem.status).toBe(403);
    expect(problem.code).toBe('forbidden');
  });

  it('and alice is untouched', async () => {
    const admin = await server.admin();
    const users = await admin.listUsers();
    expect(users.find((u) => u.id === aliceId)).toMatchObject({ disabled: false, role: 'user' });
    expect(users.map((u) => u.username)).not.toContain('mallory');
  });
});
