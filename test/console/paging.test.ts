import { randomUUID } from 'node:crypto';
import { encodeObject, type Entry, hashTree } from '@upc/image';
import type { UpcClient } from '@upc/protocol';
import type { Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closePage, CONSOLE_DIR, openPage, screenshot, signIn, useBrowser } from '../support/browser.js';
import { workspaceWithLease } from '../support/fixtures.js';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
const browser = useBrowser();

/** 24 users u01 … u24 (with the admin, 25), each with a workspace "notes"; u01 has PCs desk-01 … desk-23. */
beforeAll(async () => {
  server = await startTestServer({ env: { UPC_CONSOLE_DIR: CONSOLE_DIR } });
  for (let i = 1; i <= 24; i++) {
    const name = `u${String(i).padStart(2, '0')}`;
    const { client } = await server.user(name);
    await client.createWorkspace({ name: 'notes' });
    if (i === 1) {
      for (let d = 1; d <= 23; d++) {
        await client.registerDevice({
          machineId: randomUUID(),
          name: `desk-${String(d).padStart(2, '0')}`,
          os: 'linux',
          agentVersion: 'test',
        });
      }
    }
  }
});
afterAll(async () => {
  await server.close();
});

/** The list requests the page makes to `path` from now on (their query strings). */
function requests(page: Page, path: string): URLSearchParams[] {
  const seen: URLSearchParams[] = [];
  page.on('request', (request: Request) => {
    const url = new URL(request.url());
    if (url.pathname === `/api/v1${path}`) seen.push(url.searchParams);
  });
  return seen;
}

/** Rows of the table, less its header row. */
async function rows(page: Page, table: string): Promise<number> {
  return (await page.getByRole('table', { name: table }).getByRole('row').count()) - 1;
}

describe('Users, Workspaces and PCs are searched and paged by the server', () => {
  it('pages and searches users through the API, one request for what was typed', async () => {
    const page = await openPage(browser());
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
    const seen = requests(page, '/users');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
    const pager = page.getByRole('navigation', { name: 'Pages of users' });
    await pager.getByText('Page 1 of 2 · 25 users').waitFor();
    expect(await rows(page, 'Users')).toBe(20);
    expect(seen.map((q) => q.toString())).toContain('limit=20&offset=0');

    await pager.getByRole('button', { name: 'Next page' }).click();
    await pager.getByText('Page 2 of 2 · 25 users').waitFor();
    expect(await rows(page, 'Users')).toBe(5);
    expect(seen.map((q) => q.toString())).toContain('limit=20&offset=20');

    // Typing "u1" sends one search, once typing stops, and starts again at page 1.
    const before = seen.length;
    await page.getByLabel('Search users').pressSequentially('u1', { delay: 60 });
    await pager.getByText('Page 1 of 1 · 10 users').waitFor();
    expect(seen.slice(before).map((q) => q.toString())).toEqual(['search=u1&limit=20&offset=0']);
    expect(await rows(page, 'Users')).toBe(10);
    await screenshot(page, 'paging-users-search');
    await closePage(page);
  });

  it('pages workspaces and PCs, and searches owners and names on the server', async () => {
    const page = await openPage(browser());
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
    // The owners' names come with the rows: neither page asks for the list of every user.
    const users = requests(page, '/users');
    const main = page.getByRole('navigation', { name: 'Main' });
    await main.getByRole('link', { name: 'Workspaces' }).click();
    const workspaces = page.getByRole('navigation', { name: 'Pages of workspaces' });
    await workspaces.getByText('Page 1 of 2 · 24 workspaces').waitFor();
    expect(await rows(page, 'Workspaces')).toBe(20);
    await workspaces.getByRole('button', { name: 'Next page' }).click();
    await workspaces.getByText('Page 2 of 2 · 24 workspaces').waitFor();
    expect(await rows(page, 'Workspaces')).toBe(4);
    await page.getByLabel('Search workspaces').fill('U07');
    await workspaces.getByText('Page 1 of 1 · 1 workspace').waitFor();
    await page
      .getByRole('table', { name: 'Workspaces' })
      .getByRole('link', { name: 'notes (u07)' })
      .waitFor();
    expect(await page.getByRole('table', { name: 'Workspaces' }).getByRole('cell').allTextContents()).toEqual(
      expect.arrayContaining(['notes', 'u07']),
    );

    await main.getByRole('link', { name: 'PCs' }).click();
    const pcs = page.getByRole('navigation', { name: 'Pages of PCs' });
    await pcs.getByText('Page 1 of 2 · 23 PCs').waitFor();
    await pcs.getByRole('button', { name: 'Next page' }).click();
    await pcs.getByText('Page 2 of 2 · 23 PCs').waitFor();
    expect(
      await page
        .getByRole('table', { name: 'PCs' })
        .getByRole('cell', { name: /^desk-/ })
        .allTextContents(),
    ).toEqual(['desk-21', 'desk-22', 'desk-23']);
    // Owner is the fifth column; u01 owns every PC. Registered, never heard from since: not in session.
    const lastRow = page.getByRole('table', { name: 'PCs' }).getByRole('row').last();
    const cells = await lastRow.getByRole('cell').allTextContents();
    expect(cells[0]).toBe('desk-23');
    expect(cells[4]).toBe('u01');
    expect(['Idle', 'Offline']).toContain(cells[1]);
    await page.getByLabel('Search PCs').fill('desk-1');
    await pcs.getByText('Page 1 of 1 · 10 PCs').waitFor();
    await page.getByLabel('Search PCs').fill('desk-99');
    await page.getByText('No PC’s name, owner or OS contains “desk-99”.').waitFor();
    await screenshot(page, 'paging-pcs-no-match');
    expect(users).toEqual([]);
    await closePage(page);
  });

  it("pages a user's own workspaces on My workspaces", async () => {
    const { client } = await server.user('yan');
    for (let i = 1; i <= 21; i++) await client.createWorkspace({ name: `w${String(i).padStart(2, '0')}` });
    const page = await openPage(browser());
    await signIn(page, server.url, 'yan', 'yan-password', 'My workspaces');
    const pager = page.getByRole('navigation', { name: 'Pages of your workspaces' });
    await pager.getByText('Page 1 of 2 · 21 workspaces').waitFor();
    expect(await rows(page, 'My workspaces')).toBe(20);
    await pager.getByRole('button', { name: 'Next page' }).click();
    await pager.getByText('Page 2 of 2 · 21 workspaces').waitFor();
    expect(
      await page.getByRole('table', { name: 'My workspaces' }).getByRole('link').allTextContents(),
    ).toEqual(['w21']);
    await closePage(page);
  });
});

