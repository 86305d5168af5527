import { encodePack } from '@upc/image';
import { Stats, UpcClient } from '@upc/protocol';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitTree, randomObject, workspaceWithLease } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let admin: UpcClient;
let erin: UpcClient;
let db: pg.Client;
beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
  ({ client: erin } = await server.user('erin'));
  await server.user('frank');
  db = new pg.Client({ connectionString: server.databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await db.end();
  await server.close();
});

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** GET /stats, checked against the protocol and for the series' shapes. */
async function stats(): Promise<Stats> {
  const before = Date.now();
  const answer = Stats.parse(await admin.stats());
  const after = Date.now();
  expect(answer.activity).toHaveLength(24);
  answer.activity.forEach((entry, i) => {
    if (i > 0) expect(Date.parse(entry.hour) - Date.parse(answer.activity[i - 1]?.hour ?? '')).toBe(HOUR);
  });
  const lastHour = Date.parse(answer.activity[23]?.hour ?? '');
  expect(lastHour % HOUR).toBe(0);
  expect([Math.floor(before / HOUR) * HOUR, Math.floor(after / HOUR) * HOUR]).toContain(lastHour);
  expect(answer.storage).toHaveLength(30);
  answer.storage.forEach((entry, i) => {
    if (i === 0) return;
    const previous = answer.storage[i - 1];
    expect(Date.parse(entry.day) - Date.parse(previous?.day ?? '')).toBe(DAY);
    expect(entry.bytes).toBeGreaterThanOrEqual(previous?.bytes ?? 0);
  });
  expect([utcDay(before), utcDay(after)]).toContain(answer.storage[29]?.day);
  expect(answer.storage[29]?.bytes).toBe(answer.storageBytes);
  return answer;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('GET /stats', () => {
  it('is for admins only', async () => {
    const refused = await problemOf(erin.stats());
    expect(refused.status).toBe(403);
    expect(refused.code).toBe('forbidden');
    expect((await problemOf(server.anonymous().stats())).status).toBe(401);
  });

  it('counts users and workspaces, and all-zero series on an empty server', async () => {
    const empty = await stats();
    expect(empty).toMatchObject({ users: 3, workspaces: 0, storageBytes: 0, versionsToday: 0 });
    expect(empty.activity.every((entry) => entry.versions === 0)).toBe(true);
    expect(empty.storage.every((entry) => entry.bytes === 0)).toBe(true);
    const res = await fetch(`${server.url}/api/v1/stats`, {
      headers: { authorization: `Bearer ${admin.token ?? ''}` },
    });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('counts a commit in versionsToday and this hour, and stored objects and packs in storage', async () => {
    const before = await stats();
    const setup = await workspaceWithLease(erin, 'stats');
    await commitTree(erin, setup, null); // uploads a 101-byte tree object, then commits
    const object = randomObject(999);
    await erin.uploadObject(setup.workspace.id, object.hash, object.bytes);
    const pack = encodePack([randomObject(300), randomObject(20)]);
    await erin.uploadPack(setup.workspace.id, pack.hash, pack.bytes);

    const after = await stats();
    expect(after.workspaces).toBe(before.workspaces + 1);
    expect(after.versionsToday).toBe(before.versionsToday + 1);
    expect(sum(after.activity.map((e) => e.versions))).toBe(sum(before.activity.map((e) => e.versions)) + 1);
    expect(after.activity[23]?.versions).toBeGreaterThanOrEqual(1);
    expect(after.storageBytes).toBe(before.storageBytes + 101 + 1000 + pack.bytes.length);
    // The objects inside the pack are counted once, as the pack.
    const workspace = await erin.getWorkspace(setup.workspace.id);
    expect(after.storageBytes).toBe(workspace.storedBytes);
  });

  it('places versions by hour and stored bytes by day, from when they were created', async () => {
    const setup = await workspaceWithLease(erin, 'history');
    const versions = [];
    let parent: string | null = null;
    for (let i = 0; i < 3; i++) {
      const version = await commitTree(erin, setup, parent);
      versions.push(version);
      parent = version.id;
    }
    const old = randomObject(5000);
    const older = randomObject(7000);
    await erin.uploadObject(setup.workspace.id, old.hash, old.bytes);
    await erin.uploadObject(setup.workspace.id, older.hash, older.bytes);
    const before = await stats();
    // Back-date two versions (5 hours ago, and 2 days ago: outside both windows of versions)
    // and two objects (10 days ago, and 40 days ago: before the first day of the series).
    await db.query(`UPDATE versions SET created_at = now() - interval '5 hours' WHERE id = $1`, [
      versions[0]?.id,
    ]);
    await db.query(`UPDATE versions SET created_at = now() - interval '2 days' WHERE id = $1`, [
      versions[1]?.id,
    ]);
    await db.query(`UPDATE stored_objects SET created_at = now() - interval '10 days' WHERE hash = $1`, [
      old.hash,
    ]);
    await db.query(`UPDATE stored_objects SET created_at = now() - interval '40 days' WHERE hash = $1`, [
      older.hash,
    ]);
    const after = await stats();

    expect(after.storageBytes).toBe(before.storageBytes);
    const hourOf = (ms: number) => new Date(Math.floor(ms / HOUR) * HOUR).toISOString();
    const fiveHoursAgo = after.activity.find((e) => e.hour === hourOf(Date.now() - 5 * HOUR));
    expect(fiveHoursAgo?.versions).toBe(1);
    expect(sum(after.activity.map((e) => e.versions))).toBe(sum(before.activity.map((e) => e.versions)) - 1);
    // 2 days ago is not today; 5 hours ago is today only after 05:00 UTC.
    const movedOutOfToday = new Date().getUTCHours() >= 5 ? 1 : 2;
    expect(after.versionsToday).toBe(before.versionsToday - movedOutOfToday);

    // 5001 bytes stored since 10 days ago, 7001 since before the series starts.
    const at = (daysAgo: number) => after.storage.find((e) => e.day === utcDay(Date.now() - daysAgo * DAY));
    const first = after.storage[0]?.bytes ?? 0;
    expect(first).toBe(7001);
    expect((at(10)?.bytes ?? 0) - (at(11)?.bytes ?? 0)).toBe(5001);
    expect(at(11)?.bytes).toBe(first);
  });

  it('counts in UTC, and reads times right, whatever the database’s time zone', async () => {
    const name = new URL(server.databaseUrl).pathname.slice(1);
    await db.query(`ALTER DATABASE ${name} SET timezone TO 'Asia/Kolkata'`); // +05:30
    const other = await startTestServer({ databaseUrl: server.databaseUrl });
    try {
      const otherAdmin = await other.admin();
      const [here, there] = [await admin.stats(), await otherAdmin.stats()];
      expect(there).toEqual(here);
      expect(await otherAdmin.listWorkspaces()).toEqual(await admin.listWorkspaces());
    } finally {
      await other.close();
      await db.query(`ALTER DATABASE ${name} RESET timezone`);
    }
  });
});
