import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UpcClient } from '@upc/protocol';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createServer } from '../../apps/server/src/app.js';
import { loadConfig } from '../../apps/server/src/config.js';
import { FsObjectStore } from '../../apps/server/src/store/fs-object-store.js';
import { createTestDatabase } from '../support/database.js';
import { randomObject } from '../support/fixtures.js';
import { SERVER_MAIN, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { testFolder } from '../support/scratch.js';

const running: ServerProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
});
async function start(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServerProcess(env, 90_000);
  running.push(server);
  return server;
}

describe('npm start on embedded defaults', () => {
  it('creates ./data on first start, stops cleanly on Ctrl-C, and reuses it on the next start', async () => {
    const parent = await testFolder('upc-start-');
    await chmod(parent, 0o711); // as root, the embedded PostgreSQL runs as `postgres` and must pass through
    const dataDir = join(parent, 'data');
    const first = await start({ UPC_DATA_DIR: dataDir });
    const health = await fetch(`${first.url}/api/v1/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', db: 'ok', store: 'ok' });
    // The built console (npm start builds it first; npm test's build did here) at /.
    const page = await fetch(`${first.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toMatch(/<script type="module"[^>]* src="\/assets\/[^"]+\.js"/);
    const password = /Created the admin user "admin" with password: (\S+)/.exec(first.output())?.[1];
    expect(password, first.output()).toBeDefined();
    const admin = new UpcClient({ baseUrl: first.url });
    await admin.login('admin', password ?? '');
    const workspace = await admin.createWorkspace({ name: 'kept' });
    const object = randomObject(2000);
    await admin.uploadObject(workspace.id, object.hash, object.bytes);
    expect(await first.stop('SIGINT')).toBe(0);
    expect(first.output()).toContain('SIGINT: shutting down');

    const second = await start({ UPC_DATA_DIR: dataDir });
    expect(second.output()).not.toContain('Created the admin user');
    const again = new UpcClient({ baseUrl: second.url });
    await again.login('admin', password ?? '');
    expect(Buffer.from(await again.downloadObject(workspace.id, object.hash)).equals(object.bytes)).toBe(
      true,
    );
    expect(await second.stop('SIGTERM')).toBe(0);
    await rm(parent, { recursive: true, force: true });
  });

  // Only root hands the cluster to another user; as anyone else the folder is theirs.
  it.runIf(process.getuid?.() === 0)(
    'says which folder blocks the embedded PostgreSQL when running as root',
    async () => {
      const parent = await mkdtemp(join(tmpdir(), 'upc-closed-'));
      await expect(startServerProcess({ UPC_DATA_DIR: join(parent, 'data') })).rejects.toThrow(
        `cannot enter ${parent}; set UPC_DATA_DIR to a folder outside it, or run: chmod o+x ${parent}`,
      );
      await rm(parent, { recursive: true, force: true });
    },
  );

  it('refuses to start on bad configuration, naming the variable', () => {
    let failure: { status: number; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, [SERVER_MAIN], {
        env: { PATH: process.env.PATH, PORT: 'eighty' },
        stdio: 'pipe',
      });
    } catch (error) {
      const e = error as { status: number; stderr: Buffer };
      failure = { status: e.status, stderr: e.stderr.toString() };
    }
    expect(failure?.status).toBe(2);
    expect(failure?.stderr).toMatch(/PORT: .*number/);
  });

  it('serves HTTPS with TLS_CERT_FILE and TLS_KEY_FILE, with security headers', async () => {
    const dir = await testFolder('upc-tls-');
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const database = await createTestDatabase();
    const server = await start({
      DATABASE_URL: database,
      UPC_DATA_DIR: join(dir, 'data'),
      TLS_CERT_FILE: cert,
      TLS_KEY_FILE: key,
      UPC_ADMIN_PASSWORD: 'tls-admin-password',
    });
    expect(server.url).toMatch(/^https:/);
    const { status, headers, body } = await new Promise<{
      status: number;
      headers: Record<string, unknown>;
      body: string;
    }>((resolve, reject) => {
      const req = request(`${server.url}/api/v1/health`, { ca: readFileSync(cert) }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
        });
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ status: 'ok' });
    expect(headers['strict-transport-security']).toBeDefined();
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['content-security-policy']).toContain("default-src 'self'");
  });
});

describe('health', () => {
  it('answers 503 naming what is down, and 200 again once it is back', async () => {
    const dir = await testFolder('upc-health-');
    const storeRoot = join(dir, 'objects');
    const databaseUrl = await createTestDatabase();
    const database = new URL(databaseUrl).pathname.slice(1);
    const config = loadConfig({ UPC_LOG_LEVEL: 'error', UPC_ADMIN_PASSWORD: 'health-password' });
    const server = await createServer(config, databaseUrl, new FsObjectStore(storeRoot));
    const health = async () => {
      const res = await server.app.inject({ method: 'GET', url: '/api/v1/health' });
      return { status: res.statusCode, body: res.json<unknown>() };
    };
    try {
      expect(await health()).toEqual({ status: 200, body: { status: 'ok', db: 'ok', store: 'ok' } });

      await rm(storeRoot, { recursive: true, force: true });
      await writeFile(storeRoot, 'a file where the store wants its folder');
      expect(await health()).toEqual({
        status: 503,
        body: { status: 'unavailable', db: 'ok', store: 'down' },
      });

      await adminQuery(`DROP DATABASE ${database} WITH (FORCE)`);
      expect(await health()).toEqual({
        status: 503,
        body: { status: 'unavailable', db: 'down', store: 'down' },
      });

      await adminQuery(`CREATE DATABASE ${database} TEMPLATE upc_template`);
      await rm(storeRoot);
      expect(await health()).toEqual({ status: 200, body: { status: 'ok', db: 'ok', store: 'ok' } });
    } finally {
      await server.close();
    }
  });
});

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('postgresAdminUrl') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
