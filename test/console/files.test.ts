import { readFile } from 'node:fs/promises';
import type { UpcClient, Version } from '@upc/protocol';
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

const FIRST = 'quarterly report, first draft\n';
const SECOND = 'quarterly report, second draft, with more numbers\n';

/** On a signed-in PC: the report written, saved, rewritten and saved again; the two sync versions. */
async function twoDrafts(
  on: Pc,
  client: UpcClient,
  ownerId: string,
): Promise<{ id: string; first: Version; second: Version }> {
  const write = (text: string) =>
    on.ok([
      'exec',
      '--',
      'sh',
      '-c',
      `cd "$HOME" && mkdir -p docs && printf '%s' '${text}' > docs/report.txt`,
    ]);
  await write(FIRST);
  await on.ok(['sync']);
  await write(SECOND);
  await on.ok(['sync']);
  const [workspace] = await (await server.admin()).listWorkspaces({ ownerId });
  if (!workspace) throw new Error('the user has no workspace');
  const syncs = (await client.listVersions(workspace.id)).filter((v) => v.kind === 'sync');
  const [second, first] = syncs; // newest first
  if (!first || !second) throw new Error('expected two sync versions');
  const text = async (v: Version) =>
    new TextDecoder().decode(await client.downloadFile(workspace.id, v.id, 'home/docs/report.txt'));
  expect(await text(first)).toBe(FIRST);
  expect(await text(second)).toBe(SECOND);
  return { id: workspace.id, first, second };
}

async function headText(client: UpcClient, id: string): Promise<string> {
  const head = (await client.getWorkspace(id)).headVersionId;
  if (head === null) throw new Error('no HEAD');
  const folder = await client.listTree(id, head, 'home/docs');
  expect(folder.entries.map((e) => e.name)).toContain('report.txt');
  return new TextDecoder().decode(await client.downloadFile(id, head, 'home/docs/report.txt'));
}

