import {
  chmod,
  chown,
  lstat,
  mkdir,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../apps/server/src/embedded-postgres.js';
import { EXIT } from '../../apps/agent/src/exit-codes.js';
import {
  contentListing,
  eventually,
  history,
  isAlive,
  loginOk,
  logoutOk,
  type Pc,
  simulatedPcs,
} from '../support/agent.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { testFolder } from '../support/scratch.js';

let server: TestServer;
const pc = simulatedPcs(() => server.url);

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const RESTARTED = 'the PC restarted during your last session here';

interface LoginJson {
  path: string;
  resumed: boolean;
  version: string | null;
}

interface SessionJson {
  path: string;
  committed: { versionId: string | null; root: string };
}

const sessionOf = async (on: Pc) =>
  JSON.parse(await readFile(join(on.home, 'session', 'session.json'), 'utf8')) as SessionJson;

const exists = (path: string) =>
  lstat(path).then(
    () => true,
    () => false,
  );

/** What a second PC finds in the workspace's HEAD (it logs in and out again). */
async function headListing(user: string): Promise<Record<string, string>> {
  const b = await pc('pc-b');
  await loginOk<LoginJson>(b, user);
  const listed = await contentListing(b.files);
  await logoutOk(b);
  return listed;
}

/** The session layers are the memory folder's `workspace`, a private folder of root's. */
async function expectInMemory(on: Pc, reported?: string): Promise<void> {
  const { path } = await sessionOf(on);
  expect(path).toBe(join(on.memoryLayers, 'workspace'));
  if (reported !== undefined) expect(reported).toBe(path);
  const root = await lstat(on.memoryLayers);
  expect(root.isDirectory()).toBe(true);
  expect(root.isSymbolicLink()).toBe(false);
  expect(root.uid).toBe(0);
  expect(root.mode & 0o777).toBe(0o700);
  expect(await realpath(path)).toBe(path); // nothing on the way leads elsewhere
  expect(await exists(join(on.home, 'session', 'workspace'))).toBe(false);
}

/**
 * A restart of the PC while the layers are in memory: every process of the session is killed
 * and /dev/shm is empty again; the agent's home (on disk) stays as it was.
 */
async function restart(on: Pc): Promise<void> {
  const pid = await on.daemonPid();
  expect(pid).toBeDefined();
  await on.kill();
  await eventually(() => Promise.resolve(isAlive(pid ?? 0) ? undefined : true), 5000, 'the daemon to die');
  await rm(on.memoryLayers, { recursive: true, force: true });
}

describe('session layers in memory', () => {
  it('a default login keeps the layers in memory; a write reaches HEAD; logout removes them', async () => {
    await server.user('mia');
    const a = await pc('pc-a');
    expect(await exists(a.memoryLayers)).toBe(false);
    const login = await loginOk<LoginJson>(a, 'mia');
    await expectInMemory(a, login.path);
    expect(a.files.startsWith(`${a.memoryLayers}/`)).toBe(true);

    const before = (await history(a))[0]?.id;
    await writeFile(join(a.files, 'in-memory.txt'), 'written in memory');
    // Written through by the daemon, with no sync asked for: HEAD moves by itself.
    await eventually(
      async () => {
        const [top] = await history(a);
        return top && top.id !== before && top.head ? top : undefined;
      },
      10_000,
      'a new HEAD',
    );
    await a.ok(['exec', '--', 'sh', '-c', 'mkdir -p notes && echo "through exec" > notes/exec.txt']);
    expect(await readFile(join(a.files, 'notes', 'exec.txt'), 'utf8')).toBe('through exec\n');
    await a.ok(['sync']);
    // Still nothing of the workspace on disk in the session folder.
    expect(await exists(join(a.home, 'session', 'workspace'))).toBe(false);
    expect((await readdir(join(a.home, 'session'))).sort()).not.toContain('workspace');

    await logoutOk(a);
    const head = await headListing('mia');
    expect(head['in-memory.txt']).toMatch(/^file /);
    expect(head['notes/exec.txt']).toMatch(/^file /);
  });

  it('upc device layers: disk puts the next session in the agent home, auto brings it back to memory, and nonsense is refused', async () => {
    await server.user('noa');
    const a = await pc('pc-a');
    const disk = await a.run(['device', 'layers', 'disk']);
    expect(disk.code, disk.stderr).toBe(0);
    expect(disk.stdout).toContain('disk');
    const login = await loginOk<LoginJson>(a, 'noa');
    const onDisk = join(a.home, 'session', 'workspace');
    expect(login.path).toBe(onDisk);
    expect((await sessionOf(a)).path).toBe(onDisk);
    expect(await exists(a.memoryLayers)).toBe(false);
    await writeFile(join(a.files, 'on-disk.txt'), 'on disk');
    expect((await stat(join(onDisk, 'home', 'on-disk.txt'))).isFile()).toBe(true);
    await logoutOk(a);

    for (const wrong of [['bogus'], [], ['MEMORY']]) {
      const refused = await a.run(['device', 'layers', ...wrong]);
      expect(refused.code, `upc device layers ${wrong.join(' ')}`).toBe(EXIT.usage);
      expect(refused.stderr).toContain('auto, memory or disk');
    }
    // A refused choice changed nothing: still on disk.
    expect((await loginOk<LoginJson>(a, 'noa')).path).toBe(onDisk);
    expect(await readFile(join(a.files, 'on-disk.txt'), 'utf8')).toBe('on disk');
    await logoutOk(a);

    expect((await a.run(['device', 'layers', 'auto'])).code).toBe(0);
    const back = await loginOk<LoginJson>(a, 'noa');
    await expectInMemory(a, back.path);
    expect(await readFile(join(a.files, 'on-disk.txt'), 'utf8')).toBe('on disk');
    await logoutOk(a);

    expect((await a.run(['device', 'layers', 'memory'])).code).toBe(0);
    await expectInMemory(a, (await loginOk<LoginJson>(a, 'noa')).path);
    await logoutOk(a);
  });
});

describe('a squatter on the memory folder’s name', () => {
  it('a symlink to a folder of someone else: removed, not followed; the login gets a private folder', async () => {
    await server.user('oda');
    const a = await pc('pc-a');
    const theirs = await testFolder('upc-layers-');
    await writeFile(join(theirs, 'marker'), 'do not touch');
    await chmod(theirs, 0o777);
    const before = await contentListing(theirs);
    await symlink(theirs, a.memoryLayers);

    const login = await loginOk<LoginJson>(a, 'oda');
    await expectInMemory(a, login.path);
    expect(await contentListing(theirs)).toEqual(before);
    expect((await stat(theirs)).mode & 0o777).toBe(0o777);
    expect(await readdir(a.memoryLayers)).not.toContain('marker');
    await writeFile(join(a.files, 'mine.txt'), 'oda');
    await a.ok(['sync']);
    expect(await readdir(theirs)).toEqual(['marker']); // nothing of the session went there

    await logoutOk(a);
    expect(await contentListing(theirs)).toEqual(before);
  });

  it('a folder open to all with a file in it: replaced; its file is not in the session', async () => {
    await server.user('pia');
    const a = await pc('pc-a');
    await mkdir(join(a.memoryLayers, 'workspace', 'home'), { recursive: true });
    await writeFile(join(a.memoryLayers, 'planted'), 'theirs');
    await writeFile(join(a.memoryLayers, 'workspace', 'home', 'planted.txt'), 'theirs');
    for (const folder of ['workspace/home', 'workspace', ''])
      await chmod(join(a.memoryLayers, folder), 0o777);
    await chown(a.memoryLayers, 65534, 65534); // someone else's

    const login = await loginOk<LoginJson>(a, 'pia');
    await expectInMemory(a, login.path);
    expect(await readdir(a.memoryLayers)).not.toContain('planted');
    expect(await exists(join(a.files, 'planted.txt'))).toBe(false);
    await a.ok(['sync']);
    await logoutOk(a);
    expect(Object.keys(await headListing('pia'))).not.toContain('planted.txt');
  });

  it('a plain file under the name: replaced by the folder', async () => {
    await server.user('quin');
    const a = await pc('pc-a');
    await writeFile(a.memoryLayers, 'not a folder');
    await expectInMemory(a, (await loginOk<LoginJson>(a, 'quin')).path);
    await logoutOk(a);
  });
});

describe('the PC restarts while the layers are in memory', () => {
  it('what was journaled but never reached the server is committed at the next login, which starts afresh with it', async () => {
    // A server of its own, to stop and start again on the same port, database and bucket.
    const own = await startTestServer({ port: await freePort() });
    let current: TestServer | undefined = own;
    try {
      await own.user('rai');
      const a = await pc('pc-a', own.url);
      await loginOk<LoginJson>(a, 'rai');
      await writeFile(join(a.files, 'saved.txt'), 'reached the server');
      await a.ok(['sync']);
      const committed = (await sessionOf(a)).committed;

      await own.close();
      current = undefined;
      // Moved in whole from a folder the policy never saves: no snapshot sees it half written.
      await mkdir(join(a.files, '.cache'), { recursive: true });
      await writeFile(join(a.files, '.cache', 'typed.txt'), 'typed just before the restart');
      await rename(join(a.files, '.cache', 'typed.txt'), join(a.files, 'typed.txt'));
      // The daemon snapshots it (the journal names a root past the committed one) but cannot commit.
      const journaled = await eventually(
        async () => {
          const journal = await readFile(join(a.home, 'session', 'journal.json'), 'utf8')
            .then((text) => JSON.parse(text) as { root: string })
            .catch(() => undefined);
          return journal && journal.root !== committed.root ? journal : undefined;
        },
        10_000,
        'the journal to name the new snapshot',
      );
      expect((await sessionOf(a)).committed).toEqual(committed); // not committed
      await restart(a);

      current = await startTestServer({ port: own.port, databaseUrl: own.databaseUrl, bucket: own.bucket });
      const again = await a.login('rai');
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain(RESTARTED);
      const fresh = JSON.parse(again.stdout) as LoginJson;
      expect(fresh.resumed).toBe(false);
      expect(fresh.version).not.toBe(committed.versionId);
      await expectInMemory(a, fresh.path);
      expect(await readFile(join(a.files, 'typed.txt'), 'utf8')).toBe('typed just before the restart');
      expect(await readFile(join(a.files, 'saved.txt'), 'utf8')).toBe('reached the server');
      // The server has a version of exactly the journaled tree, and HEAD is it.
      const rows = await history(a);
      expect(rows[0]).toMatchObject({ head: true, id: fresh.version, device: 'pc-a' });
      expect((await sessionOf(a)).committed.root).toBe(journaled.root);
      await logoutOk(a);

      const b = await pc('pc-b', current.url);
      await loginOk<LoginJson>(b, 'rai');
      expect(await readFile(join(b.files, 'typed.txt'), 'utf8')).toBe('typed just before the restart');
      await logoutOk(b);
    } finally {
      await current?.close();
    }
  });

  it('with no journal (nothing written since login), the next login restores HEAD', async () => {
    await server.user('sol');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'sol');
    await writeFile(join(a.files, 'kept.txt'), 'from an earlier session');
    await logoutOk(a);

    const first = await loginOk<LoginJson>(a, 'sol');
    expect(first.version).not.toBeNull();
    const { root } = (await sessionOf(a)).committed;
    // The daemon may have journaled its first (unchanged) snapshot; without it, the last commit counts.
    await rm(join(a.home, 'session', 'journal.json'), { force: true });
    await restart(a);
    await rm(join(a.home, 'session', 'journal.json'), { force: true });
    const versions = (await history(a)).length;

    const again = await a.login('sol');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(RESTARTED);
    const fresh = JSON.parse(again.stdout) as LoginJson;
    expect(fresh.resumed).toBe(false);
    await expectInMemory(a, fresh.path);
    expect(await readFile(join(a.files, 'kept.txt'), 'utf8')).toBe('from an earlier session');
    const rows = await history(a);
    // At most the lost session's logout version, holding the same tree as before.
    expect(rows.length - versions).toBeLessThanOrEqual(1);
    expect(rows[0]?.head).toBe(true);
    expect((await sessionOf(a)).committed.root).toBe(root); // the same tree, nothing lost or added
    await logoutOk(a);
  });
});

