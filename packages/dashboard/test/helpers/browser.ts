/**
 * Drives Debian's Chromium through playwright-core (no browser download, ever).
 * Every page records console errors, uncaught exceptions and CSP violations so a test can
 * assert the dashboard ran cleanly.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '../../../../test/helpers/server.js';

export const CHROMIUM = process.env.TROVE_CHROMIUM ?? '/usr/bin/chromium';
/** Why the browser tests cannot run on this host (null: they can): a notice, not a failure. */
export const BROWSER_SKIP = existsSync(CHROMIUM)
  ? null
  : `SKIPPED: Chromium not found at ${CHROMIUM} (as root npm test installs it; else apt-get install -y chromium, or set TROVE_CHROMIUM)`;
export const ARTIFACTS = join(repoRoot, 'test-artifacts', 'dashboard');
export const DIST = join(repoRoot, 'packages', 'dashboard', 'dist');

export const LAPTOP = { width: 1366, height: 900 };
export const PHONE = { width: 390, height: 844 };

export function assertPrerequisites(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set TROVE_CHROMIUM)`);
  }
  if (!existsSync(join(DIST, 'index.html'))) {
    throw new Error('The dashboard is not built: run `npm run build` (or `npm run build -w trove-dashboard`)');
  }
  mkdirSync(ARTIFACTS, { recursive: true });
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      // Root in CI containers cannot use Chromium's user-namespace sandbox.
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface TrackedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors, page errors and CSP violations seen so far. */
  problems: string[];
  /** Drops recorded problems matching `re` (for a test that provokes an error on purpose). */
  allow(re: RegExp): void;
  close(): Promise<void>;
}

export async function openPage(browser: Browser, baseUrl: string, viewport = LAPTOP): Promise<TrackedPage> {
  const context = await browser.newContext({ viewport, baseURL: baseUrl, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseUrl });
  const page = await context.newPage();
  let problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const loc = msg.location();
      problems.push(`console.error: ${msg.text()}${loc.url ? ` (${loc.url})` : ''}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  // CSP violations are also logged to the console, but the event names the directive.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  return {
    context,
    page,
    get problems() {
      return problems;
    },
    allow(re: RegExp) {
      problems = problems.filter((p) => !re.test(p));
    },
    close: () => context.close(),
  };
}

/** Names of the screenshots taken in this run, so a test can check they were all written. */
export const screenshotsTaken: string[] = [];

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  screenshotsTaken.push(name);
}

/** Signs in through the form, the way a person does. */
export async function signIn(page: Page, key: string): Promise<void> {
  await page.goto('/dashboard/');
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
}
