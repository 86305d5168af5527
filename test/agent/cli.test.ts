import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../apps/server/src/embedded-postgres.js';
import { runUpc } from '../support/agent.js';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const upc = (args: string[], env: Record<string, string> = {}, input = '') =>
  runUpc(args, { UPC_SERVER: server.url, ...env }, input);

const asAdmin = { UPC_USER: 'admin', UPC_PASSWORD: ADMIN_PASSWORD };

describe('upc admin', () => {
  it('adds a user with the password from standard input, who can then sign in', async () => {
    const added = await upc(['admin', 'user', 'add', 'zoe'], asAdmin, 'zoe-password\n');
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^created user zoe \([0-9a-f-]{36}\)\n$/);
    await server.anonymous().login('zoe', 'zoe-password');

    const admin = await upc(['admin', 'user', 'add', 'yves', '--admin', '--json'], asAdmin, 'yves-password');
    expect(JSON.parse(admin.stdout)).toMatchObject({ username: 'yves', role: 'admin' });

    const list = await upc(['admin', 'user', 'list', '--json'], asAdmin);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { username: string }[]).map((u) => u.username)).toEqual([
      'admin',
      'yves',
      'zoe',
    ]);
  });

  it('says why, with the documented exit codes', async () => {
    const wrongPassword = await upc(['admin', 'user', 'list'], { UPC_USER: 'admin', UPC_PASSWORD: 'not-it' });
    expect(wrongPassword.code).toBe(3);
    expect(wrongPassword.stderr).toContain('Wrong username or password');

    await server.admin().then((a) => a.createUser({ username: 'plain', password: 'plain-password' }));
    const notAdmin = await upc(['admin', 'user', 'list'], {
      UPC_USER: 'plain',
      UPC_PASSWORD: 'plain-password',
    });
    expect(notAdmin.code).toBe(3);
    expect(notAdmin.stderr).toContain('admins only');

    const noCredentials = await upc(['admin', 'user', 'list']);
    expect(noCredentials.code).toBe(2);
    expect(noCredentials.stderr).toContain('set UPC_USER and UPC_PASSWORD');

    const noPassword = await upc(['admin', 'user', 'add', 'xena'], asAdmin, '');
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('password on standard input');

    const unreachable = await upc(['admin', 'user', 'list'], {
      ...asAdmin,
      UPC_SERVER: `http://127.0.0.1:${await freePort()}`,
    });
    expect(unreachable.code).toBe(4);
    expect(unreachable.stderr).toContain('cannot reach the server');

    const unknown = await upc(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it('refuses to send a password over plain http to another machine unless told to', async () => {
    // An IPv4-mapped address is not one of the loopback names, yet it stays on this machine.
    const elsewhere = `http://[::ffff:127.0.0.1]:${await freePort()}`;
    const refused = await upc(['admin', 'user', 'list'], { ...asAdmin, UPC_SERVER: elsewhere });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('refusing to send a password over plain http to [::ffff:7f00:1]');
    const allowed = await upc(['admin', 'user', 'list', '--insecure-http'], {
      ...asAdmin,
      UPC_SERVER: elsewhere,
    });
    expect(allowed.code).toBe(4); // it tried: nothing listens there
  });

  it('has --help for every command', async () => {
    for (const command of [
      ['admin', 'user', 'add'],
      ['admin', 'user', 'list'],
    ]) {
      const help = await upc([...command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`usage: upc ${command.join(' ')}`);
    }
    const top = await upc(['--help']);
    expect(top.stdout).toContain('exit codes:');
  });
});
