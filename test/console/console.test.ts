import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pc, simulatedPcs } from '../support/agent.js';
import { CONSOLE_DIR, openPage, overflow, screenshot, signIn, useBrowser } from '../support/browser.js';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
const browser = useBrowser();
const pc = simulatedPcs(() => server.url);

beforeAll(async () => {
  server = await startTestServer({ env: { UPC_CONSOLE_DIR: CONSOLE_DIR } });
});
afterAll(async () => {
  await server.close();
});

describe('the admin console, in Chromium, against a real server', () => {
  it('signs an admin in, shows the overview, and creates a user that then exists', async () => {
    const page = await openPage(browser());
    await page.goto(`${server.url}/`);
    await screenshot(page, 'sign-in');
    await signIn(page, server.url, 'admin', 'wrong-password');
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/password|credentials/i);
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD);
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await screenshot(page, 'overview');

    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    await page.getByLabel('New username').fill('carol');
    await page.getByLabel('New password').fill('carol-password');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page
      .getByRole('table', { name: 'Users' })
      .getByRole('cell', { name: 'carol', exact: true })
      .waitFor();
    await screenshot(page, 'users');

    // It exists for the server too: carol can sign in through the API.
    const users = await (await server.admin()).listUsers();
    expect(users.map((u) => u.username)).toContain('carol');
    const login = await fetch(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'carol', password: 'carol-password' }),
    });
    expect(login.status).toBe(200);

    for (const name of ['Workspaces', 'PCs', 'Audit log']) {
      await page.getByRole('link', { name }).click();
      await page.getByRole('heading', { name, level: 1 }).waitFor();
      // Named apart from pages.test.ts's screenshots of the same pages with their data.
      await screenshot(page, `first-look-${name.toLowerCase().replace(/ /g, '-')}`);
    }
    await page.close();
  });

  it('shows a session appear live when an agent logs in, without a reload', async () => {
    await server.user('dan');
    const page = await openPage(browser());
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD);
    const sessions = page.getByRole('table', { name: 'Active sessions' });
    await sessions.waitFor();
    expect(await sessions.getByRole('cell', { name: 'dan', exact: true }).count()).toBe(0);
    const workspacesTotal = page.locator('.card.stat', { hasText: 'Workspaces' }).getByRole('definition');
    await workspacesTotal.waitFor();
    const workspacesBefore = Number(await workspacesTotal.textContent());

    const a: Pc = await pc('pc-live');
    expect((await a.login('dan')).code).toBe(0);
    await sessions.getByRole('cell', { name: 'dan', exact: true }).waitFor({ timeout: 10_000 });
    await sessions.getByRole('cell', { name: 'pc-live', exact: true }).waitFor();
    // The agent reports its state at once, not at its next 30-second heartbeat; the totals follow.
    const row = sessions.getByRole('row').filter({ hasText: 'pc-live' });
    await row.getByRole('cell', { name: 'clean', exact: true }).waitFor({ timeout: 10_000 });
    await workspacesTotal.getByText(String(workspacesBefore + 1), { exact: true }).waitFor();
    await screenshot(page, 'overview-live-session');

    await a.ok(['logout']);
    await sessions
      .getByRole('cell', { name: 'dan', exact: true })
      .waitFor({ state: 'detached', timeout: 10_000 });
    await page.close();
  });

  it("keeps a user to their own: no admin pages, and another user's workspace is refused by the API", async () => {
    await server.user('eve');
    const fayUser = await server.user('fay');
    const eve = await pc('pc-eve');
    expect((await eve.login('eve')).code).toBe(0);
    await eve.ok(['logout']);
    const fay = await pc('pc-fay');
    expect((await fay.login('fay')).code).toBe(0);
    await fay.ok(['logout']);

    const page = await openPage(browser());
    await signIn(page, server.url, 'fay', 'fay-password');
    await page.getByRole('heading', { name: 'My workspaces', level: 1 }).waitFor();
    await page.getByRole('table', { name: 'My workspaces' }).getByRole('cell', { name: 'default' }).waitFor();
    expect(await page.getByRole('link', { name: 'Users' }).count()).toBe(0);
    await screenshot(page, 'my-workspaces');

    // Through the API too: every workspace that is not fay's is refused to her, as not found.
    const all = await (await server.admin()).listWorkspaces();
    const others = all.filter((w) => w.ownerId !== fayUser.id);
    expect(others.length).toBeGreaterThan(0);
    for (const workspace of others) {
      await expect(fayUser.client.getWorkspace(workspace.id)).rejects.toMatchObject({ status: 404 });
    }
    // The console shows only fay's.
    const rows = page.getByRole('table', { name: 'My workspaces' }).getByRole('row');
    expect(await rows.count()).toBe(2); // the header and fay's "default"
    await page.close();
  });

  it('is readable at phone width, every page', async () => {
    const page = await openPage(browser(), { width: 390, height: 844 });
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD);
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    expect(await overflow(page)).toBeLessThanOrEqual(0); // wide tables scroll inside their own box
    await screenshot(page, 'overview-phone');
    for (const name of ['Users', 'Workspaces', 'PCs', 'Audit log']) {
      const link = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });
      expect(await link.isVisible(), `${name} in the navigation`).toBe(true);
      await link.click();
      await page.getByRole('heading', { name, level: 1 }).waitFor();
      await page.getByRole('status').filter({ hasText: 'Loading' }).waitFor({ state: 'detached' });
      expect(await overflow(page), `${name} at phone width`).toBeLessThanOrEqual(0);
      await screenshot(page, `phone-${name.toLowerCase().replace(/ /g, '-')}`);
    }
    await page.close();
  });
});
