import type { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OBJECT_STORE } from '../../apps/server/src/repositories/tokens.js';
import { workspacePrefix } from '../../apps/server/src/services/storage-keys.js';
import type { ObjectStore } from '../../apps/server/src/store/object-store.js';
import { randomObject } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let admin: UpcClient;
beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
});
afterAll(async () => {
  await server.close();
});

async function keysUnder(prefix: string): Promise<string[]> {
  const store = server.server.app.get<symbol, ObjectStore>(OBJECT_STORE);
  const keys: string[] = [];
  for await (const key of store.listPrefix(prefix)) keys.push(key);
  return keys;
}

describe('users', () => {
  it('creates, lists, searches, refuses a taken name, and rejects a weak password naming the field', async () => {
    const frank = await admin.createUser({ username: 'frank', password: 'frank-password' });
    expect(frank).toMatchObject({ username: 'frank', role: 'user', disabled: false });
    expect((await admin.listUsers()).map((u) => u.username)).toEqual(
      expect.arrayContaining(['admin', 'frank']),
    );
    const res = await fetch(`${server.url}/api/v1/users?search=fra`, {
      headers: { authorization: `Bearer ${admin.token ?? ''}` },
    });
    expect(((await res.json()) as { username: string }[]).map((u) => u.username)).toEqual(['frank']);
    expect(
      (await problemOf(admin.createUser({ username: 'frank', password: 'another-password' }))).code,
    ).toBe('username_taken');
    const weak = await problemOf(admin.createUser({ username: 'gina', password: 'short' }));
    expect(weak.code).toBe('validation_failed');
    expect(weak.problem.detail).toContain('password');
  });

  it('disabling a user revokes their tokens and refuses their login; enabling lets them back', async () => {
    const { client: hank, id } = await server.user('hank');
    await admin.updateUser(id, { disabled: true });
    expect((await problemOf(hank.me())).status).toBe(401);
    const refused = await problemOf(server.anonymous().login('hank', 'hank-password'));
    expect(refused.code).toBe('user_disabled');
    await admin.updateUser(id, { disabled: false });
    await server.anonymous().login('hank', 'hank-password');
  });

  it('resetting a password revokes the old tokens and only the new password works', async () => {
    const { client: ivy, id } = await server.user('ivy');
    await admin.resetPassword(id, 'ivy-new-password');
    expect((await problemOf(ivy.me())).code).toBe('token_revoked');
    expect((await problemOf(server.anonymous().login('ivy', 'ivy-password'))).code).toBe(
      'invalid_credentials',
    );
    await server.anonymous().login('ivy', 'ivy-new-password');
  });

  it('deleting a user deletes their workspaces and every stored byte of them', async () => {
    const { client: jack, id } = await server.user('jack');
    const workspace = await jack.createWorkspace({ name: 'doomed' });
    const object = randomObject(500);
    await jack.uploadObject(workspace.id, object.hash, object.bytes);
    expect(await keysUnder(workspacePrefix(workspace.id))).toHaveLength(1);
    await admin.deleteUser(id);
    expect((await admin.listUsers()).map((u) => u.username)).not.toContain('jack');
    expect((await problemOf(admin.getWorkspace(workspace.id))).code).toBe('not_found');
    expect(await keysUnder(workspacePrefix(workspace.id))).toEqual([]);
    expect((await problemOf(server.anonymous().login('jack', 'jack-password'))).code).toBe(
      'invalid_credentials',
    );
  });

  it('never removes the last active admin', async () => {
    const me = await admin.me();
    expect((await problemOf(admin.updateUser(me.id, { disabled: true }))).code).toBe('last_admin');
    expect((await problemOf(admin.updateUser(me.id, { role: 'user' }))).code).toBe('last_admin');
    expect((await problemOf(admin.deleteUser(me.id))).code).toBe('last_admin');
    expect((await admin.me()).role).toBe('admin');
  });
});