describe('a restart right after the first login to an empty workspace', () => {
  it('nothing was ever saved: the next login ends the lost session with an empty version and starts afresh', async () => {
    await server.user('una');
    const a = await pc('pc-a');
    const first = await loginOk<LoginJson>(a, 'una');
    expect(first.version).toBeNull();
    await restart(a);
    await rm(join(a.home, 'session', 'journal.json'), { force: true });

    const again = await a.login('una');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(RESTARTED);
    await expectInMemory(a, (JSON.parse(again.stdout) as LoginJson).path);
    expect(await readdir(a.files)).toEqual([]);
    // The lost session's recovery and logout versions hold an empty tree; HEAD is the new session's.
    expect((await history(a)).length).toBeGreaterThan(0);
    await logoutOk(a);
  });
});

describe('logout after a restart, asked to keep the files', () => {
  it('has nothing to keep: it says so, logs out and leaves nothing behind', async () => {
    await server.user('vic');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'vic');
    await writeFile(join(a.files, 'saved.txt'), 'synced before the restart');
    await a.ok(['sync']);
    await restart(a);

    const out = await a.run(['logout', '--keep-local']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain('nothing kept on this PC');
    expect(await exists(join(a.home, 'kept'))).toBe(false);
    expect(await exists(join(a.home, 'session'))).toBe(false);
    expect(await exists(a.memoryLayers)).toBe(false);
    expect(Object.keys(await headListing('vic'))).toContain('saved.txt');
  });
});

