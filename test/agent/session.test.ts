import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { UpcClient } from '@upc/protocol';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../apps/server/src/embedded-postgres.js';
import { contentListing, eventually, history, type Pc, simulatedPcs } from '../support/agent.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
const pc = simulatedPcs(() => server.url);

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

interface Status {
  pid: number;
  state: string;
  version: string | null;
  safeToLeave: boolean;
  offlineSince: string | null;
  conflict?: { holder: string };
}

const status = async (on: Pc) => (await on.ok(['status', '--json'])) as Status;

describe('upc sessions against a real server', () => {
  it('roams: what PC A leaves at logout is exactly what PC B finds', async () => {
    await server.user('ann');
    const a = await pc('pc-a');
    const login = await a.login('ann');
    expect(login.code, login.stderr).toBe(0);
    const report = JSON.parse(login.stdout) as {
      path: string;
      version: string | null;
      timings: Record<string, number>;
    };
    expect(report.version).toBeNull();
    expect(Object.keys(report.timings).sort()).toEqual(
      ['desktopMs', 'fetchMs', 'gatherMs', 'materializeMs', 'mountMs', 'totalMs'].sort(),
    );

    const home = a.files;
    await mkdir(join(home, 'docs/deep/er'), { recursive: true });
    for (let i = 0; i < 40; i++)
      await writeFile(join(home, 'docs', `note-${i}.txt`), `note ${i}\n`.repeat(i + 1));
    await writeFile(join(home, 'docs/deep/er/empty'), '');
    await writeFile(join(home, 'big.bin'), randomBytes(50 * 1024 * 1024));
    await writeFile(join(home, 'script.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    await symlink('docs/note-1.txt', join(home, 'link-to-note'));
    await symlink('/usr/bin/env', join(home, 'absolute-link'));
    await symlink('missing-target', join(home, 'dangling'));
    await a.ok(['sync']);
    // After a sync: renames, deletes and rewrites.
    await rename(join(home, 'docs/note-2.txt'), join(home, 'docs/renamed.txt'));
    await rename(join(home, 'docs/deep'), join(home, 'moved-deep'));
    await rm(join(home, 'docs/note-3.txt'));
    await writeFile(join(home, 'docs/note-4.txt'), 'rewritten');
    await mkdir(join(home, '.cache/thumbnails'), { recursive: true });
    await writeFile(join(home, '.cache/thumbnails/x.png'), 'never saved');
    const expected = await contentListing(home);
    delete expected['.cache'];
    delete expected['.cache/thumbnails'];
    delete expected['.cache/thumbnails/x.png'];

    const out = await a.run(['logout', '--json']);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ kind: 'logout' });
    await expect(stat(join(a.home, 'session'))).rejects.toThrow(); // wiped

    const b = await pc('pc-b');
    expect((await b.login('ann')).code).toBe(0);
    expect(await contentListing(b.files)).toEqual(expected);
    const versions = await history(b);
    expect(versions[0]).toMatchObject({ kind: 'logout', device: 'pc-a', head: true });
    expect(versions.every((v) => ['sync', 'logout'].includes(v.kind))).toBe(true);
    await b.ok(['logout']);
  });

  it('writes through: a change is in HEAD within a second, without logout or sync', async () => {
    await server.user('bea');
    const a = await pc('pc-a');
    expect((await a.login('bea')).code).toBe(0);
    const before = (await history(a)).length;
    const file = join(a.files, 'draft.txt');
    await writeFile(file, 'first words');
    const written = (await stat(file)).mtimeMs;
    const head = await eventually(async () => {
      const rows = await history(a);
      return rows.length > before && rows[0]?.head ? rows[0] : undefined;
    }, 5000);
    // Committed by the daemon on its own; the gap is measured on the server's clock.
    expect(Date.parse(head.time) - written).toBeLessThan(1000);
    const current = await status(a);
    expect(current.version).toBe(head.id);
    await a.ok(['logout']);
  });

  it('recovers after the daemon is killed: the next command commits the writes as a recovery version', async () => {
    await server.user('cy');
    const a = await pc('pc-a');
    expect((await a.login('cy')).code).toBe(0);
    const { pid } = await status(a);
    // Writes the daemon has no time to commit (it waits ~150 ms after a change), then kill -9.
    await writeFile(join(a.files, 'unsaved.txt'), 'typed just before the crash');
    await mkdir(join(a.files, 'new-folder'));
    await writeFile(join(a.files, 'new-folder/also.txt'), 'this too');
    process.kill(pid, 'SIGKILL');

    const next = await a.run(['status', '--json']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain('recovery');
    expect((JSON.parse(next.stdout) as Status).pid).not.toBe(pid);
    const [top] = await history(a);
    expect(top).toMatchObject({ kind: 'recovery', device: 'pc-a', head: true });

    // The recovery version holds the writes: another PC finds them.
    await a.ok(['logout']);
    const b = await pc('pc-b');
    expect((await b.login('cy')).code).toBe(0);
    expect(await contentListing(b.files)).toMatchObject({
      'unsaved.txt': expect.stringContaining('file') as unknown,
      'new-folder/also.txt': expect.stringContaining('file') as unknown,
    });
    await b.ok(['logout']);
  });

  it('adopts a commit of its own whose answer was lost, instead of calling it a conflict', async () => {
    await server.user('cal');
    const a = await pc('pc-a');
    expect((await a.login('cal')).code).toBe(0);
    await writeFile(join(a.files, 'one.txt'), 'one');
    await a.ok(['sync']);
    // What a daemon killed between the server's answer and its journal write leaves behind: HEAD
    // moved by this PC, under its still-current lease, with session.json one version behind.
    const session = JSON.parse(await readFile(join(a.home, 'session', 'session.json'), 'utf8')) as {
      workspace: { id: string };
      committed: { versionId: string; root: string };
      server: { url: string; token: string; deviceId: string; fencingToken: number };
    };
    const client = new UpcClient({ baseUrl: session.server.url, token: session.server.token });
    const lost = await client.commit(session.workspace.id, {
      parentId: session.committed.versionId,
      rootTree: session.committed.root,
      kind: 'sync',
      deviceId: session.server.deviceId,
      fencingToken: session.server.fencingToken,
    });

    await writeFile(join(a.files, 'two.txt'), 'two');
    await a.ok(['sync']);
    const rows = await history(a);
    expect(rows.map((v) => v.kind)).not.toContain('conflict');
    expect(rows[0]).toMatchObject({ head: true, parentId: lost.id });
    expect((await status(a)).state).toBe('clean');
    await a.ok(['logout']);
  });

  it('keeps working offline and drains the queue when the server is back, without duplicates', async () => {
    // A server of its own, to stop and start again on the same port, database and bucket.
    const own = await startTestServer({ port: await freePort() });
    let current: TestServer | undefined = own;
    try {
      await own.user('dee');
      const a = await pc('pc-a', own.url);
      expect((await a.login('dee')).code).toBe(0);
      await writeFile(join(a.files, 'before.txt'), 'online');
      await a.ok(['sync']);

      await own.close();
      current = undefined;
      await writeFile(join(a.files, 'during-1.txt'), 'offline one');
      await writeFile(join(a.files, 'during-2.txt'), randomBytes(2 * 1024 * 1024));
      await rm(join(a.files, 'before.txt'));
      const offline = await eventually(async () => {
        const s = await status(a);
        return s.state === 'offline' ? s : undefined;
      });
      expect(offline.offlineSince).not.toBeNull();
      expect(offline.safeToLeave).toBe(false);
      const failed = await a.run(['sync', '--timeout', '1']);
      expect(failed.code).toBe(4);
      expect(failed.stderr).toContain('kept on this PC');
      const refused = await a.run(['logout', '--timeout', '0']);
      expect(refused.code).toBe(4);
      await stat(join(a.files, 'during-1.txt')); // nothing wiped

      current = await startTestServer({ port: own.port, databaseUrl: own.databaseUrl, bucket: own.bucket });
      await eventually(async () => {
        const s = await status(a);
        return s.state === 'clean' ? s : undefined;
      }, 30_000);
      const rows = await history(a);
      // Each version differs from its parent: the queue was committed, not replayed.
      const admin = await current.admin();
      const workspace = (await admin.listWorkspaces()).find((w) => w.headVersionId === rows[0]?.id);
      expect(workspace).toBeDefined();
      const versions = await admin.listVersions(workspace?.id ?? '');
      const roots = versions.map((v) => v.rootTree);
      expect(new Set(roots).size).toBe(roots.length);

      await a.ok(['logout']);
      const b = await pc('pc-b', current.url);
      expect((await b.login('dee')).code).toBe(0);
      expect(Object.keys(await contentListing(b.files)).sort()).toEqual(['during-1.txt', 'during-2.txt']);
      await b.ok(['logout']);
    } finally {
      await current?.close();
    }
  });

  it('two PCs: a second login is refused naming the first PC; --take-over wins; the old PC keeps its changes as a conflict version', async () => {
    await server.user('eve');
    const a = await pc('pc-a');
    const b = await pc('pc-b');
    expect((await a.login('eve')).code).toBe(0);
    await writeFile(join(a.files, 'shared.txt'), 'from A');
    await a.ok(['sync']);

    const refused = await b.login('eve');
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain('"pc-a"');
    expect(refused.stderr).toMatch(/since \d{4}-\d\d-\d\dT/);
    expect(refused.stderr).toContain('--take-over');

    expect((await b.login('eve', ['--take-over'])).code).toBe(0);
    const headAfterTakeover = (await history(b))[0];
    await writeFile(join(b.files, 'from-b.txt'), 'B works here now');
    await b.ok(['sync']);

    // A does not know yet; its next commit is refused and becomes a conflict version.
    await writeFile(join(a.files, 'late-on-a.txt'), 'A was still typing');
    const conflict = await eventually(async () => {
      const rows = await history(b);
      return rows.find((v) => v.kind === 'conflict');
    }, 15_000);
    expect(conflict).toMatchObject({ device: 'pc-a', head: false });
    expect(conflict.parentId).toBe(headAfterTakeover?.id);
    const s = await status(a);
    expect(s.state).toBe('conflict');
    expect(s.conflict?.holder).toBe('pc-b');

    // HEAD stayed B's; A's logout keeps its work and says where.
    const top = (await history(b)).find((v) => v.head);
    expect(top?.device).toBe('pc-b');
    const out = await a.run(['logout', '--json']);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ kind: 'conflict' });
    await b.ok(['logout']);
  });

  it('says clearly what is wrong: a bad password, an unknown server, something that is not a uPC server, an expired sign-in', async () => {
    await server.user('fay');
    const a = await pc('pc-a');
    const bad = await a.run(['login', '--user', 'fay', '--password-stdin'], 'not-the-password\n');
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('Wrong username or password');

    const nowhere = await a.run(['login', '--user', 'fay', '--password-stdin'], 'fay-password\n', {
      UPC_SERVER: `http://127.0.0.1:${await freePort()}`,
    });
    expect(nowhere.code).toBe(4);
    expect(nowhere.stderr).toContain('cannot reach the server');

    // Something answers, but it is not a uPC server.
    const stranger = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<h1>Not Found</h1>');
    });
    await new Promise<void>((resolve) => stranger.listen(0, '127.0.0.1', resolve));
    try {
      const port = (stranger.address() as AddressInfo).port;
      const wrong = await a.run(['login', '--user', 'fay', '--password-stdin'], 'fay-password\n', {
        UPC_SERVER: `http://127.0.0.1:${String(port)}`,
      });
      expect(wrong.code).toBe(4);
      expect(wrong.stderr).toContain('does not answer like a uPC server (HTTP 404)');
    } finally {
      stranger.close();
    }

    const notLoggedIn = await a.run(['sync']);
    expect(notLoggedIn.code).toBe(1);
    expect(notLoggedIn.stderr).toContain('upc login');

    expect((await a.login('fay')).code).toBe(0);
    const db = new pg.Client({ connectionString: server.databaseUrl });
    await db.connect();
    try {
      await db.query(
        `UPDATE tokens SET expires_at = now() - interval '1 second' WHERE user_id = (SELECT id FROM users WHERE username = 'fay')`,
      );
    } finally {
      await db.end();
    }
    await writeFile(join(a.files, 'after-expiry.txt'), 'kept locally');
    const expired = await a.run(['sync']);
    expect(expired.code).toBe(3);
    expect(expired.stderr).toContain('run upc login again');
    const historyExpired = await a.run(['history']);
    expect(historyExpired.code).toBe(3);

    // Logging in again resumes the session and the change goes through.
    const again = await a.login('fay');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ resumed: true });
    await a.ok(['sync']);
    await a.ok(['logout']);
  });
});
