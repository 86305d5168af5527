import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { encodePack, sha256Hex } from '@upc/image';
import { UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database.js';
import { serverProcessEnv, startServerProcess, type ServerProcess } from '../support/server-process.js';

/**
 * Issue 14, finding 7: the server read whole request bodies before it checked the token. Twenty
 * unauthenticated 60 MB uploads (all answered 401) took it from 387 MB to 1.05 GB, and it stayed
 * there. Now the token is checked when the request's head arrives, and uploads stream to disk.
 *
 * The server is the built one, in a process of its own, so that its memory is its own: measured
 * from /proc (VmRSS now, VmHWM the most it ever had).
 */
const MiB = 1024 * 1024;
const ADMIN_PASSWORD = 'admin-password-for-tests';
/**
 * Connections kept open, as any HTTP client keeps them: the server then reads and drops the rest
 * of a refused body, and the client reads the answer. (A client that asks for "Connection: close"
 * may find the socket closed under the rest of its body before it reads the answer.)
 */
const keepAlive = new Agent({ keepAlive: true });

let server: ServerProcess;
let admin: UpcClient;
/** Where the server keeps uploads while it checks them. */
let spool: string;
beforeAll(async () => {
  spool = await mkdtemp(join(tmpdir(), 'upc-spool-'));
  server = await startServerProcess({
    ...serverProcessEnv(await createTestDatabase()),
    UPC_UPLOAD_DIR: spool,
  });
  admin = new UpcClient({ baseUrl: server.url });
  await admin.login('admin', ADMIN_PASSWORD);
});
afterAll(async () => {
  keepAlive.destroy();
  await server.stop();
  await rm(spool, { recursive: true, force: true });
});

/** The files waiting in the server's private upload folder, and that folder's mode. */
async function spooled(): Promise<{ mode: number; files: string[] }> {
  const [folder] = await readdir(spool);
  if (folder === undefined) throw new Error('the server made no upload folder');
  const at = join(spool, folder);
  return { mode: (await stat(at)).mode & 0o777, files: await readdir(at) };
}

/** The server process's resident memory now and at its highest, in MiB. */
async function memory(): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${String(server.child.pid)}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

interface Sent {
  status: number;
  body: Record<string, unknown>;
  /** Bytes of the body written before the answer came. */
  sentBeforeAnswer: number;
}

/**
 * PUTs `total` bytes (Content-Length says so) as application/octet-stream, `chunk` at a time, and
 * stops sending once the answer arrives. `stall`: send only the first chunk, then wait for the answer.
 */
function upload(
  path: string,
  options: { total: number; chunk: Buffer; token?: string; stall?: boolean },
): Promise<Sent> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = request(`${server.url}/api/v1${path}`, {
      method: 'PUT',
      agent: keepAlive,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(options.total),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
    });
    req.on('response', (res) => {
      answered = true;
      const sentBeforeAnswer = sent;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (data: string) => (text += data));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(text) as Record<string, unknown>,
          sentBeforeAnswer,
        });
        req.destroy();
      });
    });
    // The server may close the connection while we still send: that is the point, not a failure.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    const pump = () => {
      while (!answered && sent < options.total) {
        const piece = options.chunk.subarray(0, Math.min(options.chunk.length, options.total - sent));
        sent += piece.length;
        if (options.stall) return void req.write(piece);
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      if (sent >= options.total) req.end();
    };
    pump();
  });
}

describe('the server checks the token before it reads a body', () => {
  it('answers 20 parallel unauthenticated 60 MB uploads 401 without its memory growing by their size', async () => {
    const chunk = randomBytes(MiB);
    const before = await memory();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        upload(`/workspaces/${randomUUID()}/objects/${sha256Hex(Buffer.of(i))}`, {
          total: 60 * MiB,
          chunk,
          ...(i % 2 === 0 ? {} : { token: `upc_${'A'.repeat(43)}` }), // none, or a made-up one
        }),
      ),
    );
    const after = await memory();
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 20 }, () => 401));
    expect(new Set(answers.map((a) => a.body.code))).toEqual(new Set(['unauthenticated', 'token_revoked']));
    // 1,200 MiB were offered; the server took none of it into memory (it stayed far below even one).
    process.stdout.write(
      `server memory: ${before.rss.toFixed(0)} MiB before, ${after.rss.toFixed(0)} MiB after, ` +
        `peak ${before.peak.toFixed(0)} -> ${after.peak.toFixed(0)} MiB\n`,
    );
    // (Before the fix it grew by about 900 MiB, and kept it.)
    expect(after.peak - before.rss).toBeLessThan(100);
    expect(after.rss - before.rss).toBeLessThan(80);
  }, 120_000);

  it('answers 401 before the body is sent: a client that sends 1 MB of 60 and waits gets it', async () => {
    const stalled = await upload(`/workspaces/${randomUUID()}/packs/${sha256Hex(Buffer.of(1))}`, {
      total: 60 * MiB,
      chunk: randomBytes(MiB),
      stall: true,
    });
    expect(stalled.status).toBe(401);
    expect(stalled.sentBeforeAnswer).toBe(MiB);
    // The same for JSON: a 3 MB list of hashes is not parsed for a caller without a token.
    const json = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/api/v1/workspaces/${randomUUID()}/objects/missing`, {
        method: 'POST',
        agent: keepAlive,
        headers: { 'content-type': 'application/json', 'content-length': String(3 * MiB) },
      });
      req.on('response', (res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write('{"hashes": ["');
    });
    expect(json).toBe(401);
    // A route that needs no token takes a small body only: a 60 MB sign-in is refused unread.
    const signIn = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/api/v1/auth/login`, {
        method: 'POST',
        agent: keepAlive,
        headers: { 'content-type': 'application/json', 'content-length': String(60 * MiB) },
      });
      req.on('response', (res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write('{"username": "admin", "password": "');
    });
    expect(signIn).toBe(413);
  });
});

