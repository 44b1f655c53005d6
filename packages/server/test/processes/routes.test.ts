/**
 * processes/routes.ts in-process: start, list, get, stdin (raw and JSON), close, signals, timeout, wait, output
 * from any offset (JSON and raw), the NDJSON stream of an exited process, the ring cap, the per-namespace
 * limit, the events, restore and namespace delete, and the exact refusals. A stream its client leaves and
 * rejoins, live one-shot exec, a server restart and a slow reader are in test/e2e/processes.test.ts.
 */
import { existsSync } from 'node:fs';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type Client, type TestApp } from '../helpers/app.js';
import {
  decodeOutput,
  errorOf,
  json,
  ok,
  readProcessOutput,
  type ProcessOutput as Output,
} from '../../../../test/helpers/http.js';
import type { ProcessView as Proc } from '../../src/processes/service.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

type Rt = (path: string, init?: RequestInit) => Promise<Response>;
const api = (s: TestApp, key: string, ns?: string): Rt => s.fetcher(key, ns);

async function start(rt: Rt, body: Record<string, unknown>): Promise<Proc> {
  return ok<Proc>(rt('/v1/processes', json('POST', body)), 201);
}

async function waitExit(rt: Rt, id: string): Promise<Proc> {
  for (;;) {
    const p = await ok<Proc>(rt(`/v1/processes/${id}/wait?timeout=20`));
    if (p.state === 'exited') return p;
  }
}

async function events(s: TestApp, types: string) {
  const r = await ok<{ events: Array<{ type: string; namespace: string; data: Record<string, unknown> }> }>(
    api(s, s.adminKey)(`/v1/workspaces/${s.workspaceId}/events?types=${types}&limit=200`),
  );
  return r.events;
}

