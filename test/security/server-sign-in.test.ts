import { request } from 'node:http';
import type { PcLoginRequest, UpcClient } from '@upc/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

/**
 * Issue 14, finding 13: the sign-in limit counted a failure only after the password was checked, so
 * 60 parallel wrong passwords got 19 tries past a limit of 10; and a failure from anywhere counted
 * against the user, so anyone could lock any account (the admin's too) for 15 minutes. Now a try is
 * counted in the database before its password is hashed, per username per address (and per address),
 * and past the limit each try from there waits longer, while the user signs in from elsewhere.
 *
 * Each "address" is a real source address on loopback (127.0.0.x), as the server sees it: no proxy
 * header is trusted.
 */
const LIMIT = 10;
const ADDRESS_LIMIT = 50;

let server: TestServer;
let admin: UpcClient;
beforeAll(async () => {
  server = await startTestServer({
    env: {
      UPC_LOGIN_MAX_FAILURES_PER_USER: String(LIMIT),
      UPC_LOGIN_MAX_FAILURES_PER_ADDRESS: String(ADDRESS_LIMIT),
      // Past the limit the next try waits at least this long: no slow machine lets one more through.
      UPC_LOGIN_BACKOFF_SECONDS: '60',
    },
  });
  admin = await server.admin();
});
afterAll(async () => {
  await server.close();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
  retryAfter: string | undefined;
}

/** POSTs JSON to the server at `base` from the source address `from`, on a connection of its own. */
function postTo(base: string, path: string, body: unknown, from: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/api/v1${path}`,
      { method: 'POST', localAddress: from, agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          const retryAfter = res.headers['retry-after'];
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(text) as Record<string, unknown>,
            retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const post = (path: string, body: unknown, from: string) => postTo(server.url, path, body, from);
const login = (username: string, password: string, from: string) =>
  post('/auth/login', { username, password }, from);
const pcLogin = (username: string, password: string, from: string) =>
  post(
    '/auth/pc-login',
    {
      username,
      password,
      device: { machineId: `machine-${from}`, name: `pc-${from}`, os: 'linux', agentVersion: 'test' },
      workspace: 'main',
    } satisfies PcLoginRequest,
    from,
  );

const statuses = (answers: Answer[]) => {
  const count = (status: number) => answers.filter((a) => a.status === status).length;
  return { verified: count(401), refused: count(429), other: answers.length - count(401) - count(429) };
};

const failuresAudited = async (username: string) =>
  (await admin.listAudit({ action: 'auth.login_failed', limit: 500 })).filter(
    (e) => e.details.username === username,
  ).length;

describe('the sign-in limit', () => {
  it('lets at most the limit of 60 parallel wrong passwords from one address be checked', async () => {
    await admin.createUser({ username: 'victim', password: 'victim-password' });
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => login('victim', `guess-${i}`, '127.0.0.2')),
    );
    const { verified, refused, other } = statuses(answers);
    expect(other).toBe(0);
    expect(verified).toBe(LIMIT);
    expect(refused).toBe(60 - LIMIT);
    expect(await failuresAudited('victim')).toBe(LIMIT);
    const limited = answers.find((a) => a.status === 429);
    expect(limited?.body.code).toBe('rate_limited');
    expect(Number(limited?.retryAfter)).toBeGreaterThan(0);
    // From the attacker's address the right password waits too: the pair is held up, not the user.
    expect((await login('victim', 'victim-password', '127.0.0.2')).status).toBe(429);
    expect((await login('victim', 'victim-password', '127.0.0.3')).status).toBe(200);
  });

  it("does not let an attacker's failures elsewhere keep the admin (or anyone) from signing in", async () => {
    const attack = await Promise.all(
      Array.from({ length: 60 }, (_, i) => login('admin', `guess-${i}`, '127.0.0.4')),
    );
    expect(statuses(attack).verified).toBeLessThanOrEqual(LIMIT);
    expect(statuses(attack).refused).toBeGreaterThanOrEqual(60 - LIMIT);
    // The attacker keeps going while the admin signs in from their own address.
    const [admins, more] = await Promise.all([
      login('admin', ADMIN_PASSWORD, '127.0.0.5'),
      Promise.all(Array.from({ length: 10 }, () => login('admin', 'guess', '127.0.0.4'))),
    ]);
    expect(admins.status).toBe(200);
    expect(admins.body.token).toMatch(/^upc_/);
    expect(statuses(more).refused).toBe(10);
    // And a PC's login, through the other route, is not held up either.
    await admin.createUser({ username: 'worker', password: 'worker-password' });
    await Promise.all(Array.from({ length: 30 }, () => login('worker', 'guess', '127.0.0.4')));
    expect((await pcLogin('worker', 'worker-password', '127.0.0.6')).status).toBe(200);
  });

  it('counts /auth/pc-login and /auth/login tries of a user from one address together', async () => {
    await admin.createUser({ username: 'shared', password: 'shared-password' });
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0
          ? pcLogin('shared', `guess-${i}`, '127.0.0.7')
          : login('shared', `guess-${i}`, '127.0.0.7'),
      ),
    );
    const { verified, refused, other } = statuses(answers);
    expect(other).toBe(0);
    expect(verified).toBe(LIMIT);
    expect(refused).toBe(40 - LIMIT);
    expect((await pcLogin('shared', 'shared-password', '127.0.0.7')).status).toBe(429);
    expect((await pcLogin('shared', 'shared-password', '127.0.0.8')).status).toBe(200);
  });

  it('limits one address spraying many usernames at once', async () => {
    const answers = await Promise.all(
      Array.from({ length: 80 }, (_, i) => login(`nobody-${i}`, 'guess', '127.0.0.9')),
    );
    const { verified, refused, other } = statuses(answers);
    expect(other).toBe(0);
    expect(verified).toBe(ADDRESS_LIMIT);
    expect(refused).toBe(80 - ADDRESS_LIMIT);
    expect((await login('admin', ADMIN_PASSWORD, '127.0.0.9')).status).toBe(429);
    expect((await login('admin', ADMIN_PASSWORD, '127.0.0.10')).status).toBe(200);
  });
});

describe('past the limit, each try waits longer than the last', () => {
  let quick: TestServer;
  beforeAll(async () => {
    quick = await startTestServer({
      env: { UPC_LOGIN_MAX_FAILURES_PER_USER: '2', UPC_LOGIN_BACKOFF_SECONDS: '1' },
    });
    await (await quick.admin()).createUser({ username: 'typo', password: 'typo-password' });
  });
  afterAll(async () => {
    await quick.close();
  });

  const attempt = (password: string) =>
    postTo(quick.url, '/auth/login', { username: 'typo', password }, '127.0.0.11');
  const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000 + 150));

  it('waits 1 s, then 2 s, then 4 s, and the right password starts again from nothing', async () => {
    expect((await attempt('wrong-1')).status).toBe(401);
    expect((await attempt('wrong-2')).status).toBe(401);
    const waits: number[] = [];
    for (let i = 0; i < 2; i++) {
      const held = await attempt('wrong');
      expect(held.status).toBe(429);
      waits.push(Number(held.retryAfter));
      await sleep(Number(held.retryAfter));
      expect((await attempt('wrong')).status).toBe(401);
    }
    expect(waits).toEqual([1, 2]);
    // The right password waits its turn too (from here: elsewhere it would not).
    const held = await attempt('typo-password');
    expect(held.status).toBe(429);
    expect(held.retryAfter).toBe('4');
    await sleep(Number(held.retryAfter));
    expect((await attempt('typo-password')).status).toBe(200);
    // Counted from nothing again: two typos go straight through.
    expect((await attempt('wrong-1')).status).toBe(401);
    expect((await attempt('wrong-2')).status).toBe(401);
    expect((await attempt('wrong-3')).status).toBe(429);
  }, 30_000);
});