describe('uploads stream through the server', () => {
  let workspaceId: string;
  beforeAll(async () => {
    workspaceId = (await admin.createWorkspace({ name: 'uploads' })).id;
  });

  it('still stores an authenticated upload, and still refuses one whose bytes are not its hash', async () => {
    const plain = randomBytes(20 * MiB);
    const hash = sha256Hex(plain);
    const stored = Buffer.concat([Buffer.of(0), plain]);
    expect(await admin.uploadObject(workspaceId, hash, stored)).toEqual({
      hash,
      size: stored.length,
      created: true,
    });
    expect(Buffer.from(await admin.downloadObject(workspaceId, hash)).equals(stored)).toBe(true);

    const other = sha256Hex(randomBytes(32));
    const wrong = await upload(`/workspaces/${workspaceId}/objects/${other}`, {
      total: stored.length,
      chunk: stored,
      token: admin.token,
    });
    expect(wrong.status).toBe(422);
    expect(wrong.body.code).toBe('hash_mismatch');
    expect(await admin.missingObjects(workspaceId, [other])).toEqual([other]);
  });

  it('checks a big pack (in a worker thread): stores a good one, refuses one with an object not its id', async () => {
    const objects = Array.from({ length: 3 }, () => {
      const plain = randomBytes(6 * MiB);
      return { hash: sha256Hex(plain), bytes: Buffer.concat([Buffer.of(0), plain]) };
    });
    const pack = encodePack(objects);
    expect(await admin.uploadPack(workspaceId, pack.hash, pack.bytes)).toMatchObject({
      objects: 3,
      created: true,
    });
    expect(
      await admin.missingObjects(
        workspaceId,
        objects.map((o) => o.hash),
      ),
    ).toEqual([]);

    const liar = {
      hash: sha256Hex(randomBytes(8)),
      bytes: Buffer.concat([Buffer.of(0), randomBytes(6 * MiB)]),
    };
    const bad = encodePack([...objects.slice(0, 2), liar]);
    const refused = await upload(`/workspaces/${workspaceId}/packs/${bad.hash}`, {
      total: bad.bytes.length,
      chunk: bad.bytes,
      token: admin.token,
    });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ code: 'invalid_pack' });
    expect(String(refused.body.detail)).toContain(`object ${liar.hash}: content does not match its hash`);
    expect(await admin.missingObjects(workspaceId, [liar.hash])).toEqual([liar.hash]);
  });

  it('keeps memory bounded under many parallel authenticated 50 MB uploads', async () => {
    const before = await memory();
    const bodies = Array.from({ length: 8 }, () => {
      const plain = randomBytes(50 * MiB);
      return { hash: sha256Hex(plain), stored: Buffer.concat([Buffer.of(0), plain]) };
    });
    const answers = await Promise.all(
      bodies.map(({ hash, stored }) =>
        upload(`/workspaces/${workspaceId}/objects/${hash}`, {
          total: stored.length,
          chunk: stored,
          token: admin.token,
        }),
      ),
    );
    const after = await memory();
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 8 }, () => 200));
    process.stdout.write(
      `server memory with 400 MiB uploaded at once: ${before.rss.toFixed(0)} MiB before, ` +
        `peak ${after.peak.toFixed(0)} MiB\n`,
    );
    expect(after.peak - before.rss).toBeLessThan(150);
  }, 120_000);

  it('answers 413 as soon as an upload says or turns out to be over the limit', async () => {
    const declared = await upload(`/workspaces/${workspaceId}/objects/${sha256Hex(Buffer.of(2))}`, {
      total: 200 * MiB,
      chunk: randomBytes(MiB),
      token: admin.token,
      stall: true,
    });
    expect(declared.status).toBe(413);
    expect(declared.sentBeforeAnswer).toBe(MiB);
  });

  it('cuts off a body that streams past the limit without saying its length, and keeps nothing of it', async () => {
    const chunk = randomBytes(MiB);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += chunk.length;
        if (sent > 200 * MiB) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await fetch(
      `${server.url}/api/v1/workspaces/${workspaceId}/objects/${sha256Hex(Buffer.of(3))}`,
      {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${admin.token ?? ''}` },
        body,
        duplex: 'half',
      },
    );
    expect(res.status).toBe(413);
    expect(sent).toBeLessThan(200 * MiB);
    expect((await spooled()).files).toEqual([]);
  });

  it('keeps uploads in a folder of its own (0700), and nothing of one whose client went away', async () => {
    const { mode } = await spooled();
    expect(mode).toBe(0o700);
    const waiting = await new Promise<string[]>((resolve) => {
      const req = request(
        `${server.url}/api/v1/workspaces/${workspaceId}/objects/${sha256Hex(Buffer.of(4))}`,
        {
          method: 'PUT',
          agent: keepAlive,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(30 * MiB),
            authorization: `Bearer ${admin.token ?? ''}`,
          },
        },
      );
      req.on('error', () => undefined);
      req.write(randomBytes(5 * MiB), () => {
        setTimeout(() => {
          void spooled().then(({ files }) => {
            req.destroy();
            resolve(files);
          });
        }, 300);
      });
    });
    expect(waiting).toHaveLength(1); // the upload was on its way to disk
    for (let i = 0; i < 50 && (await spooled()).files.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await spooled()).files).toEqual([]);
  });
});
