/**
 * End to end: the built dashboard, served by the real server at /dashboard, driven in Debian's
 * Chromium. Covers the acceptance path (sign in, files, exec, live events, keys,
 * webhooks, snapshots) and fails on any console error, page error or CSP violation.
 * Screenshots land in test-artifacts/dashboard/.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { api, startServer, type StartedServer } from '../../../test/helpers/server.js';
import {
  ARTIFACTS,
  LAPTOP,
  PHONE,
  assertPrerequisites,
  BROWSER_SKIP,
  launchBrowser,
  openPage,
  screenshot,
  screenshotsTaken,
  signIn,
  type TrackedPage,
} from './helpers/browser.js';
import { gradientPng } from './helpers/png.js';
import { isRoot, needsRoot } from '../../../test/helpers/root.js';

const NS = 'e2e';
const runStarted = Date.now();
// A real PNG, to prove image previews decode through blob: URLs under the CSP.
const PICTURE_PNG = gradientPng(240, 160);

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

let server: StartedServer;
let browser: Browser;
let tracked: TrackedPage | null = null;
const received: Received[] = [];
let receiver: Server;
let receiverUrl: string;
/** How many of the receiver's next requests answer 500 (to make the server retry). */
let failNext = 0;

function runtime(ns = NS) {
  return api(server, server.runtimeKey, ns);
}
function admin() {
  return api(server, server.adminKey);
}
async function writeFile(path: string, content: string | Buffer, ns = NS): Promise<void> {
  const body = typeof content === 'string' ? content : new Uint8Array(content);
  const res = await runtime(ns)(`/files/${path}`, { method: 'PUT', body });
  expect(res.status, await res.clone().text()).toBe(200);
}

async function open(key: string, viewport = LAPTOP): Promise<Page> {
  tracked = await openPage(browser, server.baseUrl, viewport);
  await signIn(tracked.page, key);
  return tracked.page;
}

/** Presses Tab until `isTarget(document.activeElement)` holds: proves the control is reachable by keyboard. */
async function tabTo(page: Page, what: string, isTarget: (el: Element) => boolean, max = 60): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(`(${isTarget.toString()})(document.activeElement)`)) return;
  }
  throw new Error(`${what} is not reachable with Tab`);
}

/** Waits for a received webhook request matching `pred`. */
async function waitForDelivery(pred: (r: Received) => boolean, timeoutMs = 10_000): Promise<Received> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = received.find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error('webhook receiver got no matching request');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (BROWSER_SKIP) return;
  assertPrerequisites();
  server = await startServer();
  const dash = await fetch(`${server.baseUrl}/dashboard/`);
  if (dash.status !== 200 || !(dash.headers.get('content-type') ?? '').startsWith('text/html')) {
    throw new Error(
      `GET /dashboard/ answered ${dash.status}: register dashboardRoutes in packages/server/src/app.ts and build`,
    );
  }
  browser = await launchBrowser();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (failNext > 0) {
        failNext--;
        res.writeHead(500, { 'content-type': 'text/plain' }).end('receiver down');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  // Seed the namespace so it exists and has something to browse.
  await writeFile('notes/readme.md', '# Notes\nhello from the seed\n');
  await writeFile('picture.png', PICTURE_PNG);
});

afterEach(async () => {
  const t = tracked;
  tracked = null;
  if (!t) return;
  const problems = [...t.problems];
  await t.close();
  expect(problems, 'console errors, page errors or CSP violations').toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  await server?.close();
});

/** Without Chromium the suite is skipped, and its name says why. */
const SUITE = BROWSER_SKIP ? `dashboard — ${BROWSER_SKIP}` : 'dashboard';

