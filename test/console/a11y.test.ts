import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedPcs } from '../support/agent.js';
import { CONSOLE_DIR, closePage, openPage, signIn, useBrowser } from '../support/browser.js';
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

/**
 * The controls on the page that have no accessible name: no aria-label, no aria-labelledby, no
 * <label>, no text, no title or alt. (A string: the tests are compiled without the DOM's types.)
 */
const UNNAMED_CONTROLS = `(() => {
  const controls = document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])');
  const nameOf = (el) => {
    const labelled = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
      .map((id) => document.getElementById(id)?.textContent || '').join(' ');
    const labels = Array.from(el.labels || []).map((l) => l.textContent || '').join(' ');
    return [el.getAttribute('aria-label'), labelled, labels, el.textContent, el.getAttribute('title'), el.getAttribute('alt')]
      .filter(Boolean).join(' ').trim();
  };
  return Array.from(controls).filter((el) => nameOf(el) === '').map((el) => el.outerHTML.slice(0, 120));
})()`;

function unnamedControls(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(UNNAMED_CONTROLS);
}

/** The accessible name of what has the keyboard focus. */
async function focused(page: Page): Promise<string> {
  return String(
    await page.evaluate(
      `(() => { const el = document.activeElement; return (el?.getAttribute('aria-label') || el?.labels?.[0]?.textContent || el?.textContent || '').trim(); })()`,
    ),
  );
}

describe('the console for keyboards and screen readers', () => {
  it('signs in with the keyboard alone', async () => {
    const page = await openPage(browser());
    await page.goto(`${server.url}/`);
    await page.getByLabel('Username').waitFor();
    const order: string[] = [await focused(page)]; // the form may start focused on Username
    for (let i = 0; i < 8 && !order.includes('Sign in'); i++) {
      await page.keyboard.press('Tab');
      order.push(await focused(page));
    }
    expect(order.filter((n) => ['Username', 'Password', 'Sign in'].includes(n))).toEqual([
      'Username',
      'Password',
      'Sign in',
    ]);
    await page.getByLabel('Username').focus();
    await page.keyboard.type('admin');
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN_PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await closePage(page);
  });

  it('gives every control on every page a name', async () => {
    await server.user('ida');
    const agent = await pc('pc-ida');
    expect((await agent.login('ida')).code).toBe(0);
    await agent.ok(['exec', '--', 'sh', '-c', 'echo hello > note.txt']);
    await agent.ok(['logout']);
    const admin = await server.admin();
    const workspace = (await admin.listWorkspaces()).find((w) => w.name === 'default');
    expect(workspace).toBeDefined();
    const [version] = await admin.listVersions(workspace?.id ?? '');

    const page = await openPage(browser());
    await page.goto(`${server.url}/`);
    await page.getByLabel('Username').waitFor();
    expect(await unnamedControls(page)).toEqual([]); // the sign-in page
    await signIn(page, server.url, 'admin', ADMIN_PASSWORD, 'Overview');
    const pages: [string, string][] = [
      ['/', 'Overview'],
      ['/users', 'Users'],
      ['/workspaces', 'Workspaces'],
      [`/workspaces/${workspace?.id ?? ''}`, 'default'],
      [`/workspaces/${workspace?.id ?? ''}/versions/${version?.id ?? ''}`, 'default'],
      ['/pcs', 'PCs'],
      ['/audit', 'Audit log'],
    ];
    for (const [path, heading] of pages) {
      await page.goto(`${server.url}${path}`);
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      // The lists have loaded (the live-sessions stream never goes idle, so no "networkidle").
      await expect.poll(() => page.getByText(/^Loading/).count(), { timeout: 10_000 }).toBe(0);
      expect(await unnamedControls(page), path).toEqual([]);
    }
    await closePage(page);

    const user = await openPage(browser());
    await signIn(user, server.url, 'ida', 'ida-password', 'My workspaces');
    expect(await unnamedControls(user)).toEqual([]);
    await closePage(user);
  });
});