describe('devices and workspaces', () => {
  it('registers a PC once per user and machine, and heartbeats move last-seen forward', async () => {
    const { client: kim } = await server.user('kim');
    const details = { machineId: 'lab-pc-7', name: 'lab-7', os: 'linux', agentVersion: '0.1.0' };
    const first = await kim.registerDevice(details);
    const again = await kim.registerDevice({ ...details, agentVersion: '0.2.0' });
    expect(again.id).toBe(first.id);
    expect(again.agentVersion).toBe('0.2.0');
    await new Promise((resolve) => setTimeout(resolve, 10));
    const beat = await kim.heartbeat(first.id);
    expect(Date.parse(beat.lastSeenAt)).toBeGreaterThan(Date.parse(first.lastSeenAt));
    expect((await kim.listDevices()).map((d) => d.id)).toEqual([first.id]);
    expect((await admin.listDevices()).map((d) => d.id)).toContain(first.id);
    // Every answer names the owner, whoever asks.
    expect([first, again, beat].map((d) => d.ownerName)).toEqual(['kim', 'kim', 'kim']);
    expect((await admin.heartbeat(first.id)).ownerName).toBe('kim');
    expect((await admin.listDevices()).find((d) => d.id === first.id)?.ownerName).toBe('kim');
  });

  it('creates, renames nothing, sets a policy, refuses a duplicate name, deletes', async () => {
    const { client: lee, id } = await server.user('lee');
    const workspace = await lee.createWorkspace({ name: 'Lab work' });
    expect(workspace).toMatchObject({
      ownerId: id,
      ownerName: 'lee',
      name: 'Lab work',
      policy: null,
      headVersionId: null,
      storedBytes: 0,
    });
    expect((await problemOf(lee.createWorkspace({ name: 'Lab work' }))).code).toBe('workspace_name_taken');
    const policy = { v: 1, platform: 'linux', rules: [{ kind: 'forward', path: '/opt' }] };
    expect(await lee.setPolicy(workspace.id, policy)).toMatchObject({ policy, ownerName: 'lee' });
    expect(await lee.getWorkspace(workspace.id)).toMatchObject({ policy, ownerName: 'lee' });
    expect(await admin.getWorkspace(workspace.id)).toMatchObject({ ownerName: 'lee' });
    expect(await admin.setQuota(workspace.id, 1_000_000)).toMatchObject({
      quotaBytes: 1_000_000,
      ownerName: 'lee',
    });
    expect((await lee.setPolicy(workspace.id, null)).policy).toBeNull();
    const bad = await problemOf(lee.createWorkspace({ name: '../etc' }));
    expect(bad.problem.detail).toContain('name');
    await lee.deleteWorkspace(workspace.id);
    expect(await lee.listWorkspaces()).toEqual([]);
  });

  it('lets an admin create a workspace for a user', async () => {
    const { client: max, id } = await server.user('max');
    const created = await admin.createWorkspace({ name: 'provisioned', ownerId: id });
    expect(created.ownerId).toBe(id);
    expect(created.ownerName).toBe('max'); // the owner's, not the admin's who made it
    expect((await max.listWorkspaces()).map((w) => w.id)).toEqual([created.id]);
  });
});

describe('audit', () => {
  it('records every change with its actor, and filters by actor, workspace and action', async () => {
    const { client: nora, id } = await server.user('nora');
    const workspace = await nora.createWorkspace({ name: 'audited' });
    await nora.setPolicy(workspace.id, { v: 1, platform: 'linux', rules: [] });
    const events = await admin.listAudit({ actorId: id });
    // Her sign-in is hers too: the user who signed in is its actor.
    expect(events.map((e) => e.action)).toEqual(['workspace.set_policy', 'workspace.create', 'auth.login']);
    expect(events[0]).toMatchObject({ actorId: id, workspaceId: workspace.id, targetType: 'workspace' });
    expect(events[0]?.address).toBe('127.0.0.1');
    const creates = await admin.listAudit({ action: 'user.create' });
    expect(creates.some((e) => e.details.username === 'nora')).toBe(true);
    const logins = await admin.listAudit({ action: 'auth.login', limit: 1 });
    expect(logins).toHaveLength(1);
    const older = await admin.listAudit({ before: Number(events[0]?.id) });
    expect(older.every((e) => Number(e.id) < Number(events[0]?.id))).toBe(true);
  });
});
