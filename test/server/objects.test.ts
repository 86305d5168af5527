import { encodeObject, encodePack, sha256Hex } from '@upc/image';
import type { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OBJECT_STORE } from '../../apps/server/src/repositories/tokens.js';
import { objectKey, packKey } from '../../apps/server/src/services/storage-keys.js';
import type { ObjectStore } from '../../apps/server/src/store/object-store.js';
import { randomObject } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

const MAX_OBJECT = 4096;
const MAX_PACK = 8192;
const MAX_JSON = 4096;

let server: TestServer;
let dave: UpcClient;
let workspaceId: string;
let store: ObjectStore;

beforeAll(async () => {
  server = await startTestServer({
    env: {
      UPC_MAX_OBJECT_BYTES: String(MAX_OBJECT),
      UPC_MAX_PACK_BYTES: String(MAX_PACK),
      UPC_MAX_JSON_BYTES: String(MAX_JSON),
    },
  });
  ({ client: dave } = await server.user('dave'));
  workspaceId = (await dave.createWorkspace({ name: 'objects' })).id;
  store = server.server.app.get<symbol, ObjectStore>(OBJECT_STORE);
});
afterAll(async () => {
  await server.close();
});

const api = (path: string) => `${server.url}/api/v1/workspaces/${workspaceId}${path}`;
const auth = () => ({ authorization: `Bearer ${dave.token ?? ''}` });

