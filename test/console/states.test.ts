import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedPcs } from '../support/agent.js';
import { closePage, CONSOLE_DIR, openPage, screenshot, signIn, useBrowser } from '../support/browser.js';
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

/** Which API requests a state check intercepts: those to exactly this path (any query). */
type Api = (url: URL) => boolean;
const api =
  (path: string): Api =>
  (url) =>
    url.pathname === `/api/v1${path}`;

const PROBLEM = {
  type: '',
  title: 'Internal Server Error',
  status: 500,
  code: 'internal',
  detail: 'injected by the test',
};

/**
 * Each request to `which` fails (a 500 with a problem document, or the connection dropped) while
 * `open` shows the list: the page says it could not load `what`, and why. Once the server answers
 * again, "Try again" loads the list, and the error goes.
 */
async function errorThenRetry(
  page: Page,
  which: Api,
  open: () => Promise<void>,
  what: string,
  shot: string,
  how: 'http-500' | 'dropped' = 'http-500',
): Promise<void> {
  await page.route(which, (route) =>
    how === 'dropped'
      ? route.abort('connectionreset')
      : route.fulfill({
          status: 500,
          contentType: 'application/problem+json',
          body: JSON.stringify(PROBLEM),
        }),
  );
  await open();
  const alert = page.getByRole('alert').filter({ hasText: `Could not load ${what}.` });
  await alert.waitFor();
  expect(await alert.textContent()).toContain(
    how === 'dropped' ? 'Cannot reach the uPC server' : 'Internal Server Error: injected by the test',
  );
  await screenshot(page, shot);
  await page.unroute(which);
  await alert.getByRole('button', { name: 'Try again' }).click();
  await alert.waitFor({ state: 'detached' });
}

/**
 * Requests to `which` are held while `open` shows the list: the page says it is loading `what`
 * (role status); released, the list replaces the indicator.
 */
async function loading(page: Page, which: Api, open: () => Promise<void>, what: string): Promise<void> {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  await page.route(which, async (route) => {
    await held;
    await route.fallback();
  });
  await open();
  const status = page.getByRole('status').filter({ hasText: `Loading ${what}…` });
  await status.waitFor();
  release();
  await status.waitFor({ state: 'detached' });
  await page.unroute(which);
}

async function adminPage(): Promise<Page> {
  const page = await openPage(browser());
  await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
  return page;
}

/** Goes to an admin page through the main navigation and waits for its heading. */
function via(page: Page, link: string, heading = link): () => Promise<void> {
  return async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link }).click();
    await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
  };
}

/** Leaves the page for the Overview, so that going back loads it afresh. */
async function away(page: Page): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
}