describe('the agent home spelled another way', () => {
  it('a logout through another spelling of UPC_HOME still removes the layers from memory', async () => {
    await server.user('wyn');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'wyn');
    await writeFile(join(a.files, 'secret.txt'), 'only while logged in');
    const out = await a.run(['logout', '--json'], '', { UPC_HOME: `${a.home}/./` });
    expect(out.code, out.stderr).toBe(0);
    expect(await exists(a.memoryLayers)).toBe(false);
    expect(await exists(join(a.home, 'session'))).toBe(false);
  });
});

describe('logout --keep-local with the layers in memory', () => {
  it('moves them to the agent home’s kept folder, whole, and leaves nothing in memory', async () => {
    await server.user('tia');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'tia');
    await expectInMemory(a);
    await mkdir(join(a.files, 'docs'));
    await writeFile(join(a.files, 'docs', 'keep.txt'), 'keep me');
    await writeFile(join(a.files, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await symlink('docs/keep.txt', join(a.files, 'link'));
    const expected = await contentListing(a.files);

    const { kept } = await logoutOk(a, ['--keep-local']);
    expect(kept).not.toBeNull();
    const where = await realpath(kept ?? '');
    expect(where.startsWith(`${await realpath(join(a.home, 'kept'))}/`)).toBe(true);
    expect((await lstat(kept ?? '')).isDirectory()).toBe(true);
    expect(await contentListing(join(kept ?? '', 'home'))).toEqual(expected);
    expect(await readFile(join(kept ?? '', 'home', 'docs', 'keep.txt'), 'utf8')).toBe('keep me');
  });
});
