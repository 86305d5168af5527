import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

/** Debian's Chromium, headless, with nothing that talks to the network by itself. */
export const CHROMIUM = process.env.UPC_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where the built console is (the root `npm run build`, which `npm test` runs first). */
export const CONSOLE_DIR = join(import.meta.dirname, '..', '..', 'apps', 'console', 'dist');
const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'test-results', 'console');

/** One browser for a test file, closed after it. */
export function useBrowser(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error('the browser is not running');
    return browser;
  };
}

/** Saves a full-page screenshot as a test artifact: test-results/console/NAME.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** A page in a context of its own (its own sessionStorage, so its own sign-in). */
export async function openPage(browser: Browser, viewport = { width: 1280, height: 800 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  return context.newPage();
}

/** Closes the page's whole context, so that no event stream of it outlives the test. */
export async function closePage(page: Page): Promise<void> {
  await page.context().close();
}

/**
 * Signs in through the form at `url`; with `first`, waits for that page's h1 (the token then stays
 * in the tab for page.goto).
 */
export async function signIn(
  page: Page,
  url: string,
  username: string,
  password: string,
  first?: string,
): Promise<void> {
  await page.goto(`${url}/`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (first) await page.getByRole('heading', { name: first, level: 1 }).waitFor();
}

/** How far the page is wider than the window (a string: the tests are compiled without the DOM's types). */
export async function overflow(page: Page): Promise<number> {
  return Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
}
