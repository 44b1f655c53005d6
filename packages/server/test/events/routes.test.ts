/**
 * events/routes.ts: the event log (`GET /v1/workspaces/{ws}/events`) in-process: fields, order, filters, paging,
 * since, the wait long-poll, and its error answers.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type Client, type TestApp } from '../helpers/app.js';
import type { EventEnvelope as Evt } from '../../src/events/service.js';

let t: TestApp;
let rt: Client;
let admin: Client;
let url: string;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const INVALID_NS = {
  detail: 'Invalid namespace name: use 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")',
  code: 'namespace_invalid',
};

async function events(query = ''): Promise<{ events: Evt[]; next_cursor: string | null }> {
  const res = await admin.get(url + query);
  expect(res.statusCode).toBe(200);
  return res.json<{ events: Evt[]; next_cursor: string | null }>();
}

/** Resolves once `cond()` holds (checked every 10 ms); fails after 10 s. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 10 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  t = await startTestApp({ exec: true });
  rt = t.as(t.runtimeKey, 'ev');
  admin = t.as(t.adminKey);
  url = `/v1/workspaces/${t.workspaceId}/events`;
});
afterAll(() => t?.close());

describe('events', () => {
  it('workspace creation emitted workspace.created and key.created', async () => {
    const all = await events('?limit=200');
    const types = all.events.map((e) => e.type).reverse();
    expect(types.slice(0, 3)).toEqual(['workspace.created', 'key.created', 'key.created']);
    expect(all.events.at(-1)!.data).toEqual({ name: 'test' });
  });

  it('every mutation appends an event with the docs/protocol.md fields, newest first', async () => {
    const before = (await events('?limit=1')).events[0]!.created_at;
    await rt.post('/write', { path: 'e/a.txt', content: 'abc' });
    await rt.put('/files/e/b.bin', 'xy');
    await rt.post('/delete', { path: 'e/a.txt' });
    const exec = await rt.post('/v1/exec', { command: 'echo out; exit 3' });
    expect(exec.statusCode).toBe(200);
    const key = await t.createKey({ name: 'evk' });
    await admin.delete(`/v1/workspaces/${t.workspaceId}/keys/${key.key_id}`);

    const page = await events(`?since=${encodeURIComponent(before)}`);
    const got = page.events.map((e) => [e.type, e.namespace, e.data]);
    expect(got).toEqual([
      ['key.revoked', null, { key_id: key.key_id }],
      ['key.created', null, { key_id: key.key_id, name: 'evk' }],
      [
        'exec.completed',
        'ev',
        {
          command: 'echo out; exit 3',
          command_bytes: 16,
          command_sha256: createHash('sha256').update('echo out; exit 3').digest('hex'),
          command_truncated: false,
          exec_id: expect.stringMatching(/^exec-/),
          exit_code: 3,
          exit_reason: 'exited',
          duration_ms: expect.any(Number),
          stdout: 'out\n',
        },
      ],
      ['file.deleted', 'ev', { path: 'workspace/e/a.txt', source: 'api' }],
      ['file.written', 'ev', { path: 'workspace/e/b.bin', size_bytes: 2, source: 'upload' }],
      ['file.written', 'ev', { path: 'workspace/e/a.txt', size_bytes: 3, source: 'write' }],
    ]);
    for (const e of page.events) {
      expect(e.id).toMatch(/^evt-/);
      expect(e.event_id).toBe(e.id);
      expect(e.api_version).toBe('2026-04-30');
      expect(e.workspace_id).toBe(t.workspaceId);
      expect(e.created_at).toMatch(ISO);
    }
    // created_at strictly increasing (so `since` never skips or repeats).
    const times = page.events.map((e) => e.created_at).reverse();
    for (let i = 1; i < times.length; i++) expect(times[i]! > times[i - 1]!).toBe(true);
  });

  it('filters by types and namespace; pages with next_cursor down to since', async () => {
    const ns2 = t.as(t.runtimeKey, 'ev2');
    const start = (await events('?limit=1')).events[0]!.created_at;
    for (let i = 0; i < 25; i++) await ns2.post('/write', { path: `p${i}.txt`, content: String(i) });
    await rt.post('/write', { path: 'other.txt', content: 'o' });
    const filtered = await events(
      `?namespace=ev2&types=file.written,file.deleted&since=${encodeURIComponent(start)}&limit=10`,
    );
    expect(filtered.events).toHaveLength(10);
    expect(filtered.events.every((e) => e.namespace === 'ev2' && e.type === 'file.written')).toBe(true);
    const seen = [...filtered.events];
    let cursor = filtered.next_cursor;
    while (cursor) {
      const next = await events(
        `?namespace=ev2&types=file.written,file.deleted&since=${encodeURIComponent(start)}&limit=10&cursor=${cursor}`,
      );
      seen.push(...next.events);
      cursor = next.next_cursor;
    }
    expect(seen.map((e) => e.data.path)).toEqual(Array.from({ length: 25 }, (_, i) => `workspace/p${24 - i}.txt`));
    expect(new Set(seen.map((e) => e.id)).size).toBe(25);
  });

  it('since accepts offsets, microseconds and a + decoded as a space', async () => {
    const newest = (await events('?limit=1')).events[0]!;
    const base = newest.created_at.slice(0, -1); // without Z
    for (const form of [newest.created_at, `${base}+00:00`, `${base}000+00:00`, `${base} 00:00`, `${base}999Z`]) {
      const r = await events(`?since=${encodeURIComponent(form).replace('%20', '+')}`);
      expect(r.events.map((e) => e.id)).not.toContain(newest.id);
    }
    const capped = await events('?limit=5000');
    expect(capped.events.length).toBeLessThanOrEqual(200);
  });

  it('wait long-polls and returns promptly when a matching event lands', async () => {
    const since = (await events('?limit=1')).events[0]!.created_at;
    const t0 = Date.now();
    const pending = events(`?wait=20&types=file.written&namespace=ev&since=${encodeURIComponent(since)}`);
    // A non-matching event must not end the wait; the matching one must.
    await new Promise((r) => setTimeout(r, 200));
    await t.as(t.runtimeKey, 'elsewhere').post('/write', { path: 'n.txt', content: 'n' });
    await new Promise((r) => setTimeout(r, 200));
    const wrote = Date.now();
    await rt.post('/write', { path: 'w.txt', content: 'w' });
    const got = await pending;
    const done = Date.now();
    expect(got.events.map((e) => e.data.path)).toEqual(['workspace/w.txt']);
    expect(done - t0).toBeLessThan(15_000);
    expect(done - wrote).toBeLessThan(2_000);
  });

  it('many waits with the same filters share one subscription and one read per wake-up, and all get the event', async () => {
    const since = (await events('?limit=1')).events[0]!.created_at;
    const { waiters, stats } = t.ctx.events;
    const query = `?wait=20&types=file.written&namespace=ev&since=${encodeURIComponent(since)}`;
    const pending = Array.from({ length: 20 }, () => events(query));
    await until(() => waiters.waiting === 20);
    expect(waiters.subscriptions).toBe(1);
    const reads = stats.pageReads;
    await rt.post('/write', { path: 'shared.txt', content: 's' });
    const got = await Promise.all(pending);
    for (const page of got) expect(page.events.map((e) => e.data.path)).toEqual(['workspace/shared.txt']);
    // Woken by one commit in one turn: one read for all of them (one each before).
    expect(stats.pageReads - reads).toBe(1);
    expect(waiters.size).toBe(0);
  });

  it('a wait whose client goes away stops waiting at once', async () => {
    const base = await t.listen();
    const { waiters } = t.ctx.events;
    const since = (await events('?limit=1')).events[0]!.created_at;
    const gone = new AbortController();
    const res = fetch(`${base}${url}?wait=30&since=${encodeURIComponent(since)}`, {
      headers: { authorization: `Bearer ${t.adminKey}` },
      signal: gone.signal,
    }).catch((err: unknown) => err);
    await until(() => waiters.waiting === 1);
    gone.abort();
    expect(await res).toBeInstanceOf(Error);
    await until(() => waiters.size === 0);
  });

  it('wait with nothing new returns an empty page after the wait', async () => {
    const since = (await events('?limit=1')).events[0]!.created_at;
    const t0 = Date.now();
    const got = await events(`?wait=1&since=${encodeURIComponent(since)}`);
    expect(got.events).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });

  it('answers bad queries with exact errors', async () => {
    const cases: Array<[string, number, object]> = [
      ['?since=yesterday', 400, { detail: 'Invalid since: "yesterday" (use an ISO-8601 time)', code: 'query_invalid' }],
      [
        '?cursor=garbage',
        400,
        { detail: 'Invalid cursor: pass next_cursor from a previous page unchanged', code: 'query_invalid' },
      ],
      ['?namespace=a%2Fb', 400, INVALID_NS],
      [
        '?source=bogus',
        400,
        { detail: 'Invalid source: "bogus" (known: exec, api, write, upload; comma-separated)', code: 'query_invalid' },
      ],
      ['?limit=0', 422, { detail: 'querystring field "limit" must be >= 1', code: 'validation_failed' }],
      ['?limit=abc', 422, { detail: 'querystring field "limit" must be integer', code: 'validation_failed' }],
      ['?wait=31', 422, { detail: 'querystring field "wait" must be <= 30', code: 'validation_failed' }],
    ];
    for (const [query, status, error] of cases) {
      const res = await admin.get(url + query);
      expect([res.statusCode, res.json()], query).toEqual([status, error]);
    }
  });

  it('filters by source', async () => {
    const since = (await events('?limit=1')).events[0]!.created_at;
    await rt.post('/write', { path: 's/w.txt', content: 'w' });
    await rt.put('/files/s/u.bin', 'u');
    const got = await events(`?source=upload&since=${encodeURIComponent(since)}`);
    expect(got.events.map((e) => [e.type, e.data.path])).toEqual([['file.written', 'workspace/s/u.bin']]);
  });

  it('keeps a namespace-locked key to its namespace', async () => {
    const locked = await t.createKey({ namespace: 'ev2' });
    const page = await t.as(locked.api_key).get(`${url}?limit=200`);
    const own = page.json<{ events: Evt[] }>().events;
    expect(own.length).toBeGreaterThan(0);
    expect(own.every((e) => e.namespace === 'ev2')).toBe(true);
    const other = await t.as(locked.api_key).get(`${url}?namespace=ev`);
    expect([other.statusCode, other.json()]).toEqual([
      403,
      { detail: 'This key is locked to namespace "ev2"', code: 'namespace_forbidden' },
    ]);
  });

  it('refuses another workspace (404) and a missing key (401)', async () => {
    const res = await rt.get('/v1/workspaces/ws-0000000000000000/events');
    expect([res.statusCode, res.json()]).toEqual([
      404,
      { detail: 'Workspace not found: ws-0000000000000000', code: 'workspace_not_found' },
    ]);
    const none = await t.as(null).get(url);
    expect([none.statusCode, none.json()]).toEqual([401, { detail: 'Invalid API key', code: 'unauthorized' }]);
  });
});
