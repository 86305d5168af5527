import { encodePack } from '@upc/image';
import {
  encodeObjectRecords,
  MAX_HASHES_PER_REQUEST,
  ObjectRecordFormatError,
  parseObjectRecords,
  UpcClient,
} from '@upc/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { OBJECT_STORE } from '../../apps/server/src/repositories/tokens.js';
import type { ObjectStore } from '../../apps/server/src/store/object-store.js';
import { randomObject } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Small enough that a few 1000-byte objects pass it.
const MAX_FETCH = 4096;
const RECORD_HEADER = 36;

let server: TestServer;
let erin: UpcClient;
let workspaceId: string;
let store: ObjectStore;

beforeAll(async () => {
  server = await startTestServer({ env: { UPC_MAX_FETCH_BYTES: String(MAX_FETCH) } });
  ({ client: erin } = await server.user('erin'));
  workspaceId = (await erin.createWorkspace({ name: 'fetch' })).id;
  store = server.server.app.get<symbol, ObjectStore>(OBJECT_STORE);
});
afterAll(async () => {
  await server.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** POST objects/fetch as it is on the wire. */
const fetchRaw = (body: unknown, id = workspaceId, token = erin.token) =>
  fetch(`${server.url}/api/v1/workspaces/${id}/objects/fetch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token ?? ''}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function records(hashes: string[]) {
  const res = await fetchRaw({ hashes });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/octet-stream');
  return parseObjectRecords(new Uint8Array(await res.arrayBuffer()));
}

const unknownHash = () => randomObject(8).hash;

describe('POST objects/fetch', () => {
  it('answers standalone and packed objects byte-identical to GET objects/:hash, in request order', async () => {
    const standalone = [randomObject(40), randomObject(1)];
    for (const object of standalone) await erin.uploadObject(workspaceId, object.hash, object.bytes);
    const packA = [randomObject(10), randomObject(300), randomObject(0), randomObject(77)];
    const packB = [randomObject(120), randomObject(5), randomObject(64)];
    for (const objects of [packA, packB]) {
      const pack = encodePack(objects);
      await erin.uploadPack(workspaceId, pack.hash, pack.bytes);
    }
    const [a0, a1, a2, a3] = packA;
    const [b0, b1, b2] = packB;
    const [s0, s1] = standalone;
    if (!a0 || !a1 || !a2 || !a3 || !b0 || !b1 || !b2 || !s0 || !s1) throw new Error('fixture');

    // Interleaved, with a pack's objects out of pack order and one object of each pack left out.
    const wanted = [b2, a2, s0, a0, b0, s1, a1];
    const missing = unknownHash();
    const asked = [...wanted.slice(0, 3).map((o) => o.hash), missing, ...wanted.slice(3).map((o) => o.hash)];

    const get = vi.spyOn(store, 'get');
    const answer = await records(asked);
    // One read per pack and one per standalone object.
    expect(get).toHaveBeenCalledTimes(4);
    expect(new Set(get.mock.calls.map(([key]) => key)).size).toBe(4);

    expect(answer.map((r) => r.hash)).toEqual(wanted.map((o) => o.hash));
    for (const record of answer) {
      const single = await erin.downloadObject(workspaceId, record.hash);
      expect(Buffer.from(record.bytes).equals(Buffer.from(single)), record.hash).toBe(true);
    }
    for (const [i, object] of wanted.entries()) {
      expect(Buffer.from(answer[i]?.bytes ?? []).equals(object.bytes)).toBe(true);
    }

    const map = await erin.fetchObjects(workspaceId, asked);
    expect([...map.keys()]).toEqual(wanted.map((o) => o.hash));
    expect(map.has(missing)).toBe(false);
    for (const object of wanted)
      expect(Buffer.from(map.get(object.hash) ?? []).equals(object.bytes)).toBe(true);
  });

  it('answers a hash asked for twice once, where it first appears', async () => {
    const [x, y] = [randomObject(20), randomObject(30)];
    await erin.uploadObject(workspaceId, x.hash, x.bytes);
    await erin.uploadObject(workspaceId, y.hash, y.bytes);
    expect((await records([y.hash, x.hash, y.hash])).map((r) => r.hash)).toEqual([y.hash, x.hash]);
  });

  it('leaves out objects the workspace does not have: an empty body when it has none', async () => {
    const unknown = [unknownHash(), unknownHash()];
    const res = await fetchRaw({ hashes: unknown });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    expect((await erin.fetchObjects(workspaceId, unknown)).size).toBe(0);

    // Objects of another workspace, even of the same user, are not this one's.
    const other = await erin.createWorkspace({ name: 'fetch-other' });
    const object = randomObject(10);
    await erin.uploadObject(other.id, object.hash, object.bytes);
    expect(await records([object.hash])).toEqual([]);
  });

  it("answers 404 for another user's workspace and for one that does not exist", async () => {
    const object = randomObject(10);
    await erin.uploadObject(workspaceId, object.hash, object.bytes);
    const { client: mallory } = await server.user('mallory');
    const theirs = await problemOf(mallory.fetchObjects(workspaceId, [object.hash]));
    expect(theirs.status).toBe(404);
    expect(theirs.code).toBe('not_found');
    const nowhere = await problemOf(erin.fetchObjects('00000000-0000-4000-8000-000000000000', [object.hash]));
    expect(nowhere.status).toBe(404);
    expect((await problemOf(server.anonymous().fetchObjects(workspaceId, [object.hash]))).status).toBe(401);
  });

  it('answers 400 validation_failed for a body that is not 1 to 10,000 hashes', async () => {
    const bodies: [unknown, string][] = [
      [{ hashes: ['abc'] }, 'hashes.0'],
      [{ hashes: [] }, 'hashes'],
      [{}, 'hashes'],
      [{ hashes: 'x'.repeat(64) }, 'hashes'],
      [{ hashes: Array.from({ length: MAX_HASHES_PER_REQUEST + 1 }, unknownHash) }, 'hashes'],
    ];
    for (const [body, field] of bodies) {
      const res = await fetchRaw(body);
      expect(res.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      const problem = (await res.json()) as { code: string; detail: string };
      expect(problem.code).toBe('validation_failed');
      expect(problem.detail).toContain(field);
    }
    const most = await fetchRaw({ hashes: Array.from({ length: MAX_HASHES_PER_REQUEST }, unknownHash) });
    expect(most.status).toBe(200);
  });

  it('stops before the cap, always with one record, and answers the rest when asked again', async () => {
    // 1000 bytes stored, 1036 a record: three fit in 4096, four do not.
    const loose = Array.from({ length: 3 }, () => randomObject(999));
    for (const object of loose) await erin.uploadObject(workspaceId, object.hash, object.bytes);
    const packed = Array.from({ length: 4 }, () => randomObject(999));
    const pack = encodePack(packed);
    await erin.uploadPack(workspaceId, pack.hash, pack.bytes);
    const all = [...packed.slice(0, 2), ...loose, ...packed.slice(2)];
    const missing = unknownHash();
    const asked = [...all.slice(0, 3).map((o) => o.hash), missing, ...all.slice(3).map((o) => o.hash)];

    const got: string[] = [];
    let rounds = 0;
    let remaining = asked;
    while (remaining.length > 0) {
      const answer = await records(remaining);
      rounds++;
      if (answer.length === 0) break;
      const size = answer.reduce((sum, r) => sum + RECORD_HEADER + r.bytes.length, 0);
      expect(size).toBeLessThanOrEqual(MAX_FETCH);
      for (const record of answer) {
        const object = all.find((o) => o.hash === record.hash);
        expect(object && Buffer.from(record.bytes).equals(object.bytes)).toBe(true);
        got.push(record.hash);
      }
      const last = answer.at(-1)?.hash ?? '';
      remaining = remaining.slice(remaining.indexOf(last) + 1);
    }
    expect(got).toEqual(all.map((o) => o.hash));
    expect(rounds).toBe(3); // 3 + 3 + 1 records

    const map = await erin.fetchObjects(workspaceId, asked);
    expect([...map.keys()]).toEqual(all.map((o) => o.hash));

    // An object bigger than the cap comes alone, and never after another record.
    const big = randomObject(MAX_FETCH + 100);
    await erin.uploadObject(workspaceId, big.hash, big.bytes);
    const first = loose[0];
    if (!first) throw new Error('fixture');
    expect((await records([big.hash, first.hash])).map((r) => r.hash)).toEqual([big.hash]);
    expect((await records([first.hash, big.hash])).map((r) => r.hash)).toEqual([first.hash]);
    const both = await erin.fetchObjects(workspaceId, [first.hash, big.hash]);
    expect(Buffer.from(both.get(big.hash) ?? []).equals(big.bytes)).toBe(true);
  });
});

describe('object records', () => {
  const a = randomObject(50);
  const b = randomObject(0);
  const body = encodeObjectRecords([a, b]);

  it('round-trips, ids raw and lengths big-endian', () => {
    expect(body.length).toBe(2 * RECORD_HEADER + a.bytes.length + b.bytes.length);
    expect(Buffer.from(body.subarray(0, 32)).toString('hex')).toBe(a.hash);
    expect(Buffer.from(body.subarray(32, 36)).readUInt32BE()).toBe(a.bytes.length);
    const parsed = parseObjectRecords(body);
    expect(parsed.map((r) => r.hash)).toEqual([a.hash, b.hash]);
    expect(Buffer.from(parsed[0]?.bytes ?? []).equals(a.bytes)).toBe(true);
    expect(Buffer.from(parsed[1]?.bytes ?? []).equals(b.bytes)).toBe(true);
    expect(parseObjectRecords(new Uint8Array(0))).toEqual([]);
  });

  it('throws on a body cut short, inside a header or inside the bytes', () => {
    for (const cut of [1, 20, RECORD_HEADER - 1, RECORD_HEADER + 10, RECORD_HEADER + a.bytes.length + 5]) {
      const short = body.subarray(0, cut);
      expect(() => parseObjectRecords(short), `cut at ${cut}`).toThrow(ObjectRecordFormatError);
      expect(() => parseObjectRecords(short), `cut at ${cut}`).toThrow(/truncated record/);
    }
    expect(() => parseObjectRecords(body.subarray(0, body.length - 1))).toThrow(/truncated record 1/);
  });

  it('makes the client refuse an answer that is cut short or names an object not asked for', async () => {
    const answering = (bytes: Uint8Array) =>
      new UpcClient({
        baseUrl: 'http://upc.invalid',
        fetch: () =>
          Promise.resolve(
            new Response(bytes, { status: 200, headers: { 'content-type': 'application/octet-stream' } }),
          ),
      });
    const id = '00000000-0000-4000-8000-000000000000';
    await expect(answering(body).fetchObjects(id, [a.hash])).rejects.toThrow(/not asked for/);
    await expect(answering(body.subarray(0, 40)).fetchObjects(id, [a.hash, b.hash])).rejects.toThrow(
      ObjectRecordFormatError,
    );
    await expect(answering(encodeObjectRecords([b, a])).fetchObjects(id, [a.hash, b.hash])).rejects.toThrow(
      /out of order/,
    );
    const fine = await answering(body).fetchObjects(id, [a.hash, b.hash]);
    expect([...fine.keys()]).toEqual([a.hash, b.hash]);
  });
});