describe.skipIf(!hasBwrap)(`background process routes${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let server: TestApp;
  let rt: Rt;

  beforeAll(async () => {
    server = await startTestApp({
      exec: true,
      env: {
        TROVE_PROCESS_MAX_PER_NAMESPACE: '3',
        TROVE_PROCESS_OUTPUT_BYTES: String(64 * 1024),
        TROVE_EXEC_TIMEOUT_MS: '5000',
      },
    });
    rt = api(server, server.runtimeKey, 'procs');
  });
  afterAll(() => server?.close());

  it('starts, lists, gets, takes stdin, waits and records process.started / process.exited', async () => {
    const p = await start(rt, {
      command: 'echo hello; read line; echo "got $line"; echo oops >&2; exit 3',
      stdin: 'first\n',
    });
    expect(p).toMatchObject({
      namespace: 'procs',
      command: 'echo hello; read line; echo "got $line"; echo oops >&2; exit 3',
      command_truncated: false,
      state: 'running',
      exit_code: null,
      exit_reason: null,
      signal: null,
      ended_at: null,
      timeout_ms: null,
      stdin_open: true,
    });
    expect(p.process_id).toMatch(/^proc-[0-9a-f]{24}$/);
    expect(Object.keys(p).sort()).toEqual(
      [
        'command',
        'command_bytes',
        'command_truncated',
        'ended_at',
        'exit_code',
        'exit_reason',
        'namespace',
        'process_id',
        'signal',
        'started_at',
        'state',
        'stderr_bytes',
        'stderr_dropped_bytes',
        'stdin_open',
        'stdout_bytes',
        'stdout_dropped_bytes',
        'timeout_ms',
      ].sort(),
    );
    const done = await waitExit(rt, p.process_id);
    expect(done).toMatchObject({
      state: 'exited',
      exit_code: 3,
      exit_reason: 'exited',
      signal: null,
      stdin_open: false,
      stdout_bytes: 16,
      stderr_bytes: 5,
    });
    expect(Date.parse(done.ended_at!)).toBeGreaterThanOrEqual(Date.parse(done.started_at));
    expect((await readProcessOutput(rt, p.process_id, 'stdout')).data.toString()).toBe('hello\ngot first\n');
    expect((await readProcessOutput(rt, p.process_id, 'stderr')).data.toString()).toBe('oops\n');
    expect(await ok<Proc>(rt(`/v1/processes/${p.process_id}`))).toEqual(done);
    const list = await ok<{ processes: Proc[] }>(rt('/v1/processes?state=exited'));
    expect(list.processes.map((x) => x.process_id)).toContain(p.process_id);
    const ev = await events(server, 'process.started,process.exited');
    const mine = ev.filter((e) => e.data.process_id === p.process_id);
    expect(mine.map((e) => e.type)).toEqual(['process.exited', 'process.started']);
    expect(mine[1]!.data).toEqual({ process_id: p.process_id, command: p.command, command_bytes: p.command_bytes });
    expect(mine[0]!.data).toMatchObject({
      process_id: p.process_id,
      exit_code: 3,
      exit_reason: 'exited',
      signal: null,
    });
    expect(typeof mine[0]!.data.duration_ms).toBe('number');
  });

  it('stdin as raw bytes and JSON, closing it, and 409 once closed or exited', async () => {
    const p = await start(rt, { command: 'cat' });
    expect(
      await ok(
        rt(`/v1/processes/${p.process_id}/stdin`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body: Buffer.from([0x61, 0xff, 0x0a]),
        }),
      ),
    ).toEqual({
      process_id: p.process_id,
      written: 3,
      stdin_open: true,
    });
    expect(await ok(rt(`/v1/processes/${p.process_id}/stdin`, json('POST', { data: 'é\n' })))).toEqual({
      process_id: p.process_id,
      written: 3,
      stdin_open: true,
    });
    expect(await ok(rt(`/v1/processes/${p.process_id}/stdin/close`, { method: 'POST' }))).toEqual({
      process_id: p.process_id,
      stdin_open: false,
    });
    const closed = await errorOf(rt(`/v1/processes/${p.process_id}/stdin`, json('POST', { data: 'late' })));
    expect(closed.status).toBe(409);
    expect(closed.code).toBe('conflict');
    const done = await waitExit(rt, p.process_id);
    expect(done.exit_code).toBe(0);
    const raw = await rt(`/v1/processes/${p.process_id}/output`, { headers: { accept: 'application/octet-stream' } });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('x-trove-offset')).toBe('0');
    expect(raw.headers.get('x-trove-next-offset')).toBe('6');
    expect(raw.headers.get('x-trove-eof')).toBe('1');
    expect(Buffer.from(await raw.arrayBuffer())).toEqual(Buffer.from([0x61, 0xff, 0x0a, 0xc3, 0xa9, 0x0a]));
    // Not valid UTF-8: JSON carries it as base64.
    const o = await ok<Output>(rt(`/v1/processes/${p.process_id}/output`));
    expect(o).toMatchObject({ offset: 0, next_offset: 6, encoding: 'base64', eof: true, dropped_bytes: 0 });
    expect(decodeOutput(o)).toEqual(Buffer.from([0x61, 0xff, 0x0a, 0xc3, 0xa9, 0x0a]));
    const exited = await errorOf(rt(`/v1/processes/${p.process_id}/stdin`, json('POST', { data: 'x' })));
    expect([exited.status, exited.code]).toEqual([409, 'conflict']);
    expect(exited.detail).toContain('has exited');
  });

  it('a JSON stdin write with close: true ends the input', async () => {
    const p = await start(rt, { command: 'wc -c' });
    expect(await ok(rt(`/v1/processes/${p.process_id}/stdin`, json('POST', { data: 'abcd', close: true })))).toEqual({
      process_id: p.process_id,
      written: 4,
      stdin_open: false,
    });
    await waitExit(rt, p.process_id);
    expect((await readProcessOutput(rt, p.process_id, 'stdout')).data.toString().trim()).toBe('4');
  });

  it('close_stdin at start gives EOF after the initial stdin', async () => {
    const p = await start(rt, { command: 'cat', stdin: 'only this', close_stdin: true });
    expect(p.stdin_open).toBe(false);
    await waitExit(rt, p.process_id);
    expect((await readProcessOutput(rt, p.process_id, 'stdout')).data.toString()).toBe('only this');
  });

  it('signals reach the whole process tree: SIGTERM → killed with signal SIGTERM; a signal from inside → signaled', async () => {
    const p = await start(rt, { command: 'sleep 600 & sleep 601 & echo started; wait' });
    // Wait for the output that says both are started.
    while ((await ok<Output>(rt(`/v1/processes/${p.process_id}/output`))).data === '')
      await new Promise((r) => setTimeout(r, 20));
    expect(await ok(rt(`/v1/processes/${p.process_id}/signal`, json('POST', { signal: 'SIGTERM' })))).toEqual({
      process_id: p.process_id,
      signal: 'SIGTERM',
      delivered: true,
    });
    const done = await waitExit(rt, p.process_id);
    expect(done).toMatchObject({ exit_code: 143, exit_reason: 'killed', signal: 'SIGTERM' });
    expect(await ok(rt(`/v1/processes/${p.process_id}/signal`, json('POST', { signal: 'SIGTERM' })))).toEqual({
      process_id: p.process_id,
      signal: 'SIGTERM',
      delivered: false,
    });
    const self = await start(rt, { command: 'kill -USR1 $$' });
    expect(await waitExit(rt, self.process_id)).toMatchObject({
      exit_code: 138,
      exit_reason: 'signaled',
      signal: 'SIGUSR1',
    });
    const k = await start(rt, { command: 'sleep 600' });
    expect(
      (
        await ok<{ delivered: boolean }>(
          rt(`/v1/processes/${k.process_id}/signal`, json('POST', { signal: 'SIGKILL' })),
        )
      ).delivered,
    ).toBe(true);
    expect(await waitExit(rt, k.process_id)).toMatchObject({
      exit_code: 137,
      exit_reason: 'killed',
      signal: 'SIGKILL',
    });
    const bad = await errorOf(rt(`/v1/processes/${k.process_id}/signal`, json('POST', { signal: 'SIGSEGV' })));
    expect([bad.status, bad.code]).toEqual([422, 'validation_failed']);
  });

  it('timeout_ms ends it with exit_reason timeout and exit code 124', async () => {
    const p = await start(rt, { command: 'sleep 600', timeout_ms: 300 });
    expect(p.timeout_ms).toBe(300);
    expect(await waitExit(rt, p.process_id)).toMatchObject({ exit_code: 124, exit_reason: 'timeout', signal: null });
  });

  it('wait answers running after its timeout', async () => {
    const p = await start(rt, { command: 'sleep 600' });
    const r = await ok<Proc>(rt(`/v1/processes/${p.process_id}/wait?timeout=0.2`));
    expect(r.state).toBe('running');
    const tooLong = await errorOf(rt(`/v1/processes/${p.process_id}/wait?timeout=61`));
    expect([tooLong.status, tooLong.code]).toEqual([422, 'validation_failed']);
    await ok(rt(`/v1/processes/${p.process_id}/signal`, json('POST', { signal: 'SIGKILL' })));
    await waitExit(rt, p.process_id);
  });

  it('NDJSON stream: output lines, then the exit with the process', async () => {
    const p = await start(rt, { command: 'echo one; echo two >&2' });
    await waitExit(rt, p.process_id);
    const res = await rt(`/v1/processes/${p.process_id}/stream`, { headers: { accept: 'application/x-ndjson' } });
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const lines = (await res.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.slice(0, 2)).toEqual([
      { type: 'stdout', offset: 0, data: 'one\n', encoding: 'utf-8' },
      { type: 'stderr', offset: 0, data: 'two\n', encoding: 'utf-8' },
    ]);
    expect(lines[2]).toMatchObject({ type: 'exit', process: { process_id: p.process_id, exit_code: 0 } });
    expect(lines).toHaveLength(3);
  });

  it('keeps the last TROVE_PROCESS_OUTPUT_BYTES per stream; an older offset reads from the retained start', async () => {
    // 200 KiB through a 64 KiB ring: records of 8 bytes at their own absolute offsets.
    const p = await start(rt, { command: 'i=0; while [ $i -lt 25600 ]; do printf "%07d\\n" $i; i=$((i+1)); done' });
    const done = await waitExit(rt, p.process_id);
    expect(done.stdout_bytes).toBe(204_800);
    // Retained: more than cap - cap/16, at most the cap.
    expect(done.stdout_dropped_bytes).toBeGreaterThanOrEqual(204_800 - 64 * 1024);
    expect(done.stdout_dropped_bytes).toBeLessThan(204_800 - 60 * 1024);
    const o = await ok<Output>(rt(`/v1/processes/${p.process_id}/output?offset=0&limit=16`));
    expect(o.offset).toBe(done.stdout_dropped_bytes);
    expect(o.dropped_bytes).toBe(done.stdout_dropped_bytes);
    const rec = Math.ceil(o.offset / 8);
    const at = rec * 8 - o.offset;
    expect(
      decodeOutput(o)
        .subarray(at, at + 8)
        .toString(),
    ).toBe(`${String(rec).padStart(7, '0')}\n`);
    const tail = await readProcessOutput(rt, p.process_id, 'stdout', done.stdout_dropped_bytes);
    expect(tail.data.length).toBe(204_800 - done.stdout_dropped_bytes);
    expect(tail.data.subarray(-8).toString()).toBe('0025599\n');
    const big = await errorOf(rt(`/v1/processes/${p.process_id}/output?limit=${4 * 1024 * 1024 + 1}`));
    expect([big.status, big.code]).toEqual([422, 'validation_failed']);
  });

  it('a namespace runs at most TROVE_PROCESS_MAX_PER_NAMESPACE (3) at once: 429 exec_busy', async () => {
    const other = api(server, server.runtimeKey, 'limits');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await start(other, { command: 'sleep 600' })).process_id);
    const r = await other('/v1/processes', json('POST', { command: 'true' }));
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(((await r.json()) as { code: string }).code).toBe('exec_busy');
    // Another namespace is not affected.
    const elsewhere = await start(api(server, server.runtimeKey, 'limits-2'), { command: 'true' });
    expect(elsewhere.state).toBe('running');
    for (const id of ids) await ok(other(`/v1/processes/${id}/signal`, json('POST', { signal: 'SIGKILL' })));
    for (const id of ids) await waitExit(other, id);
    await start(other, { command: 'true' });
  });

  it('another namespace (or a bad id) sees 404 process_not_found; bad input is 422', async () => {
    const p = await start(rt, { command: 'true' });
    for (const path of [
      `/v1/processes/${p.process_id}`,
      `/v1/processes/${p.process_id}/output`,
      `/v1/processes/proc-nope`,
    ]) {
      const e = await errorOf(api(server, server.runtimeKey, 'someone-else')(path));
      expect([e.status, e.code]).toEqual([404, 'process_not_found']);
    }
    for (const body of [
      {},
      { command: '' },
      { command: 'x', timeout_ms: 0 },
      { command: 'x', env: { 'BAD-NAME': '1' } },
      { command: 'x', env: { TROVE_NAMESPACE: 'x' } },
    ]) {
      const e = await errorOf(rt('/v1/processes', json('POST', body)));
      expect([e.status, e.code], JSON.stringify(body)).toEqual([422, 'validation_failed']);
    }
    const env = await start(rt, { command: 'echo "$GREETING"', env: { GREETING: 'hi there' }, timeout_ms: 10_000 });
    await waitExit(rt, env.process_id);
    expect((await readProcessOutput(rt, env.process_id, 'stdout')).data.toString()).toBe('hi there\n');
  });

  it('every route is in /openapi.json', async () => {
    const doc = (await (await api(server, server.runtimeKey)('/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = [
      ['post', '/v1/processes'],
      ['get', '/v1/processes'],
      ['get', '/v1/processes/{id}'],
      ['post', '/v1/processes/{id}/stdin'],
      ['post', '/v1/processes/{id}/stdin/close'],
      ['post', '/v1/processes/{id}/signal'],
      ['get', '/v1/processes/{id}/wait'],
      ['get', '/v1/processes/{id}/output'],
      ['get', '/v1/processes/{id}/stream'],
    ];
    for (const [method, path] of routes) expect(doc.paths[path!]?.[method!], `${method} ${path}`).toBeDefined();
    expect(JSON.stringify(doc.paths['/v1/exec'])).toContain('text/event-stream');
  });

  it('a snapshot restore stops the namespace’s running processes first (exit_reason killed)', async () => {
    const ns = api(server, server.runtimeKey, 'restore-me');
    await ok(ns('/write', json('POST', { path: 'f.txt', content: 'v1' })));
    const snap = await ok<{ snapshot_id: string }>(ns('/v1/snapshots', json('POST', {})));
    const p = await start(ns, { command: 'sleep 600' });
    await ok(ns(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }));
    // Recorded before the restore answered.
    expect(await ok<Proc>(ns(`/v1/processes/${p.process_id}`))).toMatchObject({
      state: 'exited',
      exit_reason: 'killed',
      signal: 'SIGKILL',
    });
  });

  it('a namespace delete stops its processes first, then their records go', async () => {
    const ns = api(server, server.runtimeKey, 'doomed-procs');
    const p = await start(ns, { command: 'sleep 600' });
    await ok(
      api(server, server.adminKey)(`/v1/workspaces/${server.workspaceId}/namespaces/doomed-procs`, {
        method: 'DELETE',
      }),
    );
    const e = await errorOf(ns(`/v1/processes/${p.process_id}`));
    expect([e.status, e.code]).toEqual([404, 'process_not_found']);
    const ev = await events(server, 'process.exited');
    expect(ev.find((x) => x.data.process_id === p.process_id)?.data).toMatchObject({
      exit_reason: 'killed',
      signal: 'SIGKILL',
    });
  });

  it('answers bad input with exact errors', async () => {
    const p = await start(rt, { command: 'true', close_stdin: true });
    await waitExit(rt, p.process_id);
    const id = p.process_id;
    const c = server.as(server.runtimeKey, 'procs');
    const cases: Array<[Promise<LightMyRequestResponse>, number, object]> = [
      [
        c.post('/v1/processes', {}),
        422,
        { detail: 'body: missing required field "command"', code: 'validation_failed' },
      ],
      [
        c.post('/v1/processes', { command: 'true', timeout_ms: 0 }),
        422,
        { detail: 'body field "timeout_ms" must be >= 1', code: 'validation_failed' },
      ],
      [
        c.post('/v1/processes', { command: 'true', env: { A: 1 } }),
        422,
        { detail: 'body field "env.A" must be string', code: 'validation_failed' },
      ],
      [
        c.get('/v1/processes?state=dead'),
        422,
        { detail: 'querystring field "state" must be equal to one of the allowed values', code: 'validation_failed' },
      ],
      [c.get('/v1/processes/proc-nope'), 404, { detail: 'Process not found: proc-nope', code: 'process_not_found' }],
      [
        c.get('/v1/processes/proc-nope/output'),
        404,
        { detail: 'Process not found: proc-nope', code: 'process_not_found' },
      ],
      [
        c.post(`/v1/processes/${id}/signal`, { signal: 'SIGFOO' }),
        422,
        { detail: 'body field "signal" must be equal to one of the allowed values', code: 'validation_failed' },
      ],
      [
        c.post(`/v1/processes/${id}/stdin`, { data: 5 }),
        422,
        { detail: 'body field "data" must be a string', code: 'validation_failed' },
      ],
      [
        c.post(`/v1/processes/${id}/stdin`, { data: 'x', close: 'yes' }),
        422,
        { detail: 'body field "close" must be a boolean', code: 'validation_failed' },
      ],
      [
        c.get(`/v1/processes/${id}/wait?timeout=61`),
        422,
        { detail: 'querystring field "timeout" must be <= 60', code: 'validation_failed' },
      ],
      [
        c.get(`/v1/processes/${id}/stream`, { headers: { 'last-event-id': 'x' } }),
        400,
        {
          detail: 'Last-Event-ID must be "<stdout offset>:<stderr offset>" as sent in an event id',
          code: 'bad_request',
        },
      ],
    ];
    for (const [pending, status, error] of cases) {
      const res = await pending;
      expect([res.statusCode, res.json()], JSON.stringify(error)).toEqual([status, error]);
    }
    const closed = await c.post(`/v1/processes/${id}/stdin`, { data: 'x' });
    expect([closed.statusCode, closed.json<{ code: string }>().code]).toEqual([409, 'conflict']);
    const tooBig = await c.post(`/v1/processes/${id}/stdin`, { data: 'x'.repeat(1024 * 1024 + 1) });
    expect([tooBig.statusCode, tooBig.json()]).toEqual([
      413,
      { detail: 'A stdin write is at most 1 MiB.', code: 'payload_too_large' },
    ]);
  });

  it('keeps processes to their namespace and refuses missing keys, admin keys and no namespace', async () => {
    const p = await start(rt, { command: 'true', close_stdin: true });
    const elsewhere = await server.as(server.runtimeKey, 'other').get(`/v1/processes/${p.process_id}`);
    expect([elsewhere.statusCode, elsewhere.json()]).toEqual([
      404,
      { detail: `Process not found: ${p.process_id}`, code: 'process_not_found' },
    ]);
    const locked = await server.createKey({ namespace: 'procs' });
    const cases: Array<[Client, number, object]> = [
      [server.as(null, 'procs'), 401, { detail: 'Invalid API key', code: 'unauthorized' }],
      [
        server.as(server.adminKey, 'procs'),
        403,
        { detail: 'Admin keys cannot use runtime endpoints; use a workspace key', code: 'scope_forbidden' },
      ],
      [server.as(server.runtimeKey), 400, { detail: 'X-Namespace header required', code: 'namespace_required' }],
      [
        server.as(locked.api_key, 'other'),
        403,
        { detail: 'This key is locked to namespace "procs"', code: 'namespace_forbidden' },
      ],
    ];
    for (const [c, status, error] of cases) {
      for (const res of [
        await c.post('/v1/processes', { command: 'true' }),
        await c.get('/v1/processes'),
        await c.get(`/v1/processes/${p.process_id}`),
      ]) {
        expect([res.statusCode, res.json()]).toEqual([status, error]);
      }
    }
    await waitExit(rt, p.process_id);
  });
});