describe("the console's file browser, diff and restore", () => {
  it('browses a version, downloads a file, compares with the previous version and restores a file', async () => {
    const olga = await server.user('olga');
    const a = await pc('pc-olga');
    expect((await a.login('olga')).code).toBe(0);
    const { id, first, second } = await twoDrafts(a, olga.client, olga.id);
    await a.ok(['logout']);

    const page = await openPage(browser());
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
    await page.goto(`${server.url}/workspaces/${id}`);
    await page.getByRole('heading', { name: 'default', level: 1 }).waitFor();
    const timeline = page.getByRole('table', { name: 'Versions' });
    // The first sync's row (one row a version, newest first, under the header row).
    const index = (await olga.client.listVersions(id)).findIndex((v) => v.id === first.id);
    await timeline
      .getByRole('row')
      .nth(index + 1)
      .getByRole('link', { name: /^Browse the sync version of / })
      .click();
    await page.waitForURL(`**/workspaces/${id}/versions/${first.id}`);

    // It opens in the home layer: the breadcrumb says so, and the folder docs is there.
    const folder = page.getByRole('navigation', { name: 'Folder' });
    await folder.getByText('home', { exact: true }).waitFor();
    expect(await folder.locator('[aria-current="location"]').textContent()).toBe('home');
    const files = page.getByRole('table', { name: 'Files' });
    await files.getByRole('button', { name: 'Folder docs' }).click();
    await files.getByRole('cell', { name: 'report.txt', exact: true }).waitFor();
    expect(await folder.locator('[aria-current="location"]').textContent()).toBe('docs');
    const row = files.getByRole('row').filter({ hasText: 'report.txt' });
    expect(await row.getByRole('cell').nth(1).textContent()).toBe(`${FIRST.length} B`);
    await screenshot(page, 'files-browser');

    // Download: the bytes are those written on the PC.
    const downloading = page.waitForEvent('download');
    await files.getByRole('button', { name: 'Download report.txt' }).click();
    const download = await downloading;
    expect(download.suggestedFilename()).toBe('report.txt');
    expect(await readFile(await download.path())).toEqual(Buffer.from(FIRST));

    // The breadcrumb leads back up, to the image root with its layers.
    await folder.getByRole('button', { name: 'Image root' }).click();
    await files.getByRole('button', { name: 'Folder home' }).waitFor();
    await folder.getByRole('button', { name: 'Image root' }).waitFor({ state: 'detached' });
    await files.getByRole('button', { name: 'Folder home' }).click();
    await files.getByRole('button', { name: 'Folder docs' }).click();
    await files.getByRole('cell', { name: 'report.txt', exact: true }).waitFor();

    // Compare the second sync with the first: the report was modified.
    await page.goto(`${server.url}/workspaces/${id}/versions/${second.id}`);
    await page.getByRole('button', { name: 'Compare with previous' }).click();
    const changes = page.getByRole('table', { name: 'Changes' });
    const changed = changes.getByRole('row').filter({ hasText: 'home/docs/report.txt' });
    await changed.waitFor();
    expect(await changed.getByRole('cell').allTextContents()).toEqual([
      'home/docs/report.txt',
      'modified',
      `${FIRST.length} B → ${SECOND.length} B`,
    ]);
    await screenshot(page, 'files-diff');

    // Restore the first draft: back to the first version, in the folder last open there (the
    // address keeps it), the file's Restore, a dialog.
    await page.goBack();
    await page.waitForURL(`**/workspaces/${id}/versions/${first.id}?path=home/docs`);
    await files.getByRole('button', { name: 'Restore report.txt' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore home/docs/report.txt?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toMatch(/new version on top of the latest one.*Nothing is deleted/s);
    await screenshot(page, 'files-restore-dialog');
    const rowsBefore = await timeline.getByRole('row').count();
    await dialog.getByRole('button', { name: 'Restore', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    await page
      .getByRole('status')
      .getByText(/^Restored home\/docs\/report.txt from the sync version/)
      .waitFor();
    // The timeline shows the new version, a checkpoint, as HEAD.
    await timeline.getByRole('cell', { name: 'checkpoint', exact: true }).waitFor();
    expect(await timeline.getByRole('row').count()).toBe(rowsBefore + 1);
    expect(await headText(olga.client, id)).toBe(FIRST);
    await page.getByRole('link', { name: 'Browse the new version' }).click();
    await page.getByRole('heading', { name: /^Version: checkpoint, .*HEAD$/, level: 2 }).waitFor();

    // Restoring the whole second version brings the second draft back, as one more version.
    await page.goto(`${server.url}/workspaces/${id}/versions/${second.id}`);
    await page.getByRole('button', { name: 'Restore this version' }).click();
    const whole = page.getByRole('dialog', { name: 'Restore this version?' });
    await whole.getByRole('button', { name: 'Restore', exact: true }).click();
    await whole.waitFor({ state: 'detached' });
    await page
      .getByRole('status')
      .getByText(/^Restored the sync version of /)
      .waitFor();
    expect(await headText(olga.client, id)).toBe(SECOND);

    // At phone width, the browser fits: its table scrolls in its own box.
    await page.setViewportSize({ width: 390, height: 844 });
    await files.getByRole('button', { name: 'Folder docs' }).waitFor();
    expect(await overflow(page)).toBeLessThanOrEqual(0);
    await screenshot(page, 'files-browser-phone');
    await page.context().close();
  }, 120_000);

  it('lets an owner browse and restore their own file, naming the PC that holds the lease until it logs out', async () => {
    const pia = await server.user('pia');
    const a = await pc('pc-pia');
    expect((await a.login('pia')).code).toBe(0);
    const { id, first } = await twoDrafts(a, pia.client, pia.id);

    const page = await openPage(browser());
    await signIn(page, server.url, 'pia', 'pia-password', 'My workspaces');
    await page.getByRole('table', { name: 'My workspaces' }).getByRole('link', { name: 'default' }).click();
    await page.getByRole('heading', { name: 'default', level: 1 }).waitFor();
    const index = (await pia.client.listVersions(id)).findIndex((v) => v.id === first.id);
    await page
      .getByRole('table', { name: 'Versions' })
      .getByRole('row')
      .nth(index + 1)
      .getByRole('link', { name: /^Browse the sync version of / })
      .click();
    await page.waitForURL(`**/workspaces/${id}/versions/${first.id}`);
    const files = page.getByRole('table', { name: 'Files' });
    await files.getByRole('button', { name: 'Folder docs' }).click();
    await files.getByRole('button', { name: 'Restore report.txt' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore home/docs/report.txt?' });
    await dialog.getByRole('button', { name: 'Restore', exact: true }).click();

    // pc-pia still holds the lease: the dialog says so, and what to do.
    const refusal = dialog.getByRole('alert');
    await refusal.getByText(/in use on pc-pia by pia/).waitFor();
    expect(await refusal.textContent()).toMatch(/Log out of uPC on pc-pia.*force-release/s);
    await screenshot(page, 'files-restore-lease-held');
    expect(await headText(pia.client, id)).toBe(SECOND);

    // Once it has logged out, the same dialog restores the file.
    await a.ok(['logout']);
    await dialog.getByRole('button', { name: 'Restore', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    await page
      .getByRole('status')
      .getByText(/^Restored home\/docs\/report.txt/)
      .waitFor();
    expect(await headText(pia.client, id)).toBe(FIRST);
    expect((await pia.client.getWorkspace(id)).headVersionId).not.toBe(first.id);
    await page.context().close();
  }, 120_000);

  it('keeps the open folder in the address: a reload, Back and Forward and a shared link show it', async () => {
    const quinn = await server.user('quinn');
    const a = await pc('pc-quinn');
    expect((await a.login('quinn')).code).toBe(0);
    const { id, first } = await twoDrafts(a, quinn.client, quinn.id);
    await a.ok(['logout']);
    const version = `${server.url}/workspaces/${id}/versions/${first.id}`;

    const page = await openPage(browser());
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
    await page.goto(version);
    const folder = page.getByRole('navigation', { name: 'Folder' });
    const here = () => folder.locator('[aria-current="location"]').textContent();
    const files = page.getByRole('table', { name: 'Files' });
    await files.getByRole('button', { name: 'Folder docs' }).click();
    await page.waitForURL(`${version}?path=home/docs`);
    await files.getByRole('cell', { name: 'report.txt', exact: true }).waitFor();

    // A reload opens the same folder.
    await page.reload();
    await files.getByRole('cell', { name: 'report.txt', exact: true }).waitFor();
    expect(await here()).toBe('docs');
    await screenshot(page, 'files-folder-in-url');

    // Up to the image root, then Back and Forward through the folders opened.
    await folder.getByRole('button', { name: 'Image root' }).click();
    await page.waitForURL(`${version}?path=`);
    await files.getByRole('button', { name: 'Folder home' }).waitFor();
    expect(await here()).toBe('Image root');
    await page.goBack();
    await page.waitForURL(`${version}?path=home/docs`);
    await files.getByRole('cell', { name: 'report.txt', exact: true }).waitFor();
    await page.goBack();
    await page.waitForURL(version);
    await files.getByRole('button', { name: 'Folder docs' }).waitFor();
    expect(await here()).toBe('home');
    await page.goForward();
    await files.getByRole('cell', { name: 'report.txt', exact: true }).waitFor();
    expect(await here()).toBe('docs');
    await page.context().close();

    // The address works as a link for someone else too (here, the owner in a tab of her own).
    const shared = await openPage(browser());
    await signIn(shared, server.url, 'quinn', 'quinn-password', 'My workspaces');
    await shared.goto(`${version}?path=home/docs`);
    await shared
      .getByRole('table', { name: 'Files' })
      .getByRole('cell', { name: 'report.txt', exact: true })
      .waitFor();
    await shared.context().close();
  }, 120_000);
});
