import pg from 'pg';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedPcs } from '../support/agent.js';
import {
  closePage,
  CONSOLE_DIR,
  openPage,
  overflow,
  screenshot,
  signIn,
  useBrowser,
} from '../support/browser.js';
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

/** Makes the server's database say the PC was last heard from `ago` (an SQL interval) ago. */
async function lastSeenAgo(deviceId: string, ago: string): Promise<void> {
  const db = new pg.Client({ connectionString: server.databaseUrl });
  await db.connect();
  try {
    await db.query(`UPDATE devices SET last_seen_at = now() - $2::interval WHERE id = $1`, [deviceId, ago]);
  } finally {
    await db.end();
  }
}

/** The row of the PCs table for the PC named `name`. */
const pcRow = (page: Page, name: string) =>
  page
    .getByRole('table', { name: 'PCs' })
    .getByRole('row')
    .filter({ has: page.getByRole('cell', { name, exact: true }) });

async function defaultWorkspace(ownerId: string): Promise<string> {
  const [workspace] = await (await server.admin()).listWorkspaces({ ownerId });
  if (!workspace) throw new Error('the user has no workspace');
  return workspace.id;
}

describe('the console pages for workspaces, PCs and the audit log', () => {
  it("shows a workspace's version timeline: the PC's sync and logout versions, with the PC's name", async () => {
    const gus = await server.user('gus');
    const a = await pc('pc-gus');
    expect((await a.login('gus')).code).toBe(0);
    await a.ok(['exec', '--', 'sh', '-c', 'printf "first draft\\n" > "$HOME/notes.txt"']);
    await a.ok(['sync']);
    await a.ok(['exec', '--', 'sh', '-c', 'head -c 20000 /dev/urandom > "$HOME/blob.bin"']);
    await a.ok(['logout']);
    const id = await defaultWorkspace(gus.id);
    const versions = await gus.client.listVersions(id);
    const kinds = versions.map((v) => v.kind);
    expect(kinds).toContain('sync');
    expect(kinds[0]).toBe('logout');

    const page = await openPage(browser());
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
    await page.getByRole('link', { name: 'Workspaces' }).click();
    await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
    await page.getByLabel('Search workspaces').fill('gus');
    const link = page.getByRole('table', { name: 'Workspaces' }).getByRole('link', { name: 'default (gus)' });
    await link.waitFor();
    const row = page
      .getByRole('table', { name: 'Workspaces' })
      .getByRole('row')
      .filter({ has: page.getByRole('link', { name: 'default (gus)' }) });
    expect((await row.getByRole('cell').allTextContents()).slice(0, 2)).toEqual(['default', 'gus']);
    await screenshot(page, 'workspaces');
    // The page names its owner and PCs without listing every user or every PC of the fleet.
    const asked: string[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname === '/api/v1/users' || url.pathname === '/api/v1/devices')
        asked.push(url.pathname + url.search);
    });
    await link.click();

    await page.getByRole('heading', { name: 'default', level: 1 }).waitFor();
    await page.getByRole('term').filter({ hasText: 'Owner' }).waitFor();
    expect(
      await page.locator('.facts div').filter({ hasText: 'Owner' }).getByRole('definition').textContent(),
    ).toBe('gus');
    const timeline = page.getByRole('table', { name: 'Versions' });
    await timeline.getByRole('cell', { name: 'logout', exact: true }).waitFor();
    expect(await timeline.getByRole('cell', { name: 'sync', exact: true }).count()).toBe(
      kinds.filter((k) => k === 'sync').length,
    );
    // Every version was made on pc-gus, and the table says so by name; the header row plus one a version.
    expect(await timeline.getByRole('row').count()).toBe(versions.length + 1);
    expect(await timeline.getByRole('cell', { name: 'pc-gus', exact: true }).count()).toBe(versions.length);
    expect(await timeline.getByText(/^\+\d/).count()).toBeGreaterThan(0); // the files added show as growth
    await page.getByTestId('lease').getByText('Nobody holds the lease.').waitFor();
    expect(asked).toEqual([`/api/v1/devices?ownerId=${gus.id}`]);
    await screenshot(page, 'workspace');
    await closePage(page);

    // At phone width the page fits; its tables scroll inside their own boxes.
    const phone = await openPage(browser(), { width: 390, height: 844 });
    await signIn(phone, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
    await phone.goto(`${server.url}/workspaces/${id}`);
    await phone
      .getByRole('table', { name: 'Versions' })
      .getByRole('cell', { name: 'logout', exact: true })
      .waitFor();
    expect(await overflow(phone)).toBeLessThanOrEqual(0);
    await screenshot(phone, 'workspace-phone');
    await closePage(phone);
  });

  it('force-releases a lease through a dialog that names the PC holding it', async () => {
    const hal = await server.user('hal');
    const a = await pc('pc-hal');
    expect((await a.login('hal')).code).toBe(0);
    const id = await defaultWorkspace(hal.id);
    expect((await hal.client.getLease(id))?.deviceId).toBeDefined();
    // The PC dies with the lease held (its daemon would otherwise renew, and regain, the lease).
    await a.kill();

    const page = await openPage(browser());
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
    const sessions = page.getByRole('table', { name: 'Active sessions' });
    await sessions.getByRole('cell', { name: 'pc-hal', exact: true }).waitFor({ timeout: 10_000 });

    await page.goto(`${server.url}/workspaces/${id}`);
    await page.getByRole('heading', { name: 'default', level: 1 }).waitFor();
    const lease = page.getByTestId('lease');
    await lease.getByText('In use on pc-hal').waitFor();
    await lease.getByText('hal', { exact: true }).waitFor();
    await lease.getByRole('button', { name: 'Force-release lease' }).click();

    const dialog = page.getByRole('dialog', { name: 'Force-release the lease held by pc-hal?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toMatch(/pc-hal.*conflict version/s);
    await screenshot(page, 'workspace-force-release');
    await dialog.getByRole('button', { name: 'Force-release', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('status').getByText('Released the lease that pc-hal held.').waitFor();
    await lease.getByText('Nobody holds the lease.').waitFor();

    // The server agrees, and the live sessions list drops the row.
    expect(await hal.client.getLease(id)).toBeNull();
    const events = await (await server.admin()).listAudit({ action: 'lease.force_release', workspaceId: id });
    expect(events).toHaveLength(1);
    await page.getByRole('link', { name: 'Overview' }).click();
    await sessions.waitFor();
    await sessions
      .getByRole('cell', { name: 'pc-hal', exact: true })
      .waitFor({ state: 'detached', timeout: 10_000 });
    await closePage(page);
  });

  it('shows a PC in session while its session runs, idle once it ends, and its audit events', async () => {
    const ivy = await server.user('ivy');
    // Another PC of hers, not heard from for an hour.
    const lab = await ivy.client.registerDevice({
      machineId: 'lab-ivy',
      name: 'lab-ivy',
      os: 'linux',
      agentVersion: 'test',
    });
    await lastSeenAgo(lab.id, '1 hour');
    const a = await pc('pc-ivy');
    expect((await a.login('ivy')).code).toBe(0);

    const page = await openPage(browser());
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
    await page.getByRole('link', { name: 'PCs' }).click();
    await page.getByRole('heading', { name: 'PCs', level: 1 }).waitFor();
    const row = pcRow(page, 'pc-ivy');
    await row.getByText('default').waitFor({ timeout: 10_000 }); // its session, from the live list
    const cells = await row.getByRole('cell').allTextContents();
    expect(cells).toEqual(expect.arrayContaining(['pc-ivy', 'In session', 'default (ivy)', 'ivy']));
    expect(cells).not.toContain('Online');
    expect(await pcRow(page, 'lab-ivy').getByRole('cell').allTextContents()).toEqual([
      'lab-ivy',
      'Offline',
      'none',
      expect.any(String) as string,
      'ivy',
      'linux',
      'test',
    ]);
    await screenshot(page, 'pcs');

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
    const table = page.getByRole('table', { name: 'Audit events' });
    await table.getByRole('cell', { name: 'lease.acquire', exact: true }).first().waitFor();
    await table.getByRole('cell', { name: 'auth.login', exact: true }).first().waitFor();
    const actions = () => table.getByRole('code').allTextContents();
    const all = await actions();
    await screenshot(page, 'audit-log');

    await page.getByLabel('Action').selectOption('lease.acquire');
    await expect.poll(actions).not.toEqual(all);
    const leases = await actions();
    expect(leases.length).toBeGreaterThan(0);
    expect(leases.length).toBeLessThan(all.length);
    expect(new Set(leases)).toEqual(new Set(['lease.acquire']));

    // And by user: ivy's own lease events only, with her PC named.
    await page.getByLabel('User').selectOption({ label: 'ivy' });
    await expect.poll(async () => (await table.getByRole('row').count()) - 1).toBe(1);
    await table.getByText(/PC pc-ivy/).waitFor();
    await screenshot(page, 'audit-log-filtered');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(async () => (await actions()).length).toBeGreaterThanOrEqual(all.length);

    // Once she logs out, the PC's agent was heard from just now but runs no session: idle.
    await a.ok(['logout']);
    await page.getByRole('link', { name: 'PCs' }).click();
    await row.getByRole('cell', { name: 'none', exact: true }).waitFor({ timeout: 10_000 });
    const after = await row.getByRole('cell').allTextContents();
    expect(after.slice(0, 3)).toEqual(['pc-ivy', 'Idle', 'none']);
    expect(after).toContain('ivy');
    await screenshot(page, 'pcs-idle');
    await closePage(page);
  });

  it("shows a user their own workspace's page, and not found for someone else's (the API refuses it too)", async () => {
    const jo = await server.user('jo');
    const kim = await server.user('kim');
    const mine = await jo.client.createWorkspace({ name: 'jo-notes' });
    const theirs = await kim.client.createWorkspace({ name: 'kim-private' });

    const page = await openPage(browser());
    await signIn(page, server.url, 'jo', 'jo-password', 'My workspaces');
    await page.getByRole('table', { name: 'My workspaces' }).getByRole('link', { name: 'jo-notes' }).click();
    await page.getByRole('heading', { name: 'jo-notes', level: 1 }).waitFor();
    await page.getByText('No versions yet: no PC has saved this workspace.').waitFor();

    await page.goto(`${server.url}/workspaces/${theirs.id}`);
    await page.getByRole('heading', { name: 'Workspace not found', level: 1 }).waitFor();
    expect(await page.getByText('kim-private').count()).toBe(0);
    await screenshot(page, 'workspace-not-found');

    await expect(jo.client.getWorkspace(theirs.id)).rejects.toMatchObject({ status: 404 });
    await expect(jo.client.listVersions(theirs.id)).rejects.toMatchObject({ status: 404 });
    await expect(jo.client.getLease(theirs.id)).rejects.toMatchObject({ status: 404 });
    await expect(jo.client.forceReleaseLease(theirs.id)).rejects.toMatchObject({ status: 404 });
    expect((await jo.client.getWorkspace(mine.id)).name).toBe('jo-notes');
    await closePage(page);
  });
});
