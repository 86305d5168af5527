import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { LocalRepository, materialize, UpcFile } from '@upc/image';
import { ApiError } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../apps/server/src/embedded-postgres.js';
import {
  contentListing,
  eventually,
  filesUnder,
  history,
  isAlive,
  loginOk,
  logoutOk,
  simulatedPcs,
  startUpc,
  UPC,
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

interface LoginJson {
  resumed: boolean;
  version: string | null;
  fetched: { objects: number; bytes: number };
}

const credentials = (user: string) => ({ UPC_USER: user, UPC_PASSWORD: `${user}-password` });
const unreachable = async () => `http://127.0.0.1:${await freePort()}`;

/** A client signed in as `user` (created by `server.user`). */
async function loginClient(user: string) {
  const client = server.anonymous();
  await client.login(user, `${user}-password`);
  return client;
}

/** The version a `.upc` file holds now, written out into a fresh folder. */
async function unpack(file: string): Promise<string> {
  const dir = await testFolder('upc-features-');
  const upc = await UpcFile.open(file);
  try {
    await upc.verify();
    const repo = await LocalRepository.open(join(dir, 'objects'));
    try {
      await upc.importInto(repo);
      await materialize(repo, upc.manifest.root, join(dir, 'out'), { mountPoint: '/' });
    } finally {
      repo.close();
    }
  } finally {
    await upc.close();
  }
  return join(dir, 'out', 'home');
}

/** Whether any file under `dir` holds `needle` anywhere in its bytes. */
async function anyFileHolds(dir: string, needle: string): Promise<boolean> {
  for (const file of await filesUnder(dir)) {
    if ((await readFile(join(dir, file))).includes(Buffer.from(needle))) return true;
  }
  return false;
}

describe('upc exec and upc shell', () => {
  it('runs a command with HOME and the working folder in the workspace, passes its exit code through, and syncs what it writes', async () => {
    await server.user('gus');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'gus');
    const home = await realpath(a.files);

    const ran = await a.run([
      'exec',
      '--',
      'sh',
      '-c',
      'echo "$HOME" > home.txt; pwd -P > cwd.txt; echo "made by exec" > made.txt; echo out; echo err >&2; exit 7',
    ]);
    expect(ran.code).toBe(7);
    expect(ran.stdout).toBe('out\n');
    expect(ran.stderr).toBe('err\n');
    expect(await realpath((await readFile(join(a.files, 'home.txt'), 'utf8')).trim())).toBe(home);
    expect((await readFile(join(a.files, 'cwd.txt'), 'utf8')).trim()).toBe(home);

    // Killed by a signal: 128 + its number, as a shell says it.
    expect((await a.run(['exec', '--', 'sh', '-c', 'kill -9 $$'])).code).toBe(137);
    expect((await a.run(['exec', '--', 'true'])).code).toBe(0);

    const none = await a.run(['exec']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('upc exec -- CMD');
    const missing = await a.run(['exec', '--', 'no-such-program-anywhere']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('command not found');

    // What the command wrote is in HEAD: another PC finds it.
    await logoutOk(a);
    const b = await pc('pc-b');
    await loginOk<LoginJson>(b, 'gus');
    expect(await readFile(join(b.files, 'made.txt'), 'utf8')).toBe('made by exec\n');
    await logoutOk(b);

    const outside = await b.run(['exec', '--', 'true']);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toContain('upc login');
  });

  it('waits for the command when Ctrl-C reaches them both, and gives its exit code', async () => {
    await server.user('hal');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'hal');
    // The command survives SIGINT (as an editor or a REPL does); upc must not leave it behind.
    const started = startUpc(
      ['exec', '--', 'sh', '-c', 'trap "" INT QUIT; touch ready; sleep 1; echo done > after.txt; exit 3'],
      a.env,
    );
    const pid = started.child.pid;
    if (pid === undefined) throw new Error('upc did not start');
    await eventually(() =>
      stat(join(a.files, 'ready')).then(
        () => true,
        () => undefined,
      ),
    );
    process.kill(-pid, 'SIGINT'); // the whole process group, as a terminal does
    process.kill(-pid, 'SIGQUIT');
    const result = await started.done;
    expect(result.code, result.stderr).toBe(3);
    expect(await readFile(join(a.files, 'after.txt'), 'utf8')).toBe('done\n');
    await logoutOk(a);
  });

  it('upc shell runs $SHELL in the workspace, reading commands from standard input', async () => {
    await server.user('ida');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'ida');
    const result = await a.run(['shell'], 'echo $HOME > where.txt\necho "in $(pwd -P)"\nexit 4\n', {
      SHELL: '/bin/sh',
    });
    expect(result.code, result.stderr).toBe(4);
    const home = await realpath(a.files);
    expect(result.stdout).toBe(`in ${home}\n`);
    expect(await realpath((await readFile(join(a.files, 'where.txt'), 'utf8')).trim())).toBe(home);
    await logoutOk(a);
  });
});

