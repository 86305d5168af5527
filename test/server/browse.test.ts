import { randomBytes } from 'node:crypto';
import { encodeObject, type Entry, hashTree } from '@upc/image';
import { MAX_DIFF_CHANGES, type UpcClient, type Version } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspaceWithLease } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

const MTIME = 1_700_000_000_123_456; // µs: 2023-11-14T22:13:20.123456Z
const base = { mtime: MTIME, owner: 'user' as const, group: 'user' as const };

let server: TestServer;
let alice: UpcClient;
let bob: UpcClient;
let admin: UpcClient;

/** Uploads one object (its stored form, as the agent would) and returns its id. */
async function put(client: UpcClient, workspaceId: string, plaintext: Uint8Array): Promise<string> {
  const encoded = await encodeObject(plaintext);
  await client.uploadObject(workspaceId, encoded.hash, encoded.bytes);
  return encoded.hash;
}

/** A file entry whose content is uploaded in chunks of at most `chunkSize` bytes. */
async function file(
  client: UpcClient,
  workspaceId: string,
  name: string,
  content: Buffer,
  chunkSize = 1 << 20,
): Promise<Entry> {
  const chunks: string[] = [];
  for (let at = 0; at < content.length; at += chunkSize) {
    chunks.push(await put(client, workspaceId, content.subarray(at, at + chunkSize)));
  }
  return { ...base, name, type: 'file', mode: 0o644, size: content.length, chunks };
}

async function dir(client: UpcClient, workspaceId: string, name: string, entries: Entry[]): Promise<Entry> {
  return { ...base, name, type: 'dir', mode: 0o755, tree: await tree(client, workspaceId, entries) };
}

async function tree(client: UpcClient, workspaceId: string, entries: Entry[]): Promise<string> {
  const { bytes } = hashTree({ entries });
  return put(client, workspaceId, bytes);
}

type Setup = Awaited<ReturnType<typeof workspaceWithLease>>;

async function commit(client: UpcClient, setup: Setup, parentId: string | null, rootTree: string) {
  return client.commit(setup.workspace.id, {
    kind: 'sync',
    deviceId: setup.device.id,
    fencingToken: setup.lease.fencingToken,
    parentId,
    rootTree,
  });
}

const readme1 = Buffer.from('# hello\n');
const readme2 = Buffer.from('# hello, again\n');
const small = Buffer.from('hello');
const big = randomBytes(2.5 * 1024 * 1024 + 123); // three chunks, the last a partial one
const unicodeName = "résumé (1)'s *.txt";

let setup: Setup;
let ws: string;
let v1: Version;
let v2: Version;

/**
 * v1: README, etc/{hosts,passwd}, home/docs/{a.txt,big.bin,résumé…}, home/link -> docs/a.txt, wh (whiteout)
 * v2: README changed, etc/ gone, home/docs/a.txt gone, home/docs/new.txt added
 */
beforeAll(async () => {
  server = await startTestServer();
  ({ client: alice } = await server.user('alice'));
  ({ client: bob } = await server.user('bob'));
  admin = await server.admin();
  setup = await workspaceWithLease(alice, 'browse');
  ws = setup.workspace.id;
  const a = await file(alice, ws, 'a.txt', small);
  const bigEntry = await file(alice, ws, 'big.bin', big);
  const unicode = await file(alice, ws, unicodeName, Buffer.from('cv'));
  const link: Entry = { ...base, name: 'link', type: 'symlink', mode: 0o777, target: 'docs/a.txt' };
  const whiteout: Entry = { ...base, name: 'wh', type: 'whiteout', mode: 0 };
  const etc = await dir(alice, ws, 'etc', [
    await file(alice, ws, 'hosts', Buffer.from('127.0.0.1 localhost\n')),
    await file(alice, ws, 'passwd', Buffer.from('root:x:0:0::/root:/bin/sh\n')),
  ]);
  const docs1 = await dir(alice, ws, 'docs', [a, bigEntry, unicode]);
  const root1 = await tree(alice, ws, [
    await file(alice, ws, 'README', readme1),
    etc,
    await dir(alice, ws, 'home', [docs1, link]),
    whiteout,
  ]);
  v1 = await commit(alice, setup, null, root1);
  const docs2 = await dir(alice, ws, 'docs', [bigEntry, unicode, await file(alice, ws, 'new.txt', small)]);
  const root2 = await tree(alice, ws, [
    await file(alice, ws, 'README', readme2),
    await dir(alice, ws, 'home', [docs2, link]),
    whiteout,
  ]);
  v2 = await commit(alice, setup, v1.id, root2);
});
afterAll(async () => {
  await server.close();
});