describe('the empty, loading and error states of every list', () => {
  // First, while the server has no workspaces and no PCs.
  it('Workspaces and PCs: empty on a new server, loading, and an error with a working "Try again"', async () => {
    const page = await adminPage();
    const workspaces = via(page, 'Workspaces');
    await workspaces();
    await page.getByText('There are no workspaces yet.', { exact: false }).waitFor();
    await screenshot(page, 'states-workspaces-empty');
    await away(page);
    await loading(page, api('/workspaces'), workspaces, 'the workspaces');
    await page.getByText('There are no workspaces yet.', { exact: false }).waitFor();
    await away(page);
    await errorThenRetry(page, api('/workspaces'), workspaces, 'the workspaces', 'states-workspaces-error');
    await page.getByText('There are no workspaces yet.', { exact: false }).waitFor();

    const pcs = via(page, 'PCs');
    await pcs();
    await page.getByText('No PC has signed in yet.', { exact: false }).waitFor();
    await screenshot(page, 'states-pcs-empty');
    await away(page);
    await loading(page, api('/devices'), pcs, 'the PCs');
    await away(page);
    // The connection dropped, not an error answer: the page says the server cannot be reached.
    await errorThenRetry(page, api('/devices'), pcs, 'the PCs', 'states-pcs-error', 'dropped');
    await page.getByText('No PC has signed in yet.', { exact: false }).waitFor();
    await closePage(page);
  });

  it('Users: no match for a search, loading, and an error with a working "Try again"', async () => {
    await server.user('uma');
    const page = await adminPage();
    const users = via(page, 'Users');
    await users();
    const table = page.getByRole('table', { name: 'Users' });
    await table.getByRole('cell', { name: 'uma', exact: true }).waitFor();
    await page.getByLabel('Search users').fill('nobody-here');
    await page.getByText('No user’s name contains “nobody-here”.').waitFor();
    expect(await table.count()).toBe(0);
    await screenshot(page, 'states-users-no-match');
    await away(page);
    await loading(page, api('/users'), users, 'the users');
    await table.getByRole('cell', { name: 'uma', exact: true }).waitFor();
    await away(page);
    await errorThenRetry(page, api('/users'), users, 'the users', 'states-users-error');
    await table.getByRole('cell', { name: 'uma', exact: true }).waitFor();
    await closePage(page);
  });

  it('Audit log: no event for a filter, loading, and an error with a working "Try again"', async () => {
    const page = await adminPage();
    const audit = via(page, 'Audit log');
    await audit();
    const table = page.getByRole('table', { name: 'Audit events' });
    await table.getByRole('cell', { name: 'auth.login', exact: true }).first().waitFor();
    await page.getByLabel('Action').selectOption('pack.upload'); // nothing has uploaded a pack
    await page.getByText('No event matches these filters.').waitFor();
    await screenshot(page, 'states-audit-empty');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await table.getByRole('cell', { name: 'auth.login', exact: true }).first().waitFor();
    await away(page);
    await loading(page, api('/audit'), audit, 'the audit log');
    await table.waitFor();
    await away(page);
    await errorThenRetry(page, api('/audit'), audit, 'the audit log', 'states-audit-error');
    await table.getByRole('cell', { name: 'auth.login', exact: true }).first().waitFor();
    await closePage(page);
  });

  it('a workspace\'s version timeline: no versions yet, loading, and an error with a working "Try again"', async () => {
    const vic = await server.user('vic');
    const workspace = await vic.client.createWorkspace({ name: 'vic-empty' });
    const versions = api(`/workspaces/${workspace.id}/versions`);
    const page = await adminPage();
    const open = async () => {
      await page.goto(`${server.url}/workspaces/${workspace.id}`);
      await page.getByRole('heading', { name: 'vic-empty', level: 1 }).waitFor();
    };
    await open();
    await page.getByText('No versions yet: no PC has saved this workspace.').waitFor();
    await screenshot(page, 'states-timeline-empty');
    await loading(page, versions, open, 'the versions');
    await page.getByText('No versions yet: no PC has saved this workspace.').waitFor();
    await errorThenRetry(page, versions, open, 'the versions', 'states-timeline-error');
    await page.getByText('No versions yet: no PC has saved this workspace.').waitFor();
    await closePage(page);
  });

  it('the file browser of a version: an empty folder, loading, and an error with a working "Try again"', async () => {
    const wes = await server.user('wes');
    const a = await pc('pc-wes');
    expect((await a.login('wes')).code).toBe(0);
    await a.ok(['exec', '--', 'sh', '-c', 'mkdir -p "$HOME/empty" && printf "x\\n" > "$HOME/note.txt"']);
    await a.ok(['logout']);
    const [workspace] = await (await server.admin()).listWorkspaces({ ownerId: wes.id });
    if (!workspace?.headVersionId) throw new Error('wes has no saved workspace');
    const { id, headVersionId } = workspace;
    const tree = api(`/workspaces/${id}/versions/${headVersionId}/tree`);

    const page = await adminPage();
    const files = page.getByRole('table', { name: 'Files' });
    const open = async () => {
      await page.goto(`${server.url}/workspaces/${id}/versions/${headVersionId}`);
      await page.getByRole('heading', { name: /^Version: logout/, level: 2 }).waitFor();
    };
    await open();
    await files.getByRole('button', { name: 'Folder empty' }).click();
    await page.getByText('This folder is empty in this version.').waitFor();
    expect(await files.count()).toBe(0);
    await screenshot(page, 'states-files-empty');

    await loading(page, tree, open, 'the folder');
    await files.getByRole('cell', { name: 'note.txt', exact: true }).waitFor();
    await errorThenRetry(page, tree, open, 'the folder', 'states-files-error');
    await files.getByRole('cell', { name: 'note.txt', exact: true }).waitFor();

    // A folder that fails to open says so in place of the old listing, and "Try again" opens it.
    await page.route(tree, (route) =>
      route.fulfill({ status: 500, contentType: 'application/problem+json', body: JSON.stringify(PROBLEM) }),
    );
    await files.getByRole('button', { name: 'Folder empty' }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'Could not load the folder.' });
    await alert.waitFor();
    expect(await files.count()).toBe(0);
    await page.unroute(tree);
    await alert.getByRole('button', { name: 'Try again' }).click();
    await page.getByText('This folder is empty in this version.').waitFor();
    await closePage(page);
  }, 60_000);

  it('My workspaces (a user who is not an admin): none yet, loading, and an error with a working "Try again"', async () => {
    const xia = await server.user('xia');
    const workspaces = api('/workspaces');
    const page = await openPage(browser());
    const open = async () => {
      await page.reload();
      await page.getByRole('heading', { name: 'My workspaces', level: 1 }).waitFor();
    };
    await signIn(page, server.url, 'xia', 'xia-password', 'My workspaces');
    await page.getByText('You have no workspaces yet.', { exact: false }).waitFor();
    await screenshot(page, 'states-my-workspaces-empty');
    await loading(page, workspaces, open, 'your workspaces');
    await page.getByText('You have no workspaces yet.', { exact: false }).waitFor();
    await errorThenRetry(page, workspaces, open, 'your workspaces', 'states-my-workspaces-error');
    await page.getByText('You have no workspaces yet.', { exact: false }).waitFor();

    // Made since: "Try again" after a failure shows it.
    await page.route(workspaces, (route) => route.abort('connectionreset'));
    await open();
    const alert = page.getByRole('alert').filter({ hasText: 'Could not load your workspaces.' });
    await alert.waitFor();
    await xia.client.createWorkspace({ name: 'xia-notes' });
    await page.unroute(workspaces);
    await alert.getByRole('button', { name: 'Try again' }).click();
    await page
      .getByRole('table', { name: 'My workspaces' })
      .getByRole('link', { name: 'xia-notes' })
      .waitFor();
    await closePage(page);
  });
});
