import { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceWithLease } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { serverProcessEnv, startServerProcess, type ServerProcess } from '../support/server-process.js';

let server: TestServer;
let erin: UpcClient;
beforeAll(async () => {
  server = await startTestServer();
  ({ client: erin } = await server.user('erin'));
});
afterAll(async () => {
  await server.close();
});

const pc = (client: UpcClient, name: string) =>
  client.registerDevice({ machineId: `machine-${name}`, name, os: 'linux', agentVersion: 'test' });

describe('leases', () => {
  it('refuses a second device while the first holds it, naming the holder and since when', async () => {
    const { workspace, lease, device } = await workspaceWithLease(erin, 'held');
    const laptop = await pc(erin, 'laptop');
    const problem = await problemOf(erin.acquireLease(workspace.id, laptop.id));
    expect(problem.status).toBe(409);
    expect(problem.code).toBe('lease_held');
    expect(problem.problem.holder).toEqual({
      deviceId: device.id,
      deviceName: device.name,
      userId: lease.userId,
      username: 'erin',
      since: lease.acquiredAt,
      expiresAt: lease.expiresAt,
    });
    expect((await erin.getLease(workspace.id))?.deviceId).toBe(device.id);
  });

  it('renews with the current token, refuses a stale one, and releases', async () => {
    const { workspace, lease, device } = await workspaceWithLease(erin, 'renew');
    const renewed = await erin.renewLease(workspace.id, device.id, lease.fencingToken);
    expect(renewed.fencingToken).toBe(lease.fencingToken);
    expect(Date.parse(renewed.expiresAt)).toBeGreaterThanOrEqual(Date.parse(lease.expiresAt));
    expect(renewed.acquiredAt).toBe(lease.acquiredAt);
    const stale = await problemOf(erin.renewLease(workspace.id, device.id, lease.fencingToken - 1));
    expect(stale.code).toBe('stale_fencing_token');
    expect(stale.problem.holder).toMatchObject({ deviceId: device.id });
    await erin.releaseLease(workspace.id, device.id, lease.fencingToken);
    await erin.releaseLease(workspace.id, device.id, lease.fencingToken); // twice is fine
    expect(await erin.getLease(workspace.id)).toBeNull();
    const laptop = await pc(erin, 'laptop-2');
    expect((await erin.acquireLease(workspace.id, laptop.id)).fencingToken).toBe(lease.fencingToken + 1);
  });

  it('lets another device in once the lease expires, and the old holder is then stale', async () => {
    const desk = await pc(erin, 'desk');
    const workspace = await erin.createWorkspace({ name: 'expiry' });
    const first = await erin.acquireLease(workspace.id, desk.id, 5);
    const laptop = await pc(erin, 'laptop-3');
    expect((await problemOf(erin.acquireLease(workspace.id, laptop.id))).code).toBe('lease_held');
    await new Promise((resolve) => setTimeout(resolve, 5200));
    const second = await erin.acquireLease(workspace.id, laptop.id);
    expect(second.fencingToken).toBe(first.fencingToken + 1);
    expect((await problemOf(erin.renewLease(workspace.id, desk.id, first.fencingToken))).code).toBe(
      'stale_fencing_token',
    );
  });

  it('takeover and force-release make the holder stale and are audited with the previous holder', async () => {
    const { workspace, lease, device } = await workspaceWithLease(erin, 'takeover');
    const laptop = await pc(erin, 'laptop-4');
    const taken = await erin.takeOverLease(workspace.id, laptop.id);
    expect(taken.fencingToken).toBe(lease.fencingToken + 1);
    expect((await problemOf(erin.renewLease(workspace.id, device.id, lease.fencingToken))).code).toBe(
      'stale_fencing_token',
    );
    const admin = await server.admin();
    await admin.forceReleaseLease(workspace.id);
    expect(await erin.getLease(workspace.id)).toBeNull();
    expect((await problemOf(erin.renewLease(workspace.id, laptop.id, taken.fencingToken))).code).toBe(
      'stale_fencing_token',
    );
    const audit = await admin.listAudit({ workspaceId: workspace.id, action: 'lease.' });
    expect(audit.map((e) => e.action)).toEqual(['lease.force_release', 'lease.takeover', 'lease.acquire']);
    expect(audit[0]?.details.previousHolder).toMatchObject({ deviceId: laptop.id, deviceName: 'laptop-4' });
    expect(audit[1]?.details.previousHolder).toMatchObject({ deviceId: device.id });
  });
});

describe('two server processes on one database', () => {
  const processes: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
  });

  it('honour one lease: of many concurrent acquires through both, exactly one wins', async () => {
    const env = serverProcessEnv(server.databaseUrl, 'warn');
    // Kept as each one starts, so that one failing to start does not leave the other running.
    const start = () =>
      startServerProcess(env).then((p) => {
        processes.push(p);
        return p;
      });
    await Promise.all([start(), start()]);
    const clients = processes.map((p) => new UpcClient({ baseUrl: p.url }));
    for (const client of clients) await client.login('erin', 'erin-password');
    const [one, two] = clients as [UpcClient, UpcClient];
    const workspace = await one.createWorkspace({ name: 'contended' });
    const devices = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? one : two).registerDevice({
          machineId: `contender-${i}`,
          name: `contender-${i}`,
          os: 'linux',
          agentVersion: 'test',
        }),
      ),
    );
    const outcomes = await Promise.allSettled(
      devices.map((device, i) => (i % 2 ? two : one).acquireLease(workspace.id, device.id)),
    );
    const winners = outcomes.filter((o) => o.status === 'fulfilled');
    expect(winners).toHaveLength(1);
    const losers = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(losers.map((l) => (l.reason as { code: string }).code)).toEqual(Array(7).fill('lease_held'));
    const winner = (winners[0] as PromiseFulfilledResult<{ deviceId: string; fencingToken: number }>).value;
    expect((await two.getLease(workspace.id))?.deviceId).toBe(winner.deviceId);
    expect((await one.getLease(workspace.id))?.fencingToken).toBe(winner.fencingToken);

    // a takeover through one process makes the winner's token stale through the other
    const loser = devices.find((d) => d.id !== winner.deviceId);
    if (!loser) throw new Error('fixture');
    await one.takeOverLease(workspace.id, loser.id);
    expect((await problemOf(two.renewLease(workspace.id, winner.deviceId, winner.fencingToken))).code).toBe(
      'stale_fencing_token',
    );
  });
});
