/**
 * exec/routes.ts: `POST /v1/exec` (JSON and live SSE) and the legacy `POST /exec` in-process: the answer shapes
 * and the refusals. Exec's own behaviour (limits, isolation, output) is tested in test/sandbox and test/e2e.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type Client, type TestApp } from '../helpers/app.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

describe.skipIf(!hasBwrap)(`exec routes${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let t: TestApp;
  let rt: Client;
  beforeAll(async () => {
    t = await startTestApp({ exec: true, env: { TROVE_EXEC_TIMEOUT_MS: '1500' } });
    rt = t.as(t.runtimeKey, 'exec-routes');
  });
  afterAll(() => t?.close());

  it('POST /v1/exec answers the result as JSON; a non-zero exit is still 200', async () => {
    const res = await rt.post('/v1/exec', { command: 'echo out; echo err >&2; exit 3' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      exit_code: 3,
      stdout: 'out\n',
      stderr: 'err\n',
      duration_ms: expect.any(Number),
      exit_reason: 'exited',
    });
  });

  it('POST /exec answers text/plain: stdout, or "[exit N]\\n<stderr>\\n<stdout>"', async () => {
    const ok = await rt.post('/exec', { command: 'echo hi' });
    expect([ok.statusCode, ok.headers['content-type'], ok.body]).toEqual([200, 'text/plain; charset=utf-8', 'hi\n']);
    const failed = await rt.post('/exec', { command: 'echo o; echo e >&2; exit 2', stdin: null });
    expect([failed.statusCode, failed.body]).toEqual([200, '[exit 2]\ne\n\no\n']);
  });

  it('streams with Accept: text/event-stream: output events, then exit', async () => {
    const base = await t.listen();
    const res = await fetch(`${base}/v1/exec`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${t.runtimeKey}`,
        'x-namespace': 'exec-routes',
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ command: 'printf hello' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('event: stdout\ndata: {"offset":0,"data":"hello","encoding":"utf-8"}\n\n');
    expect(text).toMatch(
      /event: exit\ndata: \{"exit_code":0,"exit_reason":"exited","duration_ms":\d+,"stdout_truncated":false,"stderr_truncated":false\}\n\n$/,
    );
  });

  it('answers 408 on timeout, on both forms', async () => {
    for (const url of ['/v1/exec', '/exec']) {
      const res = await rt.post(url, { command: 'sleep 10' });
      expect([res.statusCode, res.json()]).toEqual([
        408,
        { detail: 'Command timed out after 1.5s.', code: 'exec_timeout' },
      ]);
    }
  });

  it('validates the body', async () => {
    const cases: Array<[unknown, object]> = [
      [{}, { detail: 'body: missing required field "command"', code: 'validation_failed' }],
      [
        { command: '' },
        { detail: 'body field "command" must NOT have fewer than 1 characters', code: 'validation_failed' },
      ],
      [
        { command: 'true', stdin: 5 },
        { detail: 'body field "stdin" must be string,null', code: 'validation_failed' },
      ],
      [
        { command: 'true', stream: 'yes' },
        { detail: 'body field "stream" must be boolean', code: 'validation_failed' },
      ],
      [
        { command: 'true', stdin: 'x'.repeat(1024 * 1024 + 1) },
        { detail: 'stdin is larger than 1 MiB', code: 'validation_failed' },
      ],
    ];
    for (const [body, error] of cases) {
      const res = await rt.post('/v1/exec', body);
      expect([res.statusCode, res.json()]).toEqual([422, error]);
    }
  });

  it('refuses missing keys (401), admin keys (403), no namespace (400) and another namespace (403)', async () => {
    const locked = await t.createKey({ namespace: 'exec-routes' });
    const cases: Array<[Client, number, object]> = [
      [t.as(null, 'exec-routes'), 401, { detail: 'Invalid API key', code: 'unauthorized' }],
      [
        t.as(t.adminKey, 'exec-routes'),
        403,
        { detail: 'Admin keys cannot use runtime endpoints; use a workspace key', code: 'scope_forbidden' },
      ],
      [t.as(t.runtimeKey), 400, { detail: 'X-Namespace header required', code: 'namespace_required' }],
      [
        t.as(locked.api_key, 'elsewhere'),
        403,
        { detail: 'This key is locked to namespace "exec-routes"', code: 'namespace_forbidden' },
      ],
    ];
    for (const [c, status, error] of cases) {
      for (const url of ['/v1/exec', '/exec']) {
        const res = await c.post(url, { command: 'true' });
        expect([res.statusCode, res.json()]).toEqual([status, error]);
      }
    }
  });
});
