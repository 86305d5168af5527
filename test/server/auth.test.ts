import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemOf } from '../support/problems.js';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    env: {
      UPC_LOGIN_MAX_FAILURES_PER_USER: '3',
      UPC_LOGIN_MAX_FAILURES_PER_ADDRESS: '8',
      // Past the limit, the next try waits at least this long: longer than any test takes.
      UPC_LOGIN_BACKOFF_SECONDS: '600',
    },
  });
});
afterAll(async () => {
  await server.close();
});

describe('auth', () => {
  it('health answers 200 with db and store up', async () => {
    expect(await server.anonymous().health()).toEqual({ status: 'ok', db: 'ok', store: 'ok' });
  });

  it('logs in, says who I am, and a logged-out token is refused with 401', async () => {
    const client = server.anonymous();
    const login = await client.login('admin', ADMIN_PASSWORD);
    expect(login.token).toMatch(/^upc_/);
    expect(login.user).toMatchObject({ username: 'admin', role: 'admin', disabled: false });
    expect(await client.me()).toMatchObject({ username: 'admin' });
    await client.logout();
    const problem = await problemOf(client.me());
    expect(problem.status).toBe(401);
    expect(problem.code).toBe('token_revoked');
  });

  it('refuses requests without a token and with a made-up one', async () => {
    expect((await problemOf(server.anonymous().me())).code).toBe('unauthenticated');
    const forged = server.anonymous();
    forged.token = 'upc_' + 'A'.repeat(43);
    expect((await problemOf(forged.me())).code).toBe('token_revoked');
  });

  it('rate-limits failed logins of a user from one address with 429 and Retry-After, even for the right password', async () => {
    const admin = await server.admin();
    await admin.createUser({ username: 'victim', password: 'victim-password' });
    for (let i = 0; i < 3; i++) {
      expect((await problemOf(server.anonymous().login('victim', 'wrong-password'))).code).toBe(
        'invalid_credentials',
      );
    }
    const limited = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'victim', password: 'victim-password' }),
    });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('content-type')).toContain('application/problem+json');
    expect(((await limited.json()) as { code: string }).code).toBe('rate_limited');
  });
});

describe('login rate limit per address', () => {
  it('refuses an address that keeps failing across many usernames, and forgets a user’s failures on success', async () => {
    const admin = await server.admin();
    await admin.createUser({ username: 'patient', password: 'patient-password' });
    // two failures, then a success: the per-user count starts again
    for (let i = 0; i < 2; i++) await problemOf(server.anonymous().login('patient', 'wrong-password'));
    await server.anonymous().login('patient', 'patient-password');
    await problemOf(server.anonymous().login('patient', 'wrong-password'));
    await problemOf(server.anonymous().login('patient', 'wrong-password'));
    await server.anonymous().login('patient', 'patient-password');

    // the address limit is 8 failures in the window, whatever the usernames
    const codes: string[] = [];
    for (let i = 0; i < 10; i++)
      codes.push((await problemOf(server.anonymous().login(`nobody${i}`, 'guess'))).code);
    expect(codes.filter((c) => c === 'invalid_credentials').length).toBeLessThanOrEqual(8);
    expect(codes.at(-1)).toBe('rate_limited');
    const blocked = await problemOf(server.anonymous().login('patient', 'patient-password'));
    expect(blocked.status).toBe(429);
    expect(blocked.problem.retryAfterSeconds).toBeGreaterThan(0);
  });
});
