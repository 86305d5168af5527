import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpcClient } from '@upc/protocol';
import { commitTree, randomObject, storedTree, workspaceWithLease } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let carol: UpcClient;
beforeAll(async () => {
  server = await startTestServer();
  ({ client: carol } = await server.user('carol'));
});
afterAll(async () => {
  await server.close();
});

describe('commit: compare-and-swap of HEAD with the fencing token', () => {
  it('moves HEAD along a linear history', async () => {
    const setup = await workspaceWithLease(carol, 'linear');
    const { workspace } = setup;
    const first = await commitTree(carol, setup, null);
    const chunker = {
      algorithm: 'fastcdc-gear32' as const,
      minSize: 262144,
      avgSize: 1048576,
      maxSize: 4194304,
    };
    const second = await commitTree(carol, setup, first.id, { stats: { files: 3, bytes: 300 }, chunker });
    expect(first.chunker).toBeNull();
    expect(second.chunker).toEqual(chunker);
    expect(second.parentId).toBe(first.id);
    expect(second.stats).toEqual({ files: 3, bytes: 300 });
    expect((await carol.getWorkspace(workspace.id)).headVersionId).toBe(second.id);
    expect((await carol.listVersions(workspace.id)).map((v) => v.id)).toEqual([second.id, first.id]);
    expect(await carol.getVersion(workspace.id, first.id)).toEqual(first);
  });

  it('refuses a stale parent with 409 head_moved and leaves HEAD alone', async () => {
    const setup = await workspaceWithLease(carol, 'stale-parent');
    const { workspace } = setup;
    const first = await commitTree(carol, setup, null);
    const second = await commitTree(carol, setup, first.id);
    const problem = await problemOf(commitTree(carol, setup, first.id));
    expect(problem.status).toBe(409);
    expect(problem.code).toBe('head_moved');
    expect(problem.problem.head).toBe(second.id);
    expect((await carol.getWorkspace(workspace.id)).headVersionId).toBe(second.id);
    expect(await carol.listVersions(workspace.id)).toHaveLength(2);
  });

  it('refuses a stale fencing token with 409 and writes nothing', async () => {
    const setup = await workspaceWithLease(carol, 'stale-token');
    const { workspace, lease } = setup;
    const other = await carol.registerDevice({
      machineId: 'other-pc',
      name: 'other',
      os: 'linux',
      agentVersion: 't',
    });
    const taken = await carol.takeOverLease(workspace.id, other.id);
    expect(taken.fencingToken).toBeGreaterThan(lease.fencingToken);
    const auditBefore = (await (await server.admin()).listAudit({ workspaceId: workspace.id })).length;
    const problem = await problemOf(commitTree(carol, setup, null));
    expect(problem.status).toBe(409);
    expect(problem.code).toBe('stale_fencing_token');
    expect(problem.problem.holder).toMatchObject({
      deviceId: other.id,
      deviceName: 'other',
      username: 'carol',
    });
    expect((await carol.getWorkspace(workspace.id)).headVersionId).toBeNull();
    expect(await carol.listVersions(workspace.id)).toEqual([]);
    // only the object upload done above for the tree was audited, no version
    const audit = await (await server.admin()).listAudit({ workspaceId: workspace.id });
    expect(audit.filter((e) => e.action === 'version.commit')).toEqual([]);
    expect(audit.length).toBe(auditBefore + 1);
  });

  it('refuses the current token from a device that does not hold the lease', async () => {
    const setup = await workspaceWithLease(carol, 'wrong-device');
    const other = await carol.registerDevice({
      machineId: 'pc-3',
      name: 'third',
      os: 'linux',
      agentVersion: 't',
    });
    const problem = await problemOf(commitTree(carol, setup, null, { deviceId: other.id }));
    expect(problem.code).toBe('lease_not_held');
  });

  it('refuses a version whose objects are not stored yet (objects first, version second)', async () => {
    const { device, workspace, lease } = await workspaceWithLease(carol, 'objects-first');
    const tree = randomObject();
    const chunk = randomObject();
    const problem = await problemOf(
      carol.commit(workspace.id, {
        parentId: null,
        rootTree: tree.hash,
        kind: 'sync',
        deviceId: device.id,
        fencingToken: lease.fencingToken,
        objects: [chunk.hash],
      }),
    );
    expect(problem.code).toBe('missing_objects');
    expect(new Set(problem.problem.missing as string[])).toEqual(new Set([tree.hash, chunk.hash]));
    expect((await carol.getWorkspace(workspace.id)).headVersionId).toBeNull();
  });

  it('keeps a conflict version beside HEAD without moving it and without the lease', async () => {
    const { device, workspace, lease } = await workspaceWithLease(carol, 'conflicts');
    const base = { deviceId: device.id, fencingToken: lease.fencingToken };
    const first = await carol.commit(workspace.id, {
      ...base,
      kind: 'sync',
      parentId: null,
      rootTree: await storedTree(carol, workspace.id),
    });
    const other = await carol.registerDevice({
      machineId: 'pc-4',
      name: 'fourth',
      os: 'linux',
      agentVersion: 't',
    });
    await carol.takeOverLease(workspace.id, other.id);
    const conflict = await carol.commit(workspace.id, {
      ...base,
      kind: 'conflict',
      parentId: first.id,
      rootTree: await storedTree(carol, workspace.id),
    });
    expect(conflict.kind).toBe('conflict');
    expect((await carol.getWorkspace(workspace.id)).headVersionId).toBe(first.id);
    expect((await carol.listVersions(workspace.id)).map((v) => v.kind)).toEqual(['conflict', 'sync']);
  });

  it('names the bad field of a malformed commit with 400', async () => {
    const { workspace } = await workspaceWithLease(carol, 'malformed');
    const res = await fetch(`${server.url}/api/v1/workspaces/${workspace.id}/versions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol.token ?? ''}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        parentId: null,
        rootTree: 'not-a-hash',
        kind: 'sync',
        deviceId: workspace.id,
        fencingToken: 1,
      }),
    });
    expect(res.status).toBe(400);
    const problem = (await res.json()) as { code: string; detail: string; issues: { field: string }[] };
    expect(problem.code).toBe('validation_failed');
    expect(problem.issues.map((i) => i.field)).toEqual(['rootTree']);
    expect(problem.detail).toContain('rootTree');
  });
});
