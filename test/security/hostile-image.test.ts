import { existsSync } from 'node:fs';
import { chmod, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pc } from '../support/agent.js';
import { sh, simulatedHosts } from '../support/hosts.js';
import { type ImageSpec, publishImage } from '../support/images.js';
import { testFolder } from '../support/scratch.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * An image is data anyone with an account can write (the API takes any tree whose objects hash
 * right), so the agent that restores it as the PC's root must treat it as hostile: no link it
 * holds is ever followed, and no layer of it is anything but a folder.
 */

let server: TestServer;
const host = simulatedHosts();

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** A root-only folder of the PC where an attack would like the agent to write. */
async function hostTarget(): Promise<string> {
  const dir = await testFolder('upc-host-target-');
  await chmod(dir, 0o700);
  return dir;
}

async function pcFor(name: string): Promise<Pc> {
  return (await host(name)).pc(server.url);
}

describe('a hostile image at login', () => {
  it('its /etc layer with passwd and group linked to host files: the identity update writes neither host file', async () => {
    const target = await hostTarget();
    const { client } = await server.user('hal');
    const image: ImageSpec = {
      home: { dir: { 'notes.txt': { file: 'mine\n', owner: 'user' } }, mode: 0o700, owner: 'user' },
      cow: {
        dir: {
          etc: {
            dir: {
              passwd: { link: join(target, 'nologin') },
              group: { link: join(target, 'sudoers') },
              'hosts.allow': { link: '/etc/hosts' }, // an ordinary link: kept as it is
            },
          },
        },
      },
    };
    await publishImage(client, image);
    const pc = await pcFor('etc-links');
    const login = await pc.login('hal');
    expect(login.code, login.stderr).toBe(0);
    expect(await readdir(target)).toEqual([]);
    // The session has an identity of its own, in regular files of its own /etc.
    expect(await sh(pc, 'id -un; cat ~/notes.txt; test -L /etc/passwd || echo passwd-is-a-file')).toBe(
      'hal\nmine\npasswd-is-a-file\n',
    );
    expect(await sh(pc, 'readlink /etc/hosts.allow')).toBe('/etc/hosts\n');

    // The session's root plants the same links from inside; the next login follows none either.
    await sh(
      pc,
      `ln -sf ${join(target, 'planted')} /etc/passwd && ln -sf ${join(target, 'planted')} /etc/group`,
      true,
    );
    await pc.ok(['logout']);
    const again = await pc.login('hal');
    expect(again.code, again.stderr).toBe(0);
    expect(await readdir(target)).toEqual([]);
    expect(await sh(pc, 'id -un')).toBe('hal\n');
    await pc.ok(['logout']);
  });

  it.each([
    ['home', { home: { link: '/' } }],
    ['opt', { home: { dir: {} }, opt: { link: '/root' } }],
    ['cow', { home: { dir: {} }, cow: { link: '/' } }],
    ['cow/etc', { home: { dir: {} }, cow: { dir: { etc: { link: '/etc' } } } }],
    ['usr-local', { home: { dir: {} }, 'usr-local': { file: 'not a folder' } }],
  ] as [string, ImageSpec][])(
    'a layer that is not a folder (%s) is refused before anything is mounted',
    async (layer, image) => {
      const user = `lee${layer.replace(/[^a-z]/g, '')}`;
      const { client } = await server.user(user);
      await publishImage(client, image);
      const pc = await pcFor(`layer-${layer.replace(/[^a-z]/g, '')}`);
      const login = await pc.login(user);
      expect(login.code).not.toBe(0);
      expect(login.stderr).toContain(`its ${layer} (the layer of`);
      expect(login.stderr).toMatch(/is a (symlink|file), not a folder/);
      // Nothing is left running or restored: no session, no layers in memory.
      expect(existsSync(join(pc.home, 'session', 'session.json'))).toBe(false);
      expect(existsSync(pc.memoryLayers)).toBe(false);
    },
  );

  it.each([
    // 15 folders of 200 characters, then a file whose chunks do not hold what it claims.
    ['a file that is not what it claims, deep down', 15, /its chunks hold 3 bytes, not 10/],
    // 40 of them: a path of 8,000 characters, more than any system call takes.
    ['a path longer than the system allows', 40, /its path is longer than the system allows/],
  ])('a failed login says what went wrong in a few lines: %s', async (_what, depth, message) => {
    const user = `lon${String(depth)}`;
    const { client } = await server.user(user);
    let deep: ImageSpec = { bad: { file: 'abc', size: 10 } };
    for (let i = 0; i < depth; i++) deep = { [`${'d'.repeat(199)}${String(i % 10)}`]: { dir: deep } };
    await publishImage(client, { home: { dir: {} }, cow: { dir: { etc: { dir: deep } } } });
    const pc = await pcFor(`long${String(depth)}`);
    const login = await pc.login(user);
    expect(login.code).not.toBe(0);
    expect(login.stderr).toMatch(message);
    expect(login.stderr.length).toBeLessThan(1000);
    expect(existsSync(pc.memoryLayers)).toBe(false);
  });
});

describe('what a session leaves for the PC', () => {
  it('an image with links to host files leaves the host as it was after logout', async () => {
    const target = await hostTarget();
    const { client } = await server.user('hux');
    await publishImage(client, {
      home: { dir: { '.profile': { link: join(target, 'profile') } }, owner: 'user', mode: 0o700 },
    });
    const pc = await pcFor('leaves');
    const login = await pc.login('hux');
    expect(login.code, login.stderr).toBe(0);
    await sh(pc, 'echo written > ~/new.txt');
    await pc.ok(['logout']);
    expect(await readdir(target)).toEqual([]);
    expect(await readFile(join(target, 'profile'), 'utf8').catch(() => 'absent')).toBe('absent');
  });
});
