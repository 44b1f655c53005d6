/**
 * routes/processes in-process: start, list, get, stdin (JSON and raw), close stdin, signal, wait, output and
 * stream of a background process, and their refusals. Process lifetimes, limits and cluster behaviour are
 * in test/e2e/processes.test.ts and test/cluster.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type Client, type TestApp } from '../helpers/app.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

interface Proc {
  process_id: string;
  state: 'running' | 'exited';
  exit_code: number | null;
  exit_reason: string | null;
  signal: string | null;
  stdin_open: boolean;
  stdout_bytes: number;
}

describe.skipIf(!hasBwrap)(`background process routes${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let t: TestApp;
  let rt: Client;
  beforeAll(async () => {
    t = await startTestApp({ exec: true });
    rt = t.as(t.runtimeKey, 'procs');
  });
  afterAll(() => t?.close());

  const start = async (body: object): Promise<Proc> => {
    const res = await rt.post('/v1/processes', body);
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Proc>();
  };
  const wait = async (id: string): Promise<Proc> => {
    const res = await rt.get(`/v1/processes/${id}/wait?timeout=30`);
    expect(res.statusCode).toBe(200);
    return res.json<Proc>();
  };

  it('starts a process, feeds its stdin, and reads its output after it exits', async () => {
    const p = await start({ command: 'cat; echo done >&2' });
    expect(p).toMatchObject({ process_id: expect.stringMatching(/^proc-[0-9a-f]{24}$/), namespace: 'procs', command: 'cat; echo done >&2', state: 'running', stdin_open: true, exit_code: null });

    const got = await rt.get(`/v1/processes/${p.process_id}`);
    expect([got.statusCode, got.json<Proc>().process_id]).toEqual([200, p.process_id]);
    const listed = (await rt.get('/v1/processes?state=running')).json<{ processes: Proc[] }>().processes.map((x) => x.process_id);
    expect(listed).toContain(p.process_id);

    const json = await rt.post(`/v1/processes/${p.process_id}/stdin`, { data: 'hello ' });
    expect([json.statusCode, json.json()]).toEqual([200, { process_id: p.process_id, written: 6, stdin_open: true }]);
    const raw = await rt.post(`/v1/processes/${p.process_id}/stdin`, Buffer.from('world'), { headers: { 'content-type': 'application/octet-stream' } });
    expect([raw.statusCode, raw.json()]).toEqual([200, { process_id: p.process_id, written: 5, stdin_open: true }]);
    const closed = await rt.post(`/v1/processes/${p.process_id}/stdin/close`);
    expect([closed.statusCode, closed.json()]).toEqual([200, { process_id: p.process_id, stdin_open: false }]);

    expect(await wait(p.process_id)).toMatchObject({ state: 'exited', exit_code: 0, exit_reason: 'exited', stdin_open: false, stdout_bytes: 11 });
    const out = await rt.get(`/v1/processes/${p.process_id}/output`);
    expect([out.statusCode, out.json()]).toEqual([
      200,
      { process_id: p.process_id, stream: 'stdout', offset: 0, next_offset: 11, data: 'hello world', encoding: 'utf-8', dropped_bytes: 0, eof: true },
    ]);
    const err = await rt.get(`/v1/processes/${p.process_id}/output?stream=stderr&offset=2`, { headers: { accept: 'application/octet-stream' } });
    expect(err.statusCode).toBe(200);
    expect(err.body).toBe('ne\n');
    expect([err.headers['x-trove-offset'], err.headers['x-trove-next-offset'], err.headers['x-trove-eof'], err.headers['x-trove-dropped-bytes']]).toEqual(['2', '5', '1', '0']);

    // The stream of an exited process replays its output, then its exit, and ends (so inject() can read it).
    const stream = await rt.get(`/v1/processes/${p.process_id}/stream`, { headers: { accept: 'application/x-ndjson' } });
    expect(stream.statusCode).toBe(200);
    const lines = stream.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(['stdout', 'stderr', 'exit']);
  });

  it('signals a running process; a signal after the exit is not delivered', async () => {
    const p = await start({ command: 'sleep 30', close_stdin: true });
    const sent = await rt.post(`/v1/processes/${p.process_id}/signal`, { signal: 'SIGTERM' });
    expect([sent.statusCode, sent.json()]).toEqual([200, { process_id: p.process_id, signal: 'SIGTERM', delivered: true }]);
    expect(await wait(p.process_id)).toMatchObject({ state: 'exited', exit_reason: 'killed', signal: 'SIGTERM' });
    const late = await rt.post(`/v1/processes/${p.process_id}/signal`, { signal: 'SIGKILL' });
    expect([late.statusCode, late.json()]).toEqual([200, { process_id: p.process_id, signal: 'SIGKILL', delivered: false }]);
  });

  it('answers bad input with exact errors', async () => {
    const p = await start({ command: 'true', close_stdin: true });
    await wait(p.process_id);
    const id = p.process_id;
    const cases: Array<[Promise<import('fastify').LightMyRequestResponse>, number, object]> = [
      [rt.post('/v1/processes', {}), 422, { detail: 'body: missing required field "command"', code: 'validation_failed' }],
      [rt.post('/v1/processes', { command: 'true', timeout_ms: 0 }), 422, { detail: 'body field "timeout_ms" must be >= 1', code: 'validation_failed' }],
      [rt.post('/v1/processes', { command: 'true', env: { A: 1 } }), 422, { detail: 'body field "env.A" must be string', code: 'validation_failed' }],
      [rt.get('/v1/processes?state=dead'), 422, { detail: 'querystring field "state" must be equal to one of the allowed values', code: 'validation_failed' }],
      [rt.get('/v1/processes/proc-nope'), 404, { detail: 'Process not found: proc-nope', code: 'process_not_found' }],
      [rt.get('/v1/processes/proc-nope/output'), 404, { detail: 'Process not found: proc-nope', code: 'process_not_found' }],
      [rt.post(`/v1/processes/${id}/signal`, { signal: 'SIGFOO' }), 422, { detail: 'body field "signal" must be equal to one of the allowed values', code: 'validation_failed' }],
      [rt.post(`/v1/processes/${id}/stdin`, { data: 5 }), 422, { detail: 'body field "data" must be a string', code: 'validation_failed' }],
      [rt.post(`/v1/processes/${id}/stdin`, { data: 'x', close: 'yes' }), 422, { detail: 'body field "close" must be a boolean', code: 'validation_failed' }],
      [rt.get(`/v1/processes/${id}/wait?timeout=61`), 422, { detail: 'querystring field "timeout" must be <= 60', code: 'validation_failed' }],
      [rt.get(`/v1/processes/${id}/stream`, { headers: { 'last-event-id': 'x' } }), 400, { detail: 'Last-Event-ID must be "<stdout offset>:<stderr offset>" as sent in an event id', code: 'bad_request' }],
    ];
    for (const [pending, status, error] of cases) {
      const res = await pending;
      expect([res.statusCode, res.json()], JSON.stringify(error)).toEqual([status, error]);
    }
    const closed = await rt.post(`/v1/processes/${id}/stdin`, { data: 'x' });
    expect([closed.statusCode, closed.json<{ code: string }>().code]).toEqual([409, 'conflict']);
    const tooBig = await rt.post(`/v1/processes/${id}/stdin`, { data: 'x'.repeat(1024 * 1024 + 1) });
    expect([tooBig.statusCode, tooBig.json()]).toEqual([413, { detail: 'A stdin write is at most 1 MiB.', code: 'payload_too_large' }]);
  });

  it('keeps processes to their namespace and refuses missing keys, admin keys and no namespace', async () => {
    const p = await start({ command: 'true', close_stdin: true });
    const elsewhere = await t.as(t.runtimeKey, 'other').get(`/v1/processes/${p.process_id}`);
    expect([elsewhere.statusCode, elsewhere.json()]).toEqual([404, { detail: `Process not found: ${p.process_id}`, code: 'process_not_found' }]);
    const locked = await t.createKey({ namespace: 'procs' });
    const cases: Array<[Client, number, object]> = [
      [t.as(null, 'procs'), 401, { detail: 'Invalid API key', code: 'unauthorized' }],
      [t.as(t.adminKey, 'procs'), 403, { detail: 'Admin keys cannot use runtime endpoints; use a workspace key', code: 'scope_forbidden' }],
      [t.as(t.runtimeKey), 400, { detail: 'X-Namespace header required', code: 'namespace_required' }],
      [t.as(locked.api_key, 'other'), 403, { detail: 'This key is locked to namespace "procs"', code: 'namespace_forbidden' }],
    ];
    for (const [c, status, error] of cases) {
      for (const res of [await c.post('/v1/processes', { command: 'true' }), await c.get('/v1/processes'), await c.get(`/v1/processes/${p.process_id}`)]) {
        expect([res.statusCode, res.json()]).toEqual([status, error]);
      }
    }
    await wait(p.process_id);
  });
});