describe("a version's folder is paged by the server", () => {
  /** A version whose home layer holds `files` empty files f000 … and the folder "sub". */
  async function versionWithFolder(client: UpcClient, files: number) {
    const setup = await workspaceWithLease(client, 'big-folder');
    const id = setup.workspace.id;
    const put = async (plaintext: Uint8Array) => {
      const encoded = await encodeObject(plaintext);
      await client.uploadObject(id, encoded.hash, encoded.bytes);
      return encoded.hash;
    };
    const base = { mtime: 1_700_000_000_000_000, owner: 'user' as const, group: 'user' as const };
    const dir = async (name: string, entries: Entry[]): Promise<Entry> => ({
      ...base,
      name,
      type: 'dir',
      mode: 0o755,
      tree: await put(hashTree({ entries }).bytes),
    });
    const entries: Entry[] = Array.from({ length: files }, (_, i) => ({
      ...base,
      name: `f${String(i).padStart(3, '0')}`,
      type: 'file',
      mode: 0o644,
      size: 0,
      chunks: [],
    }));
    const home = await dir('home', [...entries, await dir('sub', [])]);
    const version = await client.commit(id, {
      kind: 'sync',
      deviceId: setup.device.id,
      fencingToken: setup.lease.fencingToken,
      parentId: null,
      rootTree: await put(hashTree({ entries: [home] }).bytes),
    });
    return { id, version };
  }

  it('asks for one page of the folder at a time, folders first', async () => {
    const { client } = await server.user('zoe');
    const { id, version } = await versionWithFolder(client, 250);
    const page = await openPage(browser());
    await signIn(page, server.url, 'zoe', 'zoe-password', 'My workspaces');
    const seen = requests(page, `/workspaces/${id}/versions/${version.id}/tree`);
    await page.goto(`${server.url}/workspaces/${id}/versions/${version.id}`);
    const pager = page.getByRole('navigation', { name: 'Pages of files' });
    await pager.getByText('Page 1 of 3').waitFor();
    const files = page.getByRole('table', { name: 'Files' });
    expect(await rows(page, 'Files')).toBe(100);
    await files.getByRole('button', { name: 'Folder sub' }).waitFor();
    expect(seen.map((q) => q.toString())).toContain('path=home&limit=100&offset=0');

    await pager.getByRole('button', { name: 'Next page' }).click();
    await pager.getByText('Page 2 of 3').waitFor();
    await files.getByRole('cell', { name: 'f099', exact: true }).waitFor();
    expect(seen.map((q) => q.toString())).toContain('path=home&limit=100&offset=100');
    await pager.getByRole('button', { name: 'Next page' }).click();
    await pager.getByText('Page 3 of 3').waitFor();
    await files.getByRole('cell', { name: 'f249', exact: true }).waitFor();
    expect(await rows(page, 'Files')).toBe(51);
    await closePage(page);
  });
});