describe('browsing a version', () => {
  it('lists the root: folders first, then by name, with sizes, modes, mtimes and targets', async () => {
    const listing = await alice.listTree(ws, v1.id);
    expect(listing.versionId).toBe(v1.id);
    expect(listing.path).toBe('');
    expect(listing.entries).toEqual([
      { name: 'etc', type: 'dir', size: null, mode: 0o755, mtime: '2023-11-14T22:13:20.123456Z' },
      { name: 'home', type: 'dir', size: null, mode: 0o755, mtime: '2023-11-14T22:13:20.123456Z' },
      {
        name: 'README',
        type: 'file',
        size: readme1.length,
        mode: 0o644,
        mtime: '2023-11-14T22:13:20.123456Z',
      },
      { name: 'wh', type: 'whiteout', size: null, mode: 0, mtime: '2023-11-14T22:13:20.123456Z' },
    ]);
  });

  it('lists a subfolder, including a symlink with its target', async () => {
    const home = await alice.listTree(ws, v1.id, 'home');
    expect(home.entries.map((e) => [e.name, e.type, e.target])).toEqual([
      ['docs', 'dir', undefined],
      ['link', 'symlink', 'docs/a.txt'],
    ]);
    const docs = await alice.listTree(ws, v1.id, 'home/docs');
    expect(docs.path).toBe('home/docs');
    expect(docs.entries.map((e) => [e.name, e.size])).toEqual([
      ['a.txt', small.length],
      ['big.bin', big.length],
      [unicodeName, 2],
    ]);
  });

  it('pages a folder: limit entries from offset, folders first, with the total', async () => {
    const names = ['etc', 'home', 'README', 'wh'];
    const whole = await alice.listTree(ws, v1.id);
    expect([whole.total, whole.offset, whole.entries.map((e) => e.name)]).toEqual([4, 0, names]);
    const pages = [];
    for (let offset = 0; offset < 4; offset += 3)
      pages.push(await alice.listTree(ws, v1.id, '', { offset, limit: 3 }));
    expect(pages.map((p) => [p.total, p.offset, p.entries.map((e) => e.name)])).toEqual([
      [4, 0, names.slice(0, 3)],
      [4, 3, names.slice(3)],
    ]);
    expect((await alice.listTree(ws, v1.id, '', { offset: 10 })).entries).toEqual([]);
    for (const page of [{ limit: 0 }, { limit: 5001 }, { offset: -1 }]) {
      const problem = await problemOf(alice.listTree(ws, v1.id, '', page));
      expect([page, problem.status, problem.code]).toEqual([page, 400, 'validation_failed']);
    }
  });

  it('answers 404 for a path that is missing or not a folder, and for an unknown version', async () => {
    for (const path of ['nope', 'home/nope', 'README', 'home/link', 'home/docs/a.txt/x']) {
      const problem = await problemOf(alice.listTree(ws, v1.id, path));
      expect([path, problem.status, problem.code]).toEqual([path, 404, 'not_found']);
    }
    expect((await problemOf(alice.listTree(ws, crypto.randomUUID()))).status).toBe(404);
  });

  it('refuses absolute paths, "..", ".", empty segments and NUL with 400', async () => {
    for (const path of ['/home', '/', 'home/../etc', '..', 'home/./docs', 'home//docs', 'home/', 'a\0b']) {
      const tree = await problemOf(alice.listTree(ws, v1.id, path));
      expect([path, tree.status, tree.code]).toEqual([path, 400, 'validation_failed']);
      const download = await problemOf(alice.downloadFile(ws, v1.id, path));
      expect([path, download.status]).toEqual([path, 400]);
    }
  });

  it('downloads a small file with attachment headers', async () => {
    const res = await fetch(
      `${server.url}/api/v1/workspaces/${ws}/versions/${v1.id}/file?path=${encodeURIComponent(`home/docs/${unicodeName}`)}`,
      { headers: { authorization: `Bearer ${alice.token ?? ''}` } },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe('2');
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    expect(res.headers.get('content-disposition')).toBe(
      "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20%281%29%27s%20%2A.txt",
    );
    expect(Buffer.from(await res.arrayBuffer()).toString()).toBe('cv');
    expect(Buffer.from(await alice.downloadFile(ws, v1.id, 'README')).equals(readme1)).toBe(true);
    expect(Buffer.from(await alice.downloadFile(ws, v2.id, 'README')).equals(readme2)).toBe(true);
  });

  it('streams a multi-chunk file over 1 MiB with the exact bytes and length', async () => {
    const res = await fetch(
      `${server.url}/api/v1/workspaces/${ws}/versions/${v1.id}/file?path=home/docs/big.bin`,
      {
        headers: { authorization: `Bearer ${alice.token ?? ''}` },
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(big.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(big)).toBe(true);
    expect(Buffer.from(await alice.downloadFile(ws, v2.id, 'home/docs/big.bin')).equals(big)).toBe(true);
  });

  it('answers 404 for a missing file and 400 for something that is not a regular file', async () => {
    expect((await problemOf(alice.downloadFile(ws, v1.id, 'home/docs/nope'))).status).toBe(404);
    expect((await problemOf(alice.downloadFile(ws, v2.id, 'home/docs/a.txt'))).status).toBe(404);
    expect((await problemOf(alice.downloadFile(ws, v1.id, 'etc/hosts/x'))).status).toBe(404);
    for (const path of ['home', 'home/link', 'wh']) {
      const problem = await problemOf(alice.downloadFile(ws, v1.id, path));
      expect([path, problem.status, problem.code]).toEqual([path, 400, 'validation_failed']);
    }
  });
});

describe('a corrupt file', () => {
  it('is cut off, never served as complete, when its chunks hold fewer bytes than its size', async () => {
    const broken = await workspaceWithLease(alice, 'broken');
    const id = broken.workspace.id;
    const entry = await file(alice, id, 'short', randomBytes(300_000));
    if (entry.type === 'file') entry.size = 600_000;
    const root = await tree(alice, id, [entry]);
    const version = await commit(alice, broken, null, root);
    const res = await fetch(`${server.url}/api/v1/workspaces/${id}/versions/${version.id}/file?path=short`, {
      headers: { authorization: `Bearer ${alice.token ?? ''}` },
    });
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
  });
});

describe('diff against the parent', () => {
  it('lists everything as added for a version without a parent', async () => {
    const diff = await alice.diffVersion(ws, v1.id);
    expect(diff).toEqual({
      versionId: v1.id,
      parentId: null,
      truncated: false,
      changes: [
        { path: 'README', change: 'added', type: 'file', sizeBefore: null, sizeAfter: readme1.length },
        { path: 'etc', change: 'added', type: 'dir', sizeBefore: null, sizeAfter: null },
        { path: 'home', change: 'added', type: 'dir', sizeBefore: null, sizeAfter: null },
        { path: 'wh', change: 'added', type: 'whiteout', sizeBefore: null, sizeAfter: null },
      ],
    });
  });

  it('reports added, removed and modified paths with their sizes', async () => {
    const diff = await alice.diffVersion(ws, v2.id);
    expect(diff.parentId).toBe(v1.id);
    expect(diff.truncated).toBe(false);
    expect(diff.changes).toEqual([
      {
        path: 'README',
        change: 'modified',
        type: 'file',
        sizeBefore: readme1.length,
        sizeAfter: readme2.length,
      },
      { path: 'etc', change: 'removed', type: 'dir', sizeBefore: null, sizeAfter: null },
      { path: 'home/docs/a.txt', change: 'removed', type: 'file', sizeBefore: small.length, sizeAfter: null },
      { path: 'home/docs/new.txt', change: 'added', type: 'file', sizeBefore: null, sizeAfter: small.length },
    ]);
  });
});

describe('a large diff', () => {
  it('stops at MAX_DIFF_CHANGES with truncated: true', async () => {
    const wide = await workspaceWithLease(alice, 'wide');
    const id = wide.workspace.id;
    const one = await file(alice, id, 'x', small);
    const entries = Array.from({ length: MAX_DIFF_CHANGES + 1 }, (_, i) => ({
      ...one,
      name: `f${String(i).padStart(6, '0')}`,
    }));
    const version = await commit(alice, wide, null, await tree(alice, id, entries));
    const diff = await alice.diffVersion(id, version.id);
    expect(diff.truncated).toBe(true);
    expect(diff.changes).toHaveLength(MAX_DIFF_CHANGES);
    expect(diff.changes.at(-1)?.path).toBe(`f${String(MAX_DIFF_CHANGES - 1).padStart(6, '0')}`);
  });
});

describe("another user's workspace", () => {
  it('answers 404 to all four endpoints, and lets an admin in', async () => {
    const attempts = [
      () => bob.listTree(ws, v1.id),
      () => bob.downloadFile(ws, v1.id, 'README'),
      () => bob.diffVersion(ws, v1.id),
      () => bob.restore(ws, { versionId: v1.id }),
    ];
    for (const attempt of attempts) {
      const problem = await problemOf(attempt());
      expect([problem.status, problem.code]).toEqual([404, 'not_found']);
    }
    expect((await admin.listTree(ws, v1.id, 'home/docs')).entries).toHaveLength(3);
    expect((await admin.diffVersion(ws, v2.id)).changes).toHaveLength(4);
    expect(Buffer.from(await admin.downloadFile(ws, v1.id, 'README')).equals(readme1)).toBe(true);
    expect((await alice.getWorkspace(ws)).headVersionId).toBe(v2.id);
  });
});

describe('restore', () => {
  it('is refused with 409 lease_held, naming the PC, while a device holds the lease; then allowed', async () => {
    const refused = await problemOf(alice.restore(ws, { versionId: v1.id }));
    expect([refused.status, refused.code]).toEqual([409, 'lease_held']);
    expect(refused.problem.holder).toMatchObject({ deviceId: setup.device.id, deviceName: 'pc-browse' });
    expect(refused.message).toContain('pc-browse');
    expect((await alice.getWorkspace(ws)).headVersionId).toBe(v2.id);
    await alice.releaseLease(ws, setup.device.id, setup.lease.fencingToken);

    // One path that existed then: only that path changes.
    const restored = await alice.restore(ws, { versionId: v1.id, path: 'home/docs/a.txt' });
    expect(restored).toMatchObject({ kind: 'checkpoint', parentId: v2.id, deviceId: null });
    expect((await alice.getWorkspace(ws)).headVersionId).toBe(restored.id);
    expect((await alice.diffVersion(ws, restored.id)).changes).toEqual([
      { path: 'home/docs/a.txt', change: 'added', type: 'file', sizeBefore: null, sizeAfter: small.length },
    ]);
    expect(Buffer.from(await alice.downloadFile(ws, restored.id, 'home/docs/a.txt')).equals(small)).toBe(
      true,
    );
  });

  it('removes a path that did not exist in the version', async () => {
    const head = (await alice.getWorkspace(ws)).headVersionId;
    const restored = await alice.restore(ws, { versionId: v1.id, path: 'home/docs/new.txt' });
    expect(restored.parentId).toBe(head);
    expect((await alice.diffVersion(ws, restored.id)).changes).toEqual([
      {
        path: 'home/docs/new.txt',
        change: 'removed',
        type: 'file',
        sizeBefore: small.length,
        sizeAfter: null,
      },
    ]);
  });

  it("recreates folders HEAD no longer has, with the version's attributes", async () => {
    const restored = await alice.restore(ws, { versionId: v1.id, path: 'etc/hosts' });
    expect((await alice.diffVersion(ws, restored.id)).changes).toEqual([
      { path: 'etc', change: 'added', type: 'dir', sizeBefore: null, sizeAfter: null },
    ]);
    const etc = await alice.listTree(ws, restored.id, 'etc');
    expect(etc.entries.map((e) => e.name)).toEqual(['hosts']);
    const root = await alice.listTree(ws, restored.id);
    expect(root.entries.find((e) => e.name === 'etc')).toMatchObject({ mode: 0o755 });
  });

  it('answers 404 for a path in neither the version nor HEAD, 400 for a bad one', async () => {
    expect((await problemOf(alice.restore(ws, { versionId: v1.id, path: 'no/such' }))).status).toBe(404);
    expect((await problemOf(alice.restore(ws, { versionId: v1.id, path: '../x' }))).status).toBe(400);
    expect((await problemOf(alice.restore(ws, { versionId: v1.id, path: '' }))).status).toBe(400);
    expect((await problemOf(alice.restore(ws, { versionId: crypto.randomUUID() }))).status).toBe(404);
  });

  it("restores a whole version: HEAD's root becomes the version's root, and it is audited", async () => {
    const head = (await alice.getWorkspace(ws)).headVersionId;
    const restored = await alice.restore(ws, { versionId: v1.id });
    expect(restored).toMatchObject({ kind: 'checkpoint', parentId: head, rootTree: v1.rootTree });
    const workspace = await alice.getWorkspace(ws);
    expect(workspace.headVersionId).toBe(restored.id);
    expect((await alice.getVersion(ws, restored.id)).rootTree).toBe(v1.rootTree);
    expect((await alice.listVersions(ws))[0]?.id).toBe(restored.id);

    const audit = await admin.listAudit({ workspaceId: ws, action: 'version.restore' });
    expect(audit.map((e) => e.details)).toContainEqual({
      sourceVersionId: v1.id,
      path: null,
      parentId: head,
      rootTree: v1.rootTree,
    });
    expect(audit.map((e) => e.details.path)).toEqual(
      expect.arrayContaining(['home/docs/a.txt', 'home/docs/new.txt', 'etc/hosts']),
    );
    expect(audit.find((e) => e.targetId === restored.id)).toMatchObject({
      targetType: 'version',
      workspaceId: ws,
    });
  });

  it('lets an admin restore, and the lease can be taken again afterwards', async () => {
    const restored = await admin.restore(ws, { versionId: v2.id, path: 'README' });
    expect(Buffer.from(await alice.downloadFile(ws, restored.id, 'README')).equals(readme2)).toBe(true);
    const lease = await alice.acquireLease(ws, setup.device.id);
    expect(lease.fencingToken).toBeGreaterThan(setup.lease.fencingToken);
    const refused = await problemOf(admin.restore(ws, { versionId: v1.id }));
    expect(refused.code).toBe('lease_held');
  });
});
