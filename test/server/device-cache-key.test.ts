import { randomUUID } from 'node:crypto';
import { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let admin: UpcClient;
let rita: UpcClient;
let sam: UpcClient;
beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
  ({ client: rita } = await server.user('rita'));
  ({ client: sam } = await server.user('sam'));
});
afterAll(async () => {
  await server.close();
});

const pc = (client: UpcClient) =>
  client.registerDevice({ machineId: randomUUID(), name: 'pc', os: 'linux', agentVersion: 'test' });
const keyBytes = (key: string) => Buffer.from(key, 'base64');

describe('device cache keys', () => {
  it('are 32 bytes, never cached, and stable across calls and sign-ins of the owner', async () => {
    const device = await pc(rita);
    const { key } = await rita.deviceCacheKey(device.id);
    expect(keyBytes(key)).toHaveLength(32);
    expect(keyBytes(key).toString('base64')).toBe(key);
    expect((await rita.deviceCacheKey(device.id)).key).toBe(key);

    const again = new UpcClient({ baseUrl: server.url });
    await again.login('rita', 'rita-password');
    expect(again.token).not.toBe(rita.token);
    expect((await again.deviceCacheKey(device.id)).key).toBe(key);

    const res = await fetch(`${server.url}/api/v1/devices/${device.id}/cache-key`, {
      method: 'POST',
      headers: { authorization: `Bearer ${rita.token ?? ''}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ key });
  });

  it('are created once when several first calls race', async () => {
    const device = await pc(rita);
    const keys = await Promise.all(Array.from({ length: 8 }, () => rita.deviceCacheKey(device.id)));
    expect(new Set(keys.map((k) => k.key)).size).toBe(1);
    expect((await rita.deviceCacheKey(device.id)).key).toBe(keys[0]?.key);
  });

  it('are released to the owner only: another user and an admin get 404', async () => {
    const device = await pc(rita);
    const { key } = await rita.deviceCacheKey(device.id);
    for (const other of [sam, admin]) {
      const problem = await problemOf(other.deviceCacheKey(device.id));
      expect(problem.status).toBe(404);
      expect(problem.code).toBe('not_found');
      expect(JSON.stringify(problem.problem)).not.toContain(key);
    }
    expect((await problemOf(rita.deviceCacheKey(randomUUID()))).code).toBe('not_found');
    // An admin's own device is theirs like any other.
    const adminsPc = await pc(admin);
    expect(keyBytes((await admin.deviceCacheKey(adminsPc.id)).key)).toHaveLength(32);
  });

  it('are forgotten by the owner or an admin, and the next call creates a new one', async () => {
    const device = await pc(rita);
    const first = (await rita.deviceCacheKey(device.id)).key;
    expect((await problemOf(sam.revokeDeviceCacheKey(device.id))).code).toBe('not_found');
    expect((await rita.deviceCacheKey(device.id)).key).toBe(first);

    await rita.revokeDeviceCacheKey(device.id);
    const second = (await rita.deviceCacheKey(device.id)).key;
    expect(second).not.toBe(first);

    await admin.revokeDeviceCacheKey(device.id);
    await admin.revokeDeviceCacheKey(device.id); // twice is fine
    const third = (await rita.deviceCacheKey(device.id)).key;
    expect(keyBytes(third)).toHaveLength(32);
    expect([first, second]).not.toContain(third);
  });

  it('need a signed-in user', async () => {
    const device = await pc(rita);
    const anonymous = server.anonymous();
    for (const call of [anonymous.deviceCacheKey(device.id), anonymous.revokeDeviceCacheKey(device.id)]) {
      const problem = await problemOf(call);
      expect(problem.status).toBe(401);
      expect(problem.code).toBe('unauthenticated');
    }
  });

  it('are audited when forgotten, and never appear in the audit log or the device list', async () => {
    const device = await pc(rita);
    const { key } = await rita.deviceCacheKey(device.id);
    await admin.revokeDeviceCacheKey(device.id);
    const events = await admin.listAudit({ action: 'device.cache_key_revoked' });
    const event = events.find((e) => e.targetId === device.id);
    expect(event).toMatchObject({
      action: 'device.cache_key_revoked',
      targetType: 'device',
      actorId: (await admin.me()).id,
      details: { ownerId: device.ownerId, hadKey: true },
    });
    expect(JSON.stringify(await admin.listAudit({ limit: 500 }))).not.toContain(key);
    expect(JSON.stringify(await rita.listDevices())).not.toContain(key);
    expect(JSON.stringify(await rita.heartbeat(device.id))).not.toContain(key);
  });

  it('are documented in the OpenAPI, with the answer they give', async () => {
    const doc = (await (await fetch(`${server.url}/api/docs-json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const route = doc.paths['/api/v1/devices/{id}/cache-key'];
    expect(Object.keys(route ?? {}).sort()).toEqual(['delete', 'post']);
    expect(JSON.stringify(route?.post?.responses['200'])).toContain('"key"');
  });
});
