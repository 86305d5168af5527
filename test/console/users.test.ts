import { ApiError, UpcClient } from '@upc/protocol';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closePage, CONSOLE_DIR, openPage, screenshot, signIn, useBrowser } from '../support/browser.js';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
const browser = useBrowser();

beforeAll(async () => {
  server = await startTestServer({ env: { UPC_CONSOLE_DIR: CONSOLE_DIR } });
});
afterAll(async () => {
  await server.close();
});

/** What signing in as `username` with `password` answers: 'ok', or the API's error code. */
async function signInAs(username: string, password: string): Promise<string> {
  try {
    await new UpcClient({ baseUrl: server.url }).login(username, password);
    return 'ok';
  } catch (error) {
    if (error instanceof ApiError) return error.code;
    throw error;
  }
}

/** The Users page, searched down to `username`'s row. */
async function usersPage(username: string): Promise<Page> {
  const page = await openPage(browser());
  await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
  await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
  await page.getByLabel('Search users').fill(username);
  await row(page, username).waitFor();
  return page;
}

const row = (page: Page, username: string) =>
  page
    .getByRole('table', { name: 'Users' })
    .getByRole('row')
    .filter({ has: page.getByRole('cell', { name: username, exact: true }) });

describe('the Users page, each action in the browser and its effect through the API', () => {
  it('disables and enables a user: a disabled one cannot sign in', async () => {
    await server.user('ola');
    const page = await usersPage('ola');
    await page.getByRole('button', { name: 'Disable ola' }).click();
    await row(page, 'ola').getByText('Disabled', { exact: true }).waitFor();
    expect(await signInAs('ola', 'ola-password')).toBe('user_disabled');
    await screenshot(page, 'users-disabled');

    await page.getByRole('button', { name: 'Enable ola' }).click();
    await row(page, 'ola').getByText('Active', { exact: true }).waitFor();
    expect(await signInAs('ola', 'ola-password')).toBe('ok');
    await closePage(page);
  });

  it('resets a password: the new one signs in, the old one and the sign-ins made with it no longer do', async () => {
    const { client: pia } = await server.user('pia');
    const page = await usersPage('pia');
    await page.getByRole('button', { name: 'Reset password for pia' }).click();
    const dialog = page.getByRole('dialog', { name: 'Reset password for pia' });
    await dialog.waitFor();
    // Too short first: the dialog says why and stays.
    await dialog.getByLabel('New password for pia').fill('short');
    await dialog.getByRole('button', { name: 'Set password' }).click();
    await dialog.getByRole('alert').waitFor();
    expect(await signInAs('pia', 'pia-password')).toBe('ok');

    await dialog.getByText('is signed out everywhere now').waitFor();
    await dialog.getByLabel('New password for pia').fill('pia-second-password');
    await screenshot(page, 'users-reset-password');
    await dialog.getByRole('button', { name: 'Set password' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await signInAs('pia', 'pia-second-password')).toBe('ok');
    expect(await signInAs('pia', 'pia-password')).toBe('invalid_credentials');
    // As the dialog says: the sign-in she already had no longer works.
    await expect(pia.me()).rejects.toMatchObject({ status: 401 });
    await closePage(page);
  });

  it('deletes a user after a confirmation that lists their workspaces, and the workspaces go too', async () => {
    const { client: rex, id } = await server.user('rex');
    await rex.createWorkspace({ name: 'thesis' });
    await rex.createWorkspace({ name: 'photos' });
    const page = await usersPage('rex');
    await page.getByRole('button', { name: 'Delete rex' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete rex?' });
    await dialog.getByText('This deletes the user rex and their 2 workspaces').waitFor();
    expect(await dialog.getByRole('listitem').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^thesis \(/), expect.stringMatching(/^photos \(/)]),
    );
    // Nothing happens until the name is typed.
    const confirm = dialog.getByRole('button', { name: 'Delete user' });
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel('Type rex to confirm').fill('re');
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel('Type rex to confirm').fill('rex');
    await screenshot(page, 'users-delete');
    await confirm.click();
    await dialog.waitFor({ state: 'detached' });
    await row(page, 'rex').waitFor({ state: 'detached' });

    const admin = await server.admin();
    expect((await admin.listUsers()).some((u) => u.username === 'rex')).toBe(false);
    expect(await admin.listWorkspaces({ ownerId: id })).toEqual([]);
    expect(await signInAs('rex', 'rex-password')).toBe('invalid_credentials');
    await closePage(page);
  });
});