describe.skipIf(BROWSER_SKIP !== null)(SUITE, { timeout: 120_000 }, () => {
  it('is served with a strict CSP and security headers', async () => {
    const res = await fetch(`${server.baseUrl}/dashboard/events`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
  });

  it('rejects a wrong key with a readable message and signs in by keyboard alone', async () => {
    tracked = await openPage(browser, server.baseUrl);
    const page = tracked.page;
    await page.goto('/dashboard/');
    await screenshot(page, '01-sign-in');
    // The key field has focus on load; Enter submits.
    await page.keyboard.type('trove-sk-not-a-real-key');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'Invalid API key' }).waitFor();
    // The browser logs the deliberate 401 itself; that line is the only console error allowed.
    tracked.allow(/401 \(Unauthorized\).*\/v1\/me/);
    tracked.allow(/Failed to load resource: the server responded with a status of 401/);

    await page.getByLabel('API key').fill(server.runtimeKey);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('trove.apiKey'))).toBe(server.runtimeKey);

    // A workspace key sees runtime pages and not the admin ones.
    const nav = page.getByRole('navigation', { name: 'Main' });
    for (const name of ['Files', 'Terminal', 'Snapshots', 'Events']) {
      await nav.getByRole('link', { name }).waitFor();
    }
    expect(await nav.getByRole('link', { name: 'API keys' }).count()).toBe(0);
    expect(await nav.getByRole('link', { name: 'Webhooks' }).count()).toBe(0);
    await screenshot(page, '02-overview-workspace-key');

    // A reload keeps the session (sessionStorage); signing out clears it.
    await page.reload();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('trove.apiKey'))).toBeNull();
  });

  it('lists namespaces and browses, previews, uploads, downloads and deletes files', async () => {
    const page = await open(server.runtimeKey);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Namespaces' }).click();
    const row = page.getByRole('row').filter({ hasText: NS });
    await row.waitFor();
    // Size, file count and last activity, as the API reports them.
    const listed = (await (await runtime()(`/v1/workspaces/${server.workspaceId}/namespaces`)).json()) as {
      namespaces: { name: string; size_bytes: number; file_count: number; last_activity_at: string }[];
    };
    const ns = listed.namespaces.find((n) => n.name === NS)!;
    const cells = row.getByRole('cell');
    expect(await cells.nth(0).textContent()).toMatch(
      ns.size_bytes < 1024 ? `${ns.size_bytes} B` : /^\d+(\.\d+)? (KiB|MiB)$/,
    );
    expect(await cells.nth(1).textContent()).toBe(String(ns.file_count));
    expect(await cells.nth(2).locator('time').getAttribute('datetime')).toBe(ns.last_activity_at);
    await screenshot(page, '03-namespaces');
    await row.getByRole('link', { name: `Files of ${NS}` }).click();
    await page.getByRole('heading', { name: 'Files', level: 1 }).waitFor();
    expect(new URL(page.url()).searchParams.get('ns')).toBe(NS);

    // Tree: expand the folder, preview the text file.
    const tree = page.getByRole('navigation', { name: 'File tree' });
    const folder = tree.getByRole('button', { name: 'notes' });
    await folder.click();
    expect(await folder.getAttribute('aria-expanded')).toBe('true');
    await tree.getByRole('button', { name: /readme\.md/ }).click();
    await page.getByTestId('text-preview').filter({ hasText: 'hello from the seed' }).waitFor();

    // Image preview: raw bytes fetched with the key, shown through a blob: URL.
    await tree.getByRole('button', { name: /picture\.png/ }).click();
    const img = page.getByRole('img', { name: 'Preview of workspace/picture.png' });
    await img.waitFor();
    expect(await img.getAttribute('src')).toMatch(/^blob:/);
    await page.waitForFunction(() => {
      const el = document.querySelector<HTMLImageElement>('.image-preview img');
      return !!el && el.complete && el.naturalWidth === 240 && el.naturalHeight === 160;
    });
    await screenshot(page, '04-files-image-preview');

    // Drag and drop upload into the selected folder.
    await folder.click(); // collapse
    await folder.click(); // expand again, and select the folder as the upload target
    await page.getByText('Upload to workspace/notes/').waitFor();
    const dt = await page.evaluateHandle(() => {
      const d = new DataTransfer();
      d.items.add(new File(['dropped with love\n'], 'dropped.txt', { type: 'text/plain' }));
      return d;
    });
    await page.dispatchEvent('[data-testid="drop-zone"]', 'dragenter', { dataTransfer: dt });
    await page.getByText('Drop to upload to workspace/notes/').waitFor();
    await page.dispatchEvent('[data-testid="drop-zone"]', 'drop', { dataTransfer: dt });
    await page.locator('.upload-done').filter({ hasText: 'workspace/notes/dropped.txt' }).waitFor();
    await tree.getByRole('button', { name: /dropped\.txt/ }).waitFor();
    const dropped = await runtime()('/files/notes/dropped.txt');
    expect(await dropped.text()).toBe('dropped with love\n');

    // A bigger upload through the file picker shows a progress bar that ends full.
    const big = randomBytes(3 * 1024 * 1024);
    await page
      .getByTestId('file-input')
      .setInputFiles({ name: 'big.bin', mimeType: 'application/octet-stream', buffer: big });
    const bar = page.getByRole('progressbar', { name: 'Upload of big.bin' });
    await bar.waitFor();
    await page.locator('.upload-done').filter({ hasText: 'workspace/notes/big.bin' }).waitFor({ timeout: 30_000 });
    expect(await bar.evaluate((el: HTMLProgressElement) => el.value / el.max)).toBe(1);
    const stored = Buffer.from(await (await runtime()('/files/notes/big.bin')).arrayBuffer());
    expect(stored.equals(big)).toBe(true);
    await screenshot(page, '05-files-uploads');

    // Download goes through the API with the key and saves the exact bytes.
    await tree.getByRole('button', { name: /dropped\.txt/ }).click();
    await page.getByTestId('text-preview').filter({ hasText: 'dropped with love' }).waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('dropped.txt');
    expect(readFileSync((await download.path())!, 'utf8')).toBe('dropped with love\n');

    // Delete asks first; Cancel keeps the file, confirming removes it.
    await page.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete file?' });
    await dialog.waitFor();
    await screenshot(page, '06-files-delete-confirm');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect((await runtime()('/files/notes/dropped.txt')).status).toBe(200);
    await page.getByRole('button', { name: 'Delete' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await tree.getByRole('button', { name: /dropped\.txt/ }).waitFor({ state: 'detached' });
    const gone = await runtime()('/v1/files/content?path=workspace/notes/dropped.txt');
    expect(gone.status).toBe(404);
  });

  it('runs commands in the terminal panel', async () => {
    const page = await open(server.runtimeKey);
    await page.goto(`/dashboard/exec?ns=${NS}`);
    const input = page.getByLabel(`${NS} $ command`);
    await input.fill('cat workspace/notes/readme.md; echo oops >&2; exit 3');
    await input.press('Enter');
    const log = page.getByTestId('terminal-log');
    await log.getByText('exit 3 ·').waitFor({ timeout: 30_000 });
    expect(await log.locator('.term-stdout').last().textContent()).toContain('hello from the seed');
    expect(await log.locator('.term-stderr').last().textContent()).toContain('oops');
    expect(await log.getByTestId('exec-status').last().textContent()).toMatch(/^exit 3 · \d+ ms$/);

    await input.fill('echo "$(cat)" | tr a-z A-Z');
    await page.getByLabel('Send stdin').check();
    await page.getByLabel('Standard input').fill('piped in');
    await input.press('Enter');
    await log.getByText('PIPED IN').waitFor({ timeout: 30_000 });
    // The output comes before the exit: wait for the second command's own status line.
    const second = log.getByTestId('exec-status').nth(1);
    await second.waitFor();
    expect(await second.textContent()).toMatch(/^exit 0 · \d+ ms$/);

    // History: ArrowUp recalls the last command.
    await input.press('ArrowUp');
    expect(await input.inputValue()).toBe('echo "$(cat)" | tr a-z A-Z');
    await screenshot(page, '07-terminal');
  });

  it('shows exec output while the command runs, and starts, follows and stops background processes', async () => {
    const page = await open(server.runtimeKey);
    await page.goto(`/dashboard/exec?ns=${NS}`);
    const input = page.getByLabel(`${NS} $ command`);
    const log = page.getByTestId('terminal-log');
    // The command waits for a file the test writes once the first line is on screen.
    await input.fill('echo first-line; while [ ! -e workspace/live-go ]; do sleep 0.05; done; echo second-line >&2');
    await input.press('Enter');
    await log.locator('.term-stdout').filter({ hasText: 'first-line' }).waitFor({ timeout: 30_000 });
    expect(await log.getByText('running…').count()).toBe(1);
    expect(await log.locator('.term-stderr').filter({ hasText: 'second-line' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Stop', exact: true }).waitFor();
    await writeFile('live-go', 'go');
    await log.locator('.term-stderr').filter({ hasText: 'second-line' }).waitFor({ timeout: 30_000 });
    expect(await log.getByTestId('exec-status').last().textContent()).toMatch(/^exit 0 · \d+ ms$/);

    // A background process: listed, its output followed live, its end shown in the list.
    const panel = page.getByRole('region', { name: 'Background processes' });
    await input.fill('echo bg-start; while [ ! -e workspace/bg-stop ]; do sleep 0.05; done; echo bg-end; exit 4');
    await page.getByRole('button', { name: 'Run in background' }).click();
    const procLog = page.getByTestId('process-log');
    await procLog.locator('.term-stdout').filter({ hasText: 'bg-start' }).waitFor({ timeout: 30_000 });
    const row = panel.getByRole('row').filter({ hasText: 'echo bg-start' });
    expect(await row.getByTestId('process-status').textContent()).toBe('running');
    const listed = (await (await runtime()('/v1/processes?state=running')).json()) as {
      processes: { process_id: string; command: string }[];
    };
    const bg = listed.processes.find((p) => p.command.startsWith('echo bg-start'))!;
    expect(await row.locator('td.mono').textContent()).toBe(bg.process_id);
    await screenshot(page, '07b-terminal-processes');
    await writeFile('bg-stop', '');
    await procLog.getByTestId('process-ended').filter({ hasText: 'ended: exited 4' }).waitFor({ timeout: 30_000 });
    expect(await procLog.locator('.term-stdout').textContent()).toBe('bg-start\nbg-end\n');
    expect(await row.getByTestId('process-status').textContent()).toBe('exited 4');

    // Stopping asks first, then sends SIGTERM.
    await input.fill('sleep 300');
    await page.getByRole('button', { name: 'Run in background' }).click();
    const sleeper = panel.getByRole('row').filter({ hasText: 'sleep 300' });
    await sleeper.getByTestId('process-status').filter({ hasText: 'running' }).waitFor();
    await sleeper.getByRole('button', { name: /^Stop proc-/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Stop this process?' });
    await dialog.getByRole('button', { name: 'Stop (SIGTERM)' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await sleeper.getByTestId('process-status').filter({ hasText: 'SIGTERM' }).waitFor({ timeout: 30_000 });

    // After a reload the list comes from the server, and old output can be opened again.
    await page.reload();
    const again = page
      .getByRole('region', { name: 'Background processes' })
      .getByRole('row')
      .filter({ hasText: 'echo bg-start' });
    expect(await again.getByTestId('process-status').textContent()).toBe('exited 4');
    await again.getByRole('button', { name: `Output of ${bg.process_id}` }).click();
    await page.getByTestId('process-log').locator('.term-stdout').filter({ hasText: 'bg-end' }).waitFor();
  });

  it('shows new events live within a second, filters them and shows their JSON', async () => {
    const page = await open(server.adminKey);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Events' }).click();
    await page.getByTestId('feed-state').filter({ hasText: 'Live' }).waitFor();

    const list = page.getByTestId('event-list');
    for (const mode of ['poll', 'stream'] as const) {
      if (mode === 'stream') {
        await page.getByLabel('Updates').selectOption('stream');
        await page.getByTestId('feed-state').filter({ hasText: 'Live' }).waitFor();
      }
      const name = `live-${mode}-${randomBytes(3).toString('hex')}.txt`;
      await writeFile(name, 'x');
      const started = Date.now();
      // Triggered outside the browser; the feed must show it within a second.
      await list.getByRole('button', { name: new RegExp(name.replace('.', '\\.')) }).waitFor({ timeout: 1000 });
      expect(Date.now() - started).toBeLessThan(1000);
    }
    await page.getByLabel('Updates').selectOption('poll');

    // Local-time stamps as the CLI prints them: HH:MM:SS for today.
    const stamp = await list.locator('time').first().textContent();
    expect(stamp).toMatch(/^\d{2}:\d{2}:\d{2}$/);

    // Detail view: the event's JSON.
    await list.getByRole('button', { name: /live-poll-/ }).click();
    const json = JSON.parse((await page.getByTestId('event-json').textContent())!);
    expect(json.type).toBe('file.written');
    expect(json.namespace).toBe(NS);
    expect(json.id).toMatch(/^evt-/);
    await screenshot(page, '08-events');

    // Type filter: only exec.completed rows remain, and a new exec shows up live.
    await page.getByLabel('exec.completed').check();
    await page.getByTestId('feed-state').filter({ hasText: 'Live' }).waitFor();
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-event-type]')].every(
        (b) => b.getAttribute('data-event-type') === 'exec.completed',
      ),
    );
    const exec = await runtime()('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo filtered-live' }),
    });
    expect(exec.status).toBe(200);
    await list.getByRole('button', { name: /echo filtered-live/ }).waitFor({ timeout: 1000 });
    expect(new URL(page.url()).searchParams.get('types')).toBe('exec.completed');

    // Namespace filter: another namespace's event is not shown.
    await page.getByLabel('exec.completed').uncheck();
    await page.getByLabel('Namespace', { exact: true }).fill('other-ns');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByTestId('feed-state').filter({ hasText: 'Live' }).waitFor();
    await writeFile('in-e2e.txt', 'x');
    await writeFile('in-other.txt', 'x', 'other-ns');
    await list.getByRole('button', { name: /in-other\.txt/ }).waitFor({ timeout: 1000 });
    expect(await list.getByRole('button', { name: /in-e2e\.txt/ }).count()).toBe(0);
    await screenshot(page, '09-events-filtered');
  });

  /** The file.written row of a path on the events page (the command's exec.completed row names the path too). */
  const writtenRow = (page: Page, text: string) =>
    page
      .getByTestId('event-list')
      .getByRole('listitem')
      .filter({ has: page.locator('[data-event-type="file.written"]') })
      .filter({ hasText: text });

  it('shows which command made each change, and filters by source', async () => {
    const page = await open(server.runtimeKey);
    await page.goto('/dashboard/events');
    await page.getByTestId('feed-state').filter({ hasText: 'Live' }).waitFor();
    const list = page.getByTestId('event-list');
    const row = (text: string) => writtenRow(page, text);
    const tag = randomBytes(3).toString('hex');
    const exec = async (command: string) => {
      const res = await runtime()('/v1/exec', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ command }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
    };

    // A one-shot exec: its change carries source "exec" and the exec's id, shown beside the row.
    await exec(`echo hi > workspace/by-exec-${tag}.txt`);
    await row(`by-exec-${tag}.txt`).waitFor({ timeout: 10_000 });
    const page1 = (await (
      await runtime()(`/v1/workspaces/${server.workspaceId}/events?types=file.written&limit=50`)
    ).json()) as {
      events: { data: { path: string; source?: string; exec_id?: string } }[];
    };
    const written = page1.events.find((e) => e.data.path === `workspace/by-exec-${tag}.txt`)!;
    expect(written.data.source).toBe('exec');
    expect(written.data.exec_id).toMatch(/^exec-/);
    const madeBy = row(`by-exec-${tag}.txt`).getByTestId('event-source');
    expect(await madeBy.locator('.badge').textContent()).toBe('exec');
    expect(await madeBy.textContent()).toContain(`by command ${written.data.exec_id}`);
    // A change through the files API says so.
    await writeFile(`by-api-${tag}.txt`, 'x');
    await row(`by-api-${tag}.txt`).getByTestId('event-source').filter({ hasText: /^api$/ }).waitFor();
    await screenshot(page, '09b-events-sources');

    // Made by commands: a files API write no longer shows, a command's does.
    await page.getByLabel('Made by').selectOption('exec');
    await page.getByTestId('feed-state').filter({ hasText: 'Live' }).waitFor();
    expect(new URL(page.url()).searchParams.get('source')).toBe('exec');
    await writeFile(`later-api-${tag}.txt`, 'x');
    await exec(`echo 2 > workspace/later-exec-${tag}.txt`);
    await row(`later-exec-${tag}.txt`).waitFor({ timeout: 10_000 });
    // The API write happened first: had it passed the filter, it would be on screen by now.
    expect(await row(`later-api-${tag}.txt`).count()).toBe(0);
    expect(await row(`by-api-${tag}.txt`).count()).toBe(0);
    const badges = await list.getByTestId('event-source').locator('.badge').allTextContents();
    expect(new Set(badges)).toEqual(new Set(['exec']));
    // Made through the files API: the other way round.
    await page.getByLabel('Made by').selectOption('api');
    await row(`later-api-${tag}.txt`).waitFor();
    expect(await row(`later-exec-${tag}.txt`).count()).toBe(0);
    await page.getByLabel('Made by').selectOption('');
    await row(`later-exec-${tag}.txt`).waitFor();
  });

  // Without root the server records no background process's changes (docs/events.md: scans see one-shot execs).
  it.runIf(isRoot)(
    `links a background process's change to the process, whose output the link opens${needsRoot('fanotify')}`,
    async () => {
      const page = await open(server.runtimeKey);
      await page.goto('/dashboard/events');
      await page.getByTestId('feed-state').filter({ hasText: 'Live' }).waitFor();
      const row = (text: string) => writtenRow(page, text);
      const tag = randomBytes(3).toString('hex');
      const started = await runtime()('/v1/processes', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ command: `echo from-${tag}; echo x > workspace/by-proc-${tag}.txt` }),
      });
      expect(started.ok, await started.clone().text()).toBe(true);
      const proc = (await started.json()) as { process_id: string };
      const procLink = row(`by-proc-${tag}.txt`).getByRole('link', { name: proc.process_id });
      await procLink.waitFor({ timeout: 10_000 });
      expect(await row(`by-proc-${tag}.txt`).getByTestId('event-source').textContent()).toContain(
        `by process ${proc.process_id}`,
      );
      await screenshot(page, '09c-events-process');

      // The process link opens the Terminal page with that process's output.
      await procLink.click();
      await page.getByRole('heading', { name: 'Terminal', level: 1 }).waitFor();
      expect(new URL(page.url()).searchParams.get('process')).toBe(proc.process_id);
      await page
        .getByTestId('process-log')
        .locator('.term-stdout')
        .filter({ hasText: `from-${tag}` })
        .waitFor();
    },
  );

  it('creates a key (secret once, copy), and revokes it after confirmation', async () => {
    const page = await open(server.adminKey);
    await screenshot(page, '10a-overview-admin');
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link', { name: 'Files' }).count()).toBe(0);
    await nav.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('heading', { name: 'API keys', level: 1 }).waitFor();

    await page.getByLabel('Name', { exact: true }).fill('e2e-agent');
    await page.getByLabel('Namespace (optional)').fill(NS);
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = await page.getByTestId('secret-value').inputValue();
    expect(secret).toMatch(/^trove-sk-/);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    await screenshot(page, '10-keys-created');

    const me = await (await api(server, secret)('/v1/me')).json();
    expect(me).toMatchObject({ key_name: 'e2e-agent', scope: 'workspace', namespace: NS });

    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByTestId('secret-value').waitFor({ state: 'detached' });

    // Meanwhile someone signs in with the new namespace key: a locked, runtime-only view.
    const other = await openPage(browser, server.baseUrl);
    try {
      await signIn(other.page, secret);
      const otherNav = other.page.getByRole('navigation', { name: 'Main' });
      await otherNav.getByRole('link', { name: 'Files' }).click();
      await other.page.getByText('(this key is locked to it)').waitFor();
      expect(await otherNav.getByRole('link', { name: 'Namespaces' }).count()).toBe(0);
      await other.page.getByRole('navigation', { name: 'File tree' }).getByRole('button', { name: 'notes' }).waitFor();
      await screenshot(other.page, '10b-namespace-key-files');

      await page.getByRole('button', { name: 'Revoke e2e-agent' }).click();
      const dialog = page.getByRole('dialog', { name: 'Revoke this key?' });
      await dialog.waitFor();
      // Focus starts on Cancel so Enter cannot revoke by accident.
      expect(await dialog.getByRole('button', { name: 'Cancel' }).evaluate((el) => el === document.activeElement)).toBe(
        true,
      );
      await screenshot(page, '11-keys-revoke-confirm');
      await dialog.getByRole('button', { name: 'Revoke key' }).click();
      await dialog.waitFor({ state: 'hidden' });
      await page.getByRole('row').filter({ hasText: 'e2e-agent' }).waitFor({ state: 'detached' });
      expect((await api(server, secret)('/v1/me')).status).toBe(401);

      // The revoked key's next request fails, and that tab signs itself out with the reason.
      await other.page.getByRole('button', { name: 'Refresh' }).click();
      await other.page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await other.page.getByText('Signed out: Invalid API key').waitFor();
      expect(await other.page.evaluate(() => sessionStorage.getItem('trove.apiKey'))).toBeNull();
      other.allow(/status of 401/);
      expect(other.problems).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('lets an admin delete a namespace after confirmation', async () => {
    await writeFile('doomed.txt', 'bye', 'doomed-ns');
    const page = await open(server.adminKey);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Namespaces' }).click();
    const row = page.getByRole('row').filter({ hasText: 'doomed-ns' });
    await row.getByRole('button', { name: 'Delete namespace doomed-ns' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this namespace?' });
    await dialog.getByText('cannot be undone').waitFor();
    await dialog.getByRole('button', { name: 'Delete namespace' }).click();
    await row.waitFor({ state: 'detached' });
    const list = (await (await admin()(`/v1/workspaces/${server.workspaceId}/namespaces`)).json()) as {
      namespaces: { name: string }[];
    };
    expect(list.namespaces.some((n) => n.name === 'doomed-ns')).toBe(false);
  });

  it('creates, tests, inspects, re-sends and deletes a webhook', async () => {
    const page = await open(server.adminKey);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();

    // The server refuses this URL (422); the form shows the server's own explanation.
    await page.getByLabel('Endpoint URL').fill('http://user:pw@127.0.0.1:9/hook');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await page
      .getByRole('alert')
      .filter({
        hasText: 'url: must not contain credentials (user:password@); authenticate deliveries by their signature',
      })
      .waitFor();
    tracked!.allow(/status of 422/);

    await page.getByLabel('Endpoint URL').fill(receiverUrl);
    await page.getByLabel('Description (optional)').fill('e2e receiver');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    const secret = await page.getByTestId('secret-value').inputValue();
    expect(secret).toMatch(/^trove-whsec-/);
    expect(await page.getByRole('alert').count()).toBe(0);
    await page.getByRole('button', { name: 'Done' }).click();

    const card = page.locator('.webhook').filter({ hasText: receiverUrl });
    await card.waitFor();
    await card.getByRole('button', { name: 'Send test' }).click();
    await card.getByTestId('test-result').filter({ hasText: 'Test delivered: receiver answered 200' }).waitFor();

    // The receiver got a correctly signed webhook.test event.
    const test = await waitForDelivery((r) => r.headers['x-trove-event'] === 'webhook.test');
    const sig = String(test.headers['x-trove-signature']);
    const m = /^t=(\d+),v1=([0-9a-f]+)$/.exec(sig);
    expect(m, sig).not.toBeNull();
    const expected = createHmac('sha256', secret).update(`${m![1]}.${test.body}`).digest('hex');
    expect(m![2]).toBe(expected);
    await card.getByTestId('last-delivery').filter({ hasText: 'last delivery ok' }).waitFor();

    // A real event whose first attempt fails: the server retries it (about a second later).
    const hooks0 = (await (await admin()(`/v1/workspaces/${server.workspaceId}/webhooks`)).json()) as {
      webhooks: { url: string; webhook_id: string }[];
    };
    const hookId = hooks0.webhooks.find((w) => w.url === receiverUrl)!.webhook_id;
    failNext = 1;
    await writeFile('for-the-log.txt', 'x');
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await admin()(`/v1/workspaces/${server.workspaceId}/webhooks/${hookId}/deliveries?status=delivered`);
      const { deliveries } = (await res.json()) as { deliveries: { event_type: string }[] };
      if (deliveries.some((d) => d.event_type === 'file.written')) break;
      if (Date.now() > deadline) throw new Error('the file.written delivery was not retried to success');
      await new Promise((r) => setTimeout(r, 100));
    }

    // Delivery log with every attempt, and re-send.
    await card.getByRole('button', { name: 'Deliveries' }).click();
    const log = card.getByTestId('delivery-log');
    const retried = log.getByRole('row').filter({ hasText: 'file.written' }).first();
    await retried.waitFor();
    await retried.getByRole('button', { name: /Attempts of file\.written/ }).click();
    const attempts = log.getByTestId('attempt-history').getByRole('listitem');
    await attempts.nth(1).waitFor();
    expect(await attempts.count()).toBe(2);
    expect(await attempts.nth(0).textContent()).toContain('500');
    expect(await attempts.nth(0).textContent()).toContain('Receiver answered HTTP 500: receiver down');
    expect(await attempts.nth(0).textContent()).toContain('next attempt at');
    expect(await attempts.nth(1).textContent()).toContain('200');
    const logRow = log.getByRole('row').filter({ hasText: 'webhook.test' }).first();
    await logRow.waitFor();
    expect(await logRow.textContent()).toContain('delivered');
    await screenshot(page, '12-webhooks');
    const before = received.length;
    await logRow.getByRole('button', { name: /Re-send webhook\.test/ }).click();
    await waitForDelivery((r) => received.indexOf(r) >= before && r.headers['x-trove-event'] === 'webhook.test');

    // Disable, then delete after confirmation.
    await card.getByLabel('Enabled').uncheck();
    await page.getByText(`Disabled ${receiverUrl}.`).waitFor();
    // Why it is disabled (the server's disabled_reason) and how to undo it, in the dashboard's words.
    expect(await card.getByTestId('disabled-reason').textContent()).toBe(
      'Disabled by an admin. Tick Enabled to re-enable it: its pending deliveries then go out.',
    );
    const hooks = (await (await admin()(`/v1/workspaces/${server.workspaceId}/webhooks`)).json()) as {
      webhooks: { url: string; enabled: boolean; webhook_id: string }[];
    };
    expect(hooks.webhooks.find((w) => w.url === receiverUrl)?.enabled).toBe(false);
    await card.getByRole('button', { name: `Delete webhook ${receiverUrl}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this webhook?' });
    await dialog.getByRole('button', { name: 'Delete webhook' }).click();
    await card.waitFor({ state: 'detached' });
    const after = (await (await admin()(`/v1/workspaces/${server.workspaceId}/webhooks`)).json()) as {
      webhooks: { url: string }[];
    };
    expect(after.webhooks.some((w) => w.url === receiverUrl)).toBe(false);
  });

  it('takes, restores (with a warning) and deletes a snapshot', async () => {
    const page = await open(server.runtimeKey);
    await page.goto(`/dashboard/snapshots?ns=${NS}`);
    await page.getByRole('heading', { name: 'Snapshots', level: 1 }).waitFor();
    await page.getByLabel('Label (optional)').fill('before-change');
    await page.getByRole('button', { name: 'Take snapshot' }).click();
    const row = page.getByRole('row').filter({ hasText: 'before-change' });
    await row.waitFor();

    // Change the namespace after the snapshot, then restore it.
    await writeFile('after-snapshot.txt', 'should vanish');
    await row.getByRole('button', { name: 'Restore before-change' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore this snapshot?' });
    await dialog.getByText('deleted or overwritten').waitFor();
    await screenshot(page, '13-snapshots-restore-warning');
    await dialog.getByRole('button', { name: 'Restore and replace files' }).click();
    await page.getByText(/Restored \d+ files from before-change\./).waitFor();
    expect((await runtime()('/v1/files/content?path=workspace/after-snapshot.txt')).status).toBe(404);
    expect((await runtime()('/files/notes/readme.md')).status).toBe(200);
    await screenshot(page, '14-snapshots');

    await row.getByRole('button', { name: 'Delete before-change' }).click();
    await page
      .getByRole('dialog', { name: 'Delete this snapshot?' })
      .getByRole('button', { name: 'Delete snapshot' })
      .click();
    await row.waitFor({ state: 'detached' });
    const list = (await (await runtime()('/v1/snapshots')).json()) as { snapshots: { label: string | null }[] };
    expect(list.snapshots.some((s) => s.label === 'before-change')).toBe(false);
  });

  it('fits a phone screen without horizontal scrolling', async () => {
    const page = await open(server.runtimeKey, PHONE);
    for (const [path, name] of [
      [`/dashboard/files?ns=${NS}`, 'Files'],
      [`/dashboard/exec?ns=${NS}`, 'Terminal'],
      ['/dashboard/events', 'Events'],
      [`/dashboard/snapshots?ns=${NS}`, 'Snapshots'],
    ] as const) {
      await page.goto(path);
      await page.getByRole('heading', { name, level: 1 }).waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${name} overflows by ${overflow}px`).toBeLessThanOrEqual(0);
      await screenshot(page, `15-phone-${name.toLowerCase()}`);
    }
    // On a phone an event's JSON opens right under its row.
    await page.goto('/dashboard/events');
    const first = page.getByTestId('event-list').getByRole('button').first();
    await first.click();
    expect(await first.getAttribute('aria-expanded')).toBe('true');
    const json = page.getByTestId('event-list').getByTestId('event-json');
    await json.waitFor();
    expect(JSON.parse((await json.textContent())!).id).toMatch(/^evt-/);
    await screenshot(page, '16-phone-event-detail');
  });
  it('works with the keyboard alone: skip link, navigation, forms, dialogs', async () => {
    const page = await open(server.adminKey);
    // The first Tab lands on the skip link, which moves focus to the content.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');

    // Navigation: reach the Webhooks link, follow it; focus moves to the new page's heading.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await tabTo(page, 'the Webhooks link', (el) => el.tagName === 'A' && el.textContent === 'Webhooks');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    await page.waitForFunction(() => document.activeElement?.tagName === 'H1');

    // A form, start to end: type the URL, Enter submits, the secret appears, Done dismisses it.
    const url = receiverUrl.replace(/\/hook$/, '/keyboard');
    await tabTo(
      page,
      'the Endpoint URL field',
      (el) => (el as HTMLInputElement).labels?.[0]?.textContent === 'Endpoint URL',
    );
    await page.keyboard.type(url);
    await page.keyboard.press('Enter');
    await page.getByTestId('secret-value').waitFor();
    await tabTo(page, 'the Done button', (el) => el.tagName === 'BUTTON' && el.textContent === 'Done');
    await page.keyboard.press('Enter');
    await page.getByTestId('secret-value').waitFor({ state: 'detached' });

    // A dialog: opened from the keyboard, focus starts on Cancel, Escape closes it and nothing is deleted.
    const card = page.locator('.webhook').filter({ hasText: url });
    await tabTo(
      page,
      'the Delete button',
      (el) =>
        el.getAttribute('aria-label')?.startsWith('Delete webhook') === true &&
        el.closest('.webhook')?.textContent?.includes('/keyboard') === true,
    );
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Delete this webhook?' });
    await dialog.waitFor();
    expect(await dialog.getByRole('button', { name: 'Cancel' }).evaluate((el) => el === document.activeElement)).toBe(
      true,
    );
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await card.waitFor();
    // Confirm by keyboard this time: Tab from Cancel to the destructive button.
    await tabTo(
      page,
      'the Delete button',
      (el) =>
        el.getAttribute('aria-label')?.startsWith('Delete webhook') === true &&
        el.closest('.webhook')?.textContent?.includes('/keyboard') === true,
    );
    await page.keyboard.press('Enter');
    await dialog.waitFor();
    await tabTo(page, 'the confirm button', (el) => el.tagName === 'BUTTON' && el.textContent === 'Delete webhook', 5);
    await page.keyboard.press('Enter');
    await card.waitFor({ state: 'detached' });
    const hooks = (await (await admin()(`/v1/workspaces/${server.workspaceId}/webhooks`)).json()) as {
      webhooks: { url: string }[];
    };
    expect(hooks.webhooks.some((w) => w.url === url)).toBe(false);
  });

  it('fits a phone screen on the admin pages too', async () => {
    // A webhook with a long URL and a delivery, so the card and its log are laid out too.
    const longUrl = `${receiverUrl}/${'a-rather-long-path-segment/'.repeat(4)}end`;
    const created = await admin()(`/v1/workspaces/${server.workspaceId}/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: longUrl, events: ['*'], description: 'phone layout' }),
    });
    expect(created.status).toBe(201);
    const hook = (await created.json()) as { webhook_id: string };
    const tested = await admin()(`/v1/workspaces/${server.workspaceId}/webhooks/${hook.webhook_id}/test`, {
      method: 'POST',
    });
    expect(tested.status).toBe(200);
    const page = await open(server.adminKey, PHONE);
    for (const [path, name] of [
      ['/dashboard/', 'Overview'],
      ['/dashboard/namespaces', 'Namespaces'],
      ['/dashboard/keys', 'API keys'],
      ['/dashboard/webhooks', 'Webhooks'],
    ] as const) {
      await page.goto(path);
      await page.getByRole('heading', { name, level: 1 }).waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${name} overflows by ${overflow}px`).toBeLessThanOrEqual(0);
      if (name === 'Webhooks') {
        await page.getByRole('button', { name: 'Deliveries' }).click();
        await page.getByTestId('delivery-log').waitFor();
        const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(wide, `the delivery log overflows by ${wide}px`).toBeLessThanOrEqual(0);
      }
      await screenshot(page, `17-phone-admin-${name.toLowerCase().replace(/ /g, '-')}`);
    }
    await admin()(`/v1/workspaces/${server.workspaceId}/webhooks/${hook.webhook_id}`, { method: 'DELETE' });
  });

  it('wrote a screenshot of every page as a test artifact', () => {
    const pages = ['sign-in', 'overview', 'namespaces', 'files', 'terminal', 'events', 'keys', 'webhooks', 'snapshots'];
    for (const p of pages)
      expect(
        screenshotsTaken.some((n) => n.includes(p)),
        `a screenshot of ${p}`,
      ).toBe(true);
    for (const name of screenshotsTaken) {
      const file = join(ARTIFACTS, `${name}.png`);
      const st = statSync(file);
      // Written by this run (not left over from an earlier one), and a real PNG.
      expect(st.mtimeMs, file).toBeGreaterThanOrEqual(runStarted - 1000);
      expect(readFileSync(file).subarray(0, 8).toString('hex'), file).toBe('89504e470d0a1a0a');
    }
  });
});