describe('upc history and upc restore', () => {
  it('lists versions, rolls the workspace or one path back as a checkpoint, and refuses bad input', async () => {
    await server.user('jo');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'jo');
    await mkdir(join(a.files, 'dir'));
    await writeFile(join(a.files, 'a.txt'), 'one');
    await writeFile(join(a.files, 'dir/b.txt'), 'bee');
    const v1 = ((await a.ok(['sync', '--json'])) as { versionId: string }).versionId;
    const atV1 = await contentListing(a.files);

    await writeFile(join(a.files, 'a.txt'), 'two, longer');
    await writeFile(join(a.files, 'later.txt'), 'later');
    await rm(join(a.files, 'dir'), { recursive: true });
    const v2 = ((await a.ok(['sync', '--json'])) as { versionId: string }).versionId;
    const atV2 = await contentListing(a.files);

    const rows = await history(a);
    expect(rows[0]).toMatchObject({ id: v2, head: true, device: 'pc-a' });
    expect(rows.find((r) => r.id === v1)).toMatchObject({ head: false, device: 'pc-a', kind: 'sync' });
    for (const row of rows) {
      expect(Object.keys(row)).toEqual(expect.arrayContaining(['id', 'kind', 'device', 'time', 'head']));
      expect(row.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    }
    expect(rows.filter((r) => r.head)).toHaveLength(1);

    // The whole workspace, by a unique 8-character prefix: v1's files back, later ones gone.
    const whole = (await a.ok(['restore', v1.slice(0, 8), '--json'])) as { from: string; versionId: string };
    expect(whole.from).toBe(v1);
    expect(await contentListing(a.files)).toEqual(atV1);
    const afterWhole = await history(a);
    expect(afterWhole[0]).toMatchObject({ id: whole.versionId, kind: 'checkpoint', head: true });
    // The rollback went straight from v2 to the checkpoint, with no half-restored version between.
    expect(afterWhole[0]?.parentId).toBe(v2);

    // One path, by full id: only it changes.
    const one = (await a.ok(['restore', v2, '--path', 'a.txt', '--json'])) as { versionId: string };
    expect(await readFile(join(a.files, 'a.txt'), 'utf8')).toBe('two, longer');
    expect(await readFile(join(a.files, 'dir/b.txt'), 'utf8')).toBe('bee');
    await expect(stat(join(a.files, 'later.txt'))).rejects.toThrow();
    expect((await history(a))[0]).toMatchObject({ id: one.versionId, kind: 'checkpoint', head: true });

    // A path the version did not have is removed; a folder comes back whole.
    await writeFile(join(a.files, 'scratch.txt'), 'not in v1');
    await a.ok(['sync']);
    await a.ok(['restore', v1, '--path', 'scratch.txt']);
    await expect(stat(join(a.files, 'scratch.txt'))).rejects.toThrow();
    await a.ok(['restore', v2, '--path', 'dir']);
    await expect(stat(join(a.files, 'dir'))).rejects.toThrow();
    await a.ok(['restore', v1, '--path', 'dir']);
    expect(await readFile(join(a.files, 'dir/b.txt'), 'utf8')).toBe('bee');

    // And back to v2 as a whole, by full id.
    await a.ok(['restore', v2]);
    expect(await contentListing(a.files)).toEqual(atV2);

    const unknown = await a.run(['restore', 'ffffffff']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no version starts with ffffffff');
    for (const path of ['../x', '/etc/passwd', '.', 'a/../../x']) {
      const bad = await a.run(['restore', v1, '--path', path]);
      expect(bad.code, path).toBe(2);
      expect(bad.stderr).toContain('--path must be a path inside your home folder');
    }
    expect((await a.run(['restore'])).code).toBe(2);
    expect(await contentListing(a.files)).toEqual(atV2); // the refusals changed nothing

    // Every restore is durable: another PC finds the last one.
    await logoutOk(a);
    const b = await pc('pc-b');
    await loginOk<LoginJson>(b, 'jo');
    expect(await contentListing(b.files)).toEqual(atV2);
    await logoutOk(b);
  });
});

describe('.upc files', () => {
  it('exports from a session and with credentials, imports into another workspace, and refuses a damaged file', async () => {
    await server.user('kai');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'kai');
    await mkdir(join(a.files, 'docs/deep'), { recursive: true });
    await writeFile(join(a.files, 'docs/deep/note.txt'), 'kai was here\n');
    await writeFile(join(a.files, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    await writeFile(join(a.files, 'noise.bin'), randomBytes(256 * 1024));
    await symlink('docs/deep/note.txt', join(a.files, 'link'));
    await a.ok(['sync']);
    const expected = await contentListing(a.files);

    const dir = await testFolder('upc-features-');
    // In a session: the session's sign-in is enough.
    const fromSession = await a.run(['image', 'export', '--out', join(dir, 'session.upc'), '--json']);
    expect(fromSession.code, fromSession.stderr).toBe(0);
    expect(JSON.parse(fromSession.stdout)).toMatchObject({ workspace: 'default' });
    expect((await stat(join(dir, 'session.upc'))).size).toBeGreaterThan(256 * 1024);
    expect(await contentListing(await unpack(join(dir, 'session.upc')))).toEqual(expected);
    const again = await a.run(['image', 'export', '--out', join(dir, 'session.upc')]);
    expect(again.code).toBe(2); // never overwrites
    await logoutOk(a);

    // Outside a session: as UPC_USER, naming the workspace.
    const b = await pc('pc-b');
    const file = join(dir, 'kai.upc');
    const exported = await b.run(
      ['image', 'export', '--out', file, '--workspace', 'default'],
      '',
      credentials('kai'),
    );
    expect(exported.code, exported.stderr).toBe(0);
    expect(await contentListing(await unpack(file))).toEqual(expected);

    const imported = await b.run(
      ['image', 'import', file, '--workspace', 'other', '--json'],
      '',
      credentials('kai'),
    );
    expect(imported.code, imported.stderr).toBe(0);
    const { version } = JSON.parse(imported.stdout) as { version: string };
    await loginOk<LoginJson>(b, 'kai', ['--workspace', 'other']);
    expect(await contentListing(b.files)).toEqual(expected);
    expect((await history(b))[0]).toMatchObject({ id: version, kind: 'checkpoint' });
    await logoutOk(b);

    // A byte flipped in the middle (inside noise.bin's data): refused, and nothing changes.
    const damaged = join(dir, 'damaged.upc');
    const bytes = await readFile(file);
    const middle = Math.floor(bytes.length / 2);
    bytes.writeUInt8(bytes.readUInt8(middle) ^ 0xff, middle);
    await writeFile(damaged, bytes);
    const client = await loginClient('kai');
    const before = await client.listWorkspaces();
    for (const target of ['other', 'never-made']) {
      const refused = await b.run(
        ['image', 'import', damaged, '--workspace', target],
        '',
        credentials('kai'),
      );
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`${damaged} is damaged`);
      expect(refused.stderr).toContain('does not match its hash');
    }
    expect(await client.listWorkspaces()).toEqual(before);
    // upc run refuses it the same way, and opens no session.
    const run = await b.run(['run', damaged], '', { UPC_SERVER: await unreachable() });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${damaged} is damaged`);
    await expect(stat(join(b.home, 'session'))).rejects.toThrow();
  });

  it('upc run works from the file with no server and saves edits back into it', async () => {
    await server.user('lee');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'lee');
    await writeFile(join(a.files, 'kept.txt'), 'from the server');
    await mkdir(join(a.files, 'sub'));
    await writeFile(join(a.files, 'sub/gone.txt'), 'to be removed');
    await a.ok(['sync']);
    const expected = await contentListing(a.files);
    await logoutOk(a);
    const dir = await testFolder('upc-features-');
    const file = join(dir, 'lee.upc');
    expect((await a.run(['image', 'export', '--out', file], '', credentials('lee'))).code).toBe(0);

    // No server at all from here on.
    const offline = { UPC_SERVER: await unreachable() };
    const b = await pc('pc-b');
    const opened = await b.run(['run', file, '--json'], '', offline);
    expect(opened.code, opened.stderr).toBe(0);
    expect(JSON.parse(opened.stdout)).toMatchObject({ file });
    expect(await contentListing(b.files)).toEqual(expected);
    const status = await b.run(['status', '--json'], '', offline);
    expect(JSON.parse(status.stdout)).toMatchObject({ mode: 'file' });
    await writeFile(join(b.files, 'kept.txt'), 'edited offline');
    await writeFile(join(b.files, 'added.txt'), 'new offline');
    await rm(join(b.files, 'sub/gone.txt'));
    const ran = await b.run(['exec', '--', 'sh', '-c', 'echo via exec > exec.txt'], '', offline);
    expect(ran.code, ran.stderr).toBe(0);
    const edited = await contentListing(b.files);
    const pid = await b.daemonPid();
    const closed = await b.run(['logout'], '', offline);
    expect(closed.code, closed.stderr).toBe(0);
    expect(isAlive(pid ?? 0)).toBe(false);
    await expect(stat(join(b.home, 'session'))).rejects.toThrow();
    expect(await contentListing(await unpack(file))).toEqual(edited);

    // Opened again, it holds the edits.
    expect((await b.run(['run', file], '', offline)).code).toBe(0);
    expect(await contentListing(b.files)).toEqual(edited);
    expect((await b.run(['logout'], '', offline)).code).toBe(0);

    // With a command: it runs in the session, whose end saves into the file.
    const once = await b.run(['run', file, '--', 'sh', '-c', 'echo x > new.txt; exit 6'], '', offline);
    expect(once.code, once.stderr).toBe(6);
    await expect(stat(join(b.home, 'session'))).rejects.toThrow();
    expect(await readFile(join(await unpack(file), 'new.txt'), 'utf8')).toBe('x\n');

    // A command that cannot start still closes the session.
    const missing = await b.run(['run', file, '--', 'no-such-program-anywhere'], '', offline);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('command not found');
    await expect(stat(join(b.home, 'session'))).rejects.toThrow();
    expect((await b.run(['status', '--json'], '', offline)).stdout).toContain('"session": null');
  });
});

describe('the encrypted device cache', () => {
  it('keeps only ciphertext, makes the next login fetch nothing, and is of no use to another user', async () => {
    const { id: kimId, client: kim } = await server.user('kim');
    const { id: louId, client: lou } = await server.user('lou');
    const secret = `kim-secret-${randomBytes(12).toString('hex')}`;

    // The workspace's content comes from another PC, so the first login here fetches it.
    const w = await pc('pc-w');
    await loginOk<LoginJson>(w, 'kim');
    for (let i = 0; i < 20; i++) await writeFile(join(w.files, `file-${i}.txt`), `file ${i}\n`);
    await writeFile(join(w.files, 'big.bin'), randomBytes(600 * 1024));
    await logoutOk(w);

    const a = await pc('pc-a');
    expect(await a.ok(['device', 'keep-cache', 'on'])).toContain('encrypted cache');
    const first = await loginOk<LoginJson>(a, 'kim');
    expect(first.fetched.objects).toBeGreaterThan(3);
    await writeFile(join(a.files, 'secret.txt'), secret);
    await a.ok(['sync']);
    // The session's own store holds it in the clear: the check below can see it.
    expect(await anyFileHolds(join(a.home, 'session', 'objects'), secret)).toBe(true);
    const expected = await contentListing(a.files);
    await logoutOk(a);

    const cache = join(a.home, 'cache', kimId);
    const kept = await filesUnder(cache);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every((f) => f.endsWith('.enc'))).toBe(true);
    expect(await anyFileHolds(cache, secret)).toBe(false);
    expect(await anyFileHolds(cache, 'file 1\n')).toBe(false);

    const second = await loginOk<LoginJson>(a, 'kim');
    expect(second.fetched.objects).toBe(0);
    expect(await contentListing(a.files)).toEqual(expected);
    await logoutOk(a);

    // Another user of this PC: kim's cache, even put in their place, does not open with their key.
    await cp(cache, join(a.home, 'cache', louId), { recursive: true });
    await loginOk<LoginJson>(a, 'lou');
    const louCache = await filesUnder(join(a.home, 'cache', louId));
    expect(louCache.filter((f) => kept.includes(f))).toEqual([]);
    expect(await contentListing(a.files)).toEqual({});
    const kimDevice = (await kim.listDevices()).find((d) => d.name === 'pc-a');
    expect(kimDevice).toBeDefined();
    const refused = await lou.deviceCacheKey(kimDevice?.id ?? '').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(404);
    await logoutOk(a);

    // kim's own cache was left alone.
    expect(await filesUnder(cache)).toEqual(kept);
    const third = await loginOk<LoginJson>(a, 'kim');
    expect(third.fetched.objects).toBe(0);
    expect(await contentListing(a.files)).toEqual(expected);
    await logoutOk(a);
  });

  it('is off by default: after logout the PC keeps no cache and no session', async () => {
    await server.user('max');
    const a = await pc('pc-a');
    await loginOk<LoginJson>(a, 'max');
    await writeFile(join(a.files, 'x.txt'), 'x');
    await logoutOk(a);
    const left = await readdir(a.home);
    expect(left).not.toContain('cache');
    expect(left).not.toContain('session');
    expect(left).toContain('device.json');
  });
});

describe('sessions on one PC', () => {
  it('status without a session, login twice, another user refused, logout --keep-local', async () => {
    await server.user('ned');
    await server.user('oli');
    const a = await pc('pc-a');
    const none = await a.run(['status', '--json']);
    expect(none.code).toBe(0);
    expect(JSON.parse(none.stdout)).toEqual({ session: null });

    const first = await loginOk<LoginJson>(a, 'ned');
    expect(first.resumed).toBe(false);
    await writeFile(join(a.files, 'mine.txt'), 'ned');
    const pid = await a.daemonPid();
    const again = await loginOk<LoginJson>(a, 'ned');
    expect(again.resumed).toBe(true);
    expect(await a.daemonPid()).toBe(pid);
    const other = await a.login('oli');
    expect(other.code).toBe(5);
    expect(other.stderr).toContain('upc logout');
    expect(await readFile(join(a.files, 'mine.txt'), 'utf8')).toBe('ned'); // untouched

    const { kept } = await logoutOk(a, ['--keep-local']);
    expect(kept).not.toBeNull();
    expect((await realpath(kept ?? '')).startsWith(await realpath(join(a.home, 'kept')))).toBe(true);
    expect(await readFile(join(kept ?? '', 'home', 'mine.txt'), 'utf8')).toBe('ned');
    expect(JSON.parse((await a.run(['status', '--json'])).stdout)).toEqual({ session: null });

    // The other user can log in now.
    await loginOk<LoginJson>(a, 'oli');
    await logoutOk(a);
  });
});

/**
 * A proxy to the test server that holds back the answer to every object download (single or batch)
 * and every object or pack upload over 200 KiB for `delayMs`:
 * a login's fetch then takes that long, however fast this machine is.
 */
async function slowDownloads(
  delayMs: number,
): Promise<{ url: string; delayed: () => number; close: () => void }> {
  const target = new URL(server.url);
  let delayed = 0;
  const proxy = createServer((req, res) => {
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => parts.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(parts);
          const download =
            (req.method === 'GET' && /\/objects\/[0-9a-f]{64}$/.test(req.url ?? '')) ||
            (req.method === 'POST' && /\/objects\/fetch$/.test(req.url ?? ''));
          const upload = req.method === 'PUT' && Number(req.headers['content-length'] ?? 0) > 200_000;
          const slow = (download && body.length > 200_000) || upload;
          if (slow) delayed++;
          setTimeout(
            () => {
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              res.end(body);
            },
            slow ? delayMs : 0,
          );
        });
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    delayed: () => delayed,
    close: () => {
      proxy.closeAllConnections();
      proxy.close();
    },
  };
}

describe('progress', () => {
  it('a login restoring several MiB prints plain progress lines on standard error only', async () => {
    await server.user('pia');
    const w = await pc('pc-w');
    await loginOk<LoginJson>(w, 'pia');
    await writeFile(join(w.files, 'big.bin'), randomBytes(6 * 1024 * 1024));
    await logoutOk(w);

    // Plain lines start once the work has taken two seconds: the proxy makes sure it does.
    const slow = await slowDownloads(2200);
    try {
      const a = await pc('pc-a');
      a.server = slow.url;
      const plain = await a.run(['login', '--user', 'pia', '--password-stdin'], 'pia-password\n');
      expect(plain.code, plain.stderr).toBe(0);
      expect(slow.delayed()).toBeGreaterThan(0);
      const lines = plain.stderr.split('\n').filter((line) => line.startsWith('fetching'));
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line).toMatch(/^fetching: [\d.]+ (B|KiB|MiB) of 6\.0 MiB$/);
      expect(lines.at(-1)).toBe('fetching: 6.0 MiB of 6.0 MiB');
      expect(plain.stderr).not.toContain('\r');
      expect(plain.stdout).not.toMatch(/fetching|restoring/);
      expect(plain.stdout).toContain('logged in as pia');

      // An upload that takes a while: `upc sync` says how far it is.
      await writeFile(join(a.files, 'upload.bin'), randomBytes(6 * 1024 * 1024));
      const synced = await a.run(['sync']);
      expect(synced.code, synced.stderr).toBe(0);
      const uploading = synced.stderr.split('\n').filter((line) => line.startsWith('uploading'));
      expect(uploading.length).toBeGreaterThan(0);
      for (const line of uploading) expect(line).toMatch(/^uploading: [\d.]+ (B|KiB|MiB) of [\d.]+ MiB$/);
      // Durable either way: committed by this sync, or by the write-through it waited for.
      expect(synced.stdout).toMatch(/^(saved as version|nothing to save; version) [0-9a-f-]{36}/);
      await logoutOk(a);
    } finally {
      slow.close();
    }
  });

  it('draws a bar on a terminal', async () => {
    await server.user('quin');
    const w = await pc('pc-w');
    await loginOk<LoginJson>(w, 'quin');
    await writeFile(join(w.files, 'big.bin'), randomBytes(6 * 1024 * 1024));
    await logoutOk(w);
    const slow = await slowDownloads(600);
    try {
      const a = await pc('pc-a');
      // util-linux `script` gives the command a pseudo-terminal, as a person at a PC has.
      const command = `printf 'quin-password\\n' | ${process.execPath} ${UPC} login --user quin --password-stdin`;
      const tty = await runProcess('script', ['-qec', command, '/dev/null'], {
        ...a.env,
        UPC_SERVER: slow.url,
      });
      expect(tty.code, tty.stdout).toBe(0);
      expect(tty.stdout).toMatch(/\rfetching \[#*-*\] +\d+% /);
      expect(tty.stdout).toContain('\rfetching [##############################] 100% 6.0 MiB/6.0 MiB');
      expect(tty.stdout).toContain('logged in as quin');
      await logoutOk(a);
    } finally {
      slow.close();
    }
  });
});

/** Runs a program to its end, collecting its output. */
function runProcess(
  program: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout });
    });
    child.stdin.end();
  });
}
