/**
 * What an operator and a client see over HTTP when exec cannot run a command
 * right now: 429 + Retry-After when the concurrency caps stay full, 503 +
 * Retry-After and a log line with the fix when the sandbox cannot be created,
 * and the loud insecure development mode.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { isRoot, needsRoot } from '../../../../test/helpers/root.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

const exec = (rt: ReturnType<typeof api>, command: string, path = '/v1/exec') =>
  rt(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ command }) });

/** A command that runs until the files API creates workspace/<gate>. */
const hold = (gate: string) => `while [ ! -f workspace/${gate} ]; do sleep 0.05; done; echo released`;

async function waitForFile(rt: ReturnType<typeof api>, path: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await rt(`/files/${path}`)).status === 200) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${path} never appeared`);
}

const servers: StartedServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

describe.skipIf(!hasBwrap)(`exec admission over HTTP${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  it('answers 429 exec_busy with Retry-After when the namespace stays at its cap past the queue wait', async () => {
    const s = await startServer({ env: { TROVE_EXEC_NS_CONCURRENCY: '1', TROVE_EXEC_QUEUE_TIMEOUT_MS: '300' } });
    servers.push(s);
    const rt = api(s, s.runtimeKey, 'busy');
    const other = api(s, s.runtimeKey, 'not-busy');
    const holder = exec(rt, `touch workspace/started; ${hold('gate')}`);
    // The holder owns the namespace's only slot once it has started running.
    await waitForFile(rt, 'started');
    const started = Date.now();
    const busy = await exec(rt, 'echo second');
    expect(busy.status).toBe(429);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(await busy.json()).toEqual({
      detail: 'Too many commands are running in this namespace; retry shortly.',
      code: 'exec_busy',
    });
    // It waited in the queue first, instead of failing at once.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    // The cap is per namespace: another namespace runs meanwhile.
    const neighbour = await exec(other, 'echo neighbour');
    expect([neighbour.status, ((await neighbour.json()) as { stdout: string }).stdout]).toEqual([200, 'neighbour\n']);
    expect((await rt('/files/gate', { method: 'PUT', body: '' })).status).toBe(200);
    const done = await holder;
    expect([done.status, ((await done.json()) as { stdout: string }).stdout]).toEqual([200, 'released\n']);
    // The slot is free again.
    const after = await exec(rt, 'echo again');
    expect(((await after.json()) as { stdout: string }).stdout).toBe('again\n');
  });
});

describe.skipIf(!hasBwrap || !isRoot)(
  `exec when the sandbox cannot be created${hasBwrap ? needsRoot('only a root server can be told to run commands as root') : ` (${SKIP})`}`,
  () => {
    it('refuses exec with 503 sandbox_unavailable + Retry-After, logs how to fix it, and keeps serving files', async () => {
      // Commands would run as root: the server refuses rather than run them.
      const s = await startServer({ env: { TROVE_EXEC_UID: '0', TROVE_EXEC_GID: '0' } });
      servers.push(s);
      const rt = api(s, s.runtimeKey, 'refused');
      for (const path of ['/v1/exec', '/exec']) {
        const res = await exec(rt, 'id -u', path);
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('30');
        expect(await res.json()).toEqual({
          detail:
            'Exec is unavailable: this server cannot create its command sandbox. The server log says how to fix it.',
          code: 'sandbox_unavailable',
        });
      }
      const out = s.output();
      expect(out).toContain(
        'Exec sandbox unavailable: TROVE_EXEC_UID/TROVE_EXEC_GID is 0: commands would run as root. Fix: set TROVE_EXEC_UID',
      );
      expect(out).toContain('warning: exec is disabled: TROVE_EXEC_UID/TROVE_EXEC_GID is 0');
      // The rest of the server works.
      expect((await rt('/files/a.txt', { method: 'PUT', body: 'still here' })).status).toBe(200);
      expect(await (await rt('/files/a.txt')).text()).toBe('still here');
    });
  },
);

describe('exec in the insecure development mode', () => {
  it('runs commands without a sandbox and says so loudly, at start and on every call', async () => {
    const s = await startServer({ env: { TROVE_EXEC_INSECURE: '1' } });
    servers.push(s);
    const rt = api(s, s.runtimeKey, 'insecure');
    expect(s.output()).toContain('TROVE_EXEC_INSECURE=1: exec runs commands WITHOUT ANY SANDBOX');
    const res = await exec(rt, 'echo hi > workspace/a.txt; cat workspace/a.txt; id -u');
    expect(res.status).toBe(200);
    // No sandbox: the command runs as the server user itself.
    expect(((await res.json()) as { stdout: string }).stdout).toBe(`hi\n${process.getuid!()}\n`);
    expect(await (await rt('/files/a.txt')).text()).toBe('hi\n');
    const deadline = Date.now() + 5000;
    while (!s.output().includes('exec ran WITHOUT a sandbox (TROVE_EXEC_INSECURE=1)') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(s.output()).toContain('exec ran WITHOUT a sandbox (TROVE_EXEC_INSECURE=1)');
  });
});
