import { request } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSOLE_DIR, loadConfig } from '../../apps/server/src/config.js';
import { startTestServer, type TestServer } from '../support/server.js';

const INDEX = `<!doctype html><html><head><script type="module" src="/assets/index-B1a2c3.js"></script>
<link rel="stylesheet" href="/assets/index-D4e5f6.css"></head><body><div id="root"></div></body></html>`;
const SCRIPT = 'console.log("the console");';

let dir: string;
let built: TestServer;
let unbuilt: TestServer;
let unbuiltDir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-console-'));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), INDEX);
  await writeFile(join(dir, 'assets', 'index-B1a2c3.js'), SCRIPT);
  await writeFile(join(dir, 'assets', 'index-D4e5f6.css'), 'body { margin: 0 }');
  await writeFile(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(join(dir, '.env'), 'SECRET=1');
  unbuiltDir = join(dir, 'not-built-yet');
  [built, unbuilt] = await Promise.all([
    startTestServer({ env: { UPC_CONSOLE_DIR: dir } }),
    startTestServer({ env: { UPC_CONSOLE_DIR: unbuiltDir } }),
  ]);
});
afterAll(async () => {
  await Promise.all([built.close(), unbuilt.close()]);
  await rm(dir, { recursive: true, force: true });
});

/** The CSP's directives, by name. */
const csp = (res: Response) =>
  new Map(
    (res.headers.get('content-security-policy') ?? '')
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name = '', ...values]) => [name, values]),
  );

/** GET with the path sent exactly as written (fetch would normalise dot segments). */
const rawGet = (url: string, path: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'GET', path }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end();
  });

describe('the console at /', () => {
  it('defaults to apps/console/dist and reads UPC_CONSOLE_DIR', () => {
    expect(DEFAULT_CONSOLE_DIR).toBe(join(import.meta.dirname, '../../apps/console/dist'));
    expect(loadConfig({}).consoleDir).toBe(DEFAULT_CONSOLE_DIR);
    expect(loadConfig({ UPC_CONSOLE_DIR: '/srv/console' }).consoleDir).toBe('/srv/console');
  });

  it('serves index.html at / and at any app route, never cached stale', async () => {
    for (const path of ['/', '/users/123', '/workspaces/abc/versions?x=1', '/index.html']) {
      const res = await fetch(`${built.url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control'), path).toBe('no-cache');
      expect(res.headers.get('etag'), path).toBeTruthy();
      expect(await res.text(), path).toBe(INDEX);
    }
    const head = await fetch(`${built.url}/users`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('lets the page load its own scripts, styles, images and API only', async () => {
    const res = await fetch(`${built.url}/`);
    const directives = csp(res);
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('style-src')).toEqual(["'self'"]);
    expect(directives.get('img-src')).toEqual(["'self'", 'data:']);
    expect(directives.get('connect-src')).toEqual(["'self'"]);
    expect(directives.get('object-src')).toEqual(["'none'"]);
    // Plain HTTP here: upgrading the page's requests to https would break it.
    expect(directives.has('upgrade-insecure-requests')).toBe(false);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    // The API docs keep the policy their page needs.
    const docs = await fetch(`${built.url}/api/docs`);
    expect(docs.status).toBe(200);
    expect(csp(docs).get('style-src')).toContain("'unsafe-inline'");
  });

  it('serves assets for a year, immutable, and other files revalidated', async () => {
    const script = await fetch(`${built.url}/assets/index-B1a2c3.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^(text|application)\/javascript; charset=utf-8$/);
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await script.text()).toBe(SCRIPT);
    const style = await fetch(`${built.url}/assets/index-D4e5f6.css`);
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(style.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const icon = await fetch(`${built.url}/favicon.svg`);
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    expect(icon.headers.get('cache-control')).toBe('no-cache');
  });

  it('answers a missing asset and any unknown /api path with a JSON 404', async () => {
    for (const path of ['/assets/gone-123.js', '/api/v1/nope', '/api/v1/users/123/x', '/api', '/api/']) {
      const res = await fetch(`${built.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toContain('application/problem+json');
      expect(((await res.json()) as { code: string }).code, path).toBe('not_found');
    }
    const post = await fetch(`${built.url}/users/123`, { method: 'POST' });
    expect(post.status).toBe(404);
    expect(post.headers.get('content-type')).toContain('application/problem+json');
  });

  it('never serves dot files or anything outside its folder', async () => {
    const cases: [string, number][] = [
      ['/.env', 200], // the app's page, not the file
      ['/%2e%2e/%2e%2e/etc/passwd', 200],
      ['/../../etc/passwd', 200],
      ['/assets/../.env', 404], // under /assets/ and not an asset
      ['/%00', 404],
    ];
    for (const [path, status] of cases) {
      const res = await rawGet(built.url, path);
      expect(res.status, path).toBe(status);
      expect(res.body, path).not.toContain('SECRET');
      expect(res.body, path).not.toContain('root:');
      if (status === 200) expect(res.body, path).toBe(INDEX);
    }
  });

  it('keeps the API working', async () => {
    expect((await built.anonymous().health()).status).toBe('ok');
    expect((await unbuilt.anonymous().health()).status).toBe('ok');
  });

  it('says how to build it, with 503, until it is built, and serves it once built', async () => {
    for (const path of ['/', '/users/123']) {
      const res = await fetch(`${unbuilt.url}${path}`);
      expect(res.status, path).toBe(503);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.text()).toContain('npm run build');
    }
    const api = await fetch(`${unbuilt.url}/api/v1/nope`);
    expect(api.status).toBe(404);
    expect(api.headers.get('content-type')).toContain('application/problem+json');
    // No restart needed once `npm run build` has written it.
    await mkdir(unbuiltDir);
    await writeFile(join(unbuiltDir, 'index.html'), INDEX);
    const now = await fetch(`${unbuilt.url}/users/123`);
    expect(now.status).toBe(200);
    expect(await now.text()).toBe(INDEX);
  });
});