describe('objects', () => {
  it('stores a verified object once and reports only what is missing', async () => {
    const present = randomObject(999); // 1000 bytes stored
    const absent = randomObject(10);
    expect(await dave.missingObjects(workspaceId, [present.hash, absent.hash])).toEqual([
      present.hash,
      absent.hash,
    ]);
    expect(await dave.uploadObject(workspaceId, present.hash, present.bytes)).toEqual({
      hash: present.hash,
      size: 1000,
      created: true,
    });
    expect((await dave.uploadObject(workspaceId, present.hash, present.bytes)).created).toBe(false);
    expect(await dave.missingObjects(workspaceId, [present.hash, absent.hash, absent.hash])).toEqual([
      absent.hash,
    ]);
    expect(Buffer.from(await dave.downloadObject(workspaceId, present.hash)).equals(present.bytes)).toBe(
      true,
    );
    expect((await dave.getWorkspace(workspaceId)).storedBytes).toBeGreaterThanOrEqual(1000);
  });

  it('accepts a zstd-encoded object, checked against its plaintext, and refuses a malformed one', async () => {
    const plain = Buffer.from('compressible '.repeat(10_000));
    const encoded = await encodeObject(plain);
    expect(encoded.bytes[0]).toBe(1); // zstd paid off
    expect((await dave.uploadObject(workspaceId, encoded.hash, encoded.bytes)).size).toBe(
      encoded.bytes.length,
    );
    expect(Buffer.from(await dave.downloadObject(workspaceId, encoded.hash)).equals(encoded.bytes)).toBe(
      true,
    );
    const small = Buffer.from('small');
    const unknownFormat = Buffer.concat([Buffer.of(9), small]);
    const problem = await problemOf(dave.uploadObject(workspaceId, sha256Hex(small), unknownFormat));
    expect(problem.code).toBe('invalid_object');
  });

  it('refuses bytes that do not match their hash, and stores nothing', async () => {
    const claimed = randomObject(100);
    const sent = randomObject(100);
    const problem = await problemOf(dave.uploadObject(workspaceId, claimed.hash, sent.bytes));
    expect(problem.status).toBe(422);
    expect(problem.code).toBe('hash_mismatch');
    expect(problem.problem.detail).toContain(sent.hash);
    expect(await dave.missingObjects(workspaceId, [claimed.hash, sent.hash])).toEqual([
      claimed.hash,
      sent.hash,
    ]);
    expect(await store.size(objectKey(workspaceId, claimed.hash))).toBeUndefined();
    expect(await store.size(objectKey(workspaceId, sent.hash))).toBeUndefined();
    expect((await problemOf(dave.downloadObject(workspaceId, claimed.hash))).status).toBe(404);
  });

  it('serves byte ranges: 206 with Content-Range, suffixes, open ends, and 416 past the end', async () => {
    const object = randomObject(999); // 1000 bytes stored
    await dave.uploadObject(workspaceId, object.hash, object.bytes);
    const get = (range?: string) =>
      fetch(api(`/objects/${object.hash}`), { headers: { ...auth(), ...(range ? { range } : {}) } });

    const whole = await get();
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await whole.arrayBuffer()).equals(object.bytes)).toBe(true);

    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=10-19', 10, 19],
      ['bytes=990-', 990, 999],
      ['bytes=-5', 995, 999],
      ['bytes=900-5000', 900, 999],
    ];
    for (const [range, start, end] of cases) {
      const res = await get(range);
      expect(res.status, range).toBe(206);
      expect(res.headers.get('content-range'), range).toBe(`bytes ${start}-${end}/1000`);
      expect(Buffer.from(await res.arrayBuffer()).equals(object.bytes.subarray(start, end + 1)), range).toBe(
        true,
      );
    }
    const past = await get('bytes=1000-');
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */1000');
    expect(((await past.json()) as { code: string }).code).toBe('invalid_range');
  });

  it('stores a pack as one blob and serves each object in it alone, also by range', async () => {
    const objects = [randomObject(10), randomObject(0), randomObject(300), randomObject(1)];
    const pack = encodePack(objects);
    expect(await dave.uploadPack(workspaceId, pack.hash, pack.bytes)).toEqual({
      hash: pack.hash,
      size: pack.bytes.length,
      objects: 4,
      created: true,
    });
    expect(await store.size(packKey(workspaceId, pack.hash))).toBe(pack.bytes.length);
    expect(
      await dave.missingObjects(
        workspaceId,
        objects.map((o) => o.hash),
      ),
    ).toEqual([]);
    for (const object of objects) {
      expect(Buffer.from(await dave.downloadObject(workspaceId, object.hash)).equals(object.bytes)).toBe(
        true,
      );
      expect(await store.size(objectKey(workspaceId, object.hash))).toBeUndefined();
    }
    const big = objects[2];
    if (!big) throw new Error('fixture');
    const part = await dave.downloadObject(workspaceId, big.hash, { start: 100, end: 149 });
    expect(Buffer.from(part).equals(big.bytes.subarray(100, 150))).toBe(true);
  });

  it('refuses a pack whose contents do not match its index, and records none of it', async () => {
    const objects = [randomObject(50), randomObject(50)];
    const pack = encodePack(objects);
    const corrupted = Buffer.from(pack.bytes);
    corrupted[8 + 60] = (corrupted[8 + 60] ?? 0) ^ 0xff; // a byte of the second object
    const problem = await problemOf(dave.uploadPack(workspaceId, sha256Hex(corrupted), corrupted));
    expect(problem.code).toBe('invalid_pack');
    expect(problem.problem.detail).toContain(objects[1]?.hash);
    expect(
      await dave.missingObjects(
        workspaceId,
        objects.map((o) => o.hash),
      ),
    ).toHaveLength(2);
    expect((await problemOf(dave.uploadPack(workspaceId, objects[0]?.hash ?? '', pack.bytes))).code).toBe(
      'hash_mismatch',
    );
  });

  it('answers 413 for an object, a pack or a JSON body over its limit', async () => {
    const object = randomObject(MAX_OBJECT + 1);
    const tooBigObject = await problemOf(dave.uploadObject(workspaceId, object.hash, object.bytes));
    expect(tooBigObject.status).toBe(413);
    expect(tooBigObject.code).toBe('payload_too_large');

    const pack = encodePack([randomObject(MAX_PACK)]);
    const tooBigPack = await problemOf(dave.uploadPack(workspaceId, pack.hash, pack.bytes));
    expect(tooBigPack.status).toBe(413);

    const hashes = Array.from({ length: 100 }, () => randomObject(1).hash);
    const tooBigJson = await problemOf(dave.missingObjects(workspaceId, hashes));
    expect(tooBigJson.status).toBe(413);
    expect(tooBigJson.code).toBe('payload_too_large');
    expect(await store.size(objectKey(workspaceId, object.hash))).toBeUndefined();
  });

  it('answers 400 malformed_json for broken JSON and 415 for an upload that is not octet-stream', async () => {
    const broken = await fetch(api('/objects/missing'), {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: '{"hashes": [',
    });
    expect(broken.status).toBe(400);
    expect(broken.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await broken.json()) as Record<string, unknown>;
    expect(problem.code).toBe('malformed_json');
    expect(JSON.stringify(problem)).not.toMatch(/at .*\.(ts|js):\d+/); // no stack trace

    const object = randomObject(10);
    const wrongType = await fetch(api(`/objects/${object.hash}`), {
      method: 'PUT',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ bytes: 'x' }),
    });
    expect(wrongType.status).toBe(415);
  });

  it('names the field when a hash list is malformed', async () => {
    const problem = await problemOf(dave.missingObjects(workspaceId, ['abc']));
    expect(problem.status).toBe(400);
    expect(problem.code).toBe('validation_failed');
    expect(problem.problem.detail).toContain('hashes.0');
  });

  it('enforces a quota set by an admin', async () => {
    const admin = await server.admin();
    const quotaWs = await dave.createWorkspace({ name: 'quota' });
    expect((await admin.setQuota(quotaWs.id, 1500)).quotaBytes).toBe(1500);
    const first = randomObject(999);
    await dave.uploadObject(quotaWs.id, first.hash, first.bytes);
    const second = randomObject(999);
    const problem = await problemOf(dave.uploadObject(quotaWs.id, second.hash, second.bytes));
    expect(problem.code).toBe('quota_exceeded');
    expect(problem.problem.usedBytes).toBe(1000);
    expect((await problemOf(dave.setQuota(quotaWs.id, null))).code).toBe('forbidden');
  });
});
