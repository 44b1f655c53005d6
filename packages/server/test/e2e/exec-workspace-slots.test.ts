/**
 * Fair exec slots: one workspace cannot take every global exec slot. Its
 * namespaces cost nothing to create, so the per-namespace cap alone would let
 * it; the per-workspace cap (default: half the global slots, rounded up)
 * answers its extra calls 429 exec_busy while another workspace still runs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, serverBin, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { loadConfig } from '../../src/config.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

type Client = ReturnType<typeof api>;

const exec = (rt: Client, command: string, path = '/v1/exec') =>
  rt(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ command }) });

/** Runs until the files API creates workspace/<gate>: the test decides when the slot frees up. */
const hold = (gate: string) =>
  `touch workspace/started; while [ ! -f workspace/${gate} ]; do sleep 0.05; done; echo released`;

async function waitForFile(rt: Client, path: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await rt(`/files/${path}`)).status === 200) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${path} never appeared`);
}

describe('the per-workspace exec cap setting', () => {
  it('defaults to half the global slots, rounded up, at least 1; an explicit value wins', () => {
    expect(loadConfig({}).exec.perWorkspaceConcurrency).toBe(8);
    expect(loadConfig({ TROVE_EXEC_CONCURRENCY: '5' }).exec.perWorkspaceConcurrency).toBe(3);
    expect(loadConfig({ TROVE_EXEC_CONCURRENCY: '1' }).exec.perWorkspaceConcurrency).toBe(1);
    expect(loadConfig({}, ['--exec-concurrency', '0']).exec.perWorkspaceConcurrency).toBe(1);
    expect(loadConfig({ TROVE_EXEC_WORKSPACE_CONCURRENCY: '16' }).exec.perWorkspaceConcurrency).toBe(16);
    expect(loadConfig({}, ['--exec-workspace-concurrency', '2']).exec.perWorkspaceConcurrency).toBe(2);
    expect(loadConfig({ TROVE_EXEC_WORKSPACE_CONCURRENCY: '0' }).exec.perWorkspaceConcurrency).toBe(1);
  });

  it('is listed in trove-server --help', () => {
    const help = execFileSync(process.execPath, [serverBin, '--help'], { encoding: 'utf8' });
    expect(help).toMatch(/--exec-workspace-concurrency\b.*TROVE_EXEC_WORKSPACE_CONCURRENCY/);
  });
});

describe.skipIf(!hasBwrap)(`exec slots per workspace over HTTP${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let server: StartedServer;
  let workspaceB: { workspace_id: string; api_key: string };

  beforeAll(async () => {
    // Three global slots: the default workspace cap is two, so one stays for everybody else.
    server = await startServer({
      env: { TROVE_EXEC_CONCURRENCY: '3', TROVE_EXEC_QUEUE_TIMEOUT_MS: '300', TROVE_ALLOW_SIGNUP: '1' },
    });
    const res = await fetch(`${server.baseUrl}/v1/workspaces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'tenant-b' }),
    });
    expect(res.status).toBe(201);
    workspaceB = (await res.json()) as { workspace_id: string; api_key: string };
    expect(workspaceB.workspace_id).not.toBe(server.workspaceId);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a workspace at its cap gets 429 exec_busy with Retry-After while another workspace still gets a slot', async () => {
    // Workspace A spreads its commands over namespaces: the namespace cap (4) is not what stops it.
    const a = ['a1', 'a2', 'a3'].map((ns) => api(server, server.runtimeKey, ns));
    const b = api(server, workspaceB.api_key, 'b1');
    const holders = [exec(a[0]!, hold('gate')), exec(a[1]!, hold('gate'))];
    await waitForFile(a[0]!, 'started');
    await waitForFile(a[1]!, 'started');

    for (const path of ['/v1/exec', '/exec']) {
      const busy = await exec(a[2]!, 'echo third', path);
      expect(busy.status).toBe(429);
      expect(busy.headers.get('retry-after')).toBe('1');
      expect(await busy.json()).toEqual({
        detail: 'Too many commands are running in this workspace; retry shortly.',
        code: 'exec_busy',
      });
    }

    // The server has a slot left, and it is B's to take.
    const other = await exec(b, 'echo from-b');
    expect(other.status).toBe(200);
    expect(((await other.json()) as { stdout: string }).stdout).toBe('from-b\n');

    for (const rt of a.slice(0, 2)) expect((await rt('/files/gate', { method: 'PUT', body: '' })).status).toBe(200);
    for (const done of await Promise.all(holders)) {
      expect(done.status).toBe(200);
      expect(((await done.json()) as { stdout: string }).stdout).toBe('released\n');
    }
    // A's slots are free again.
    const again = await exec(a[2]!, 'echo again');
    expect([again.status, ((await again.json()) as { stdout: string }).stdout]).toEqual([200, 'again\n']);
  });
});
