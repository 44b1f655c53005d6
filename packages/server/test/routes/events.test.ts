/** The event log: fields, order, filters, paging, since, and the wait long-poll. */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, api, type StartedServer } from '../../../../test/helpers/server.js';

let server: StartedServer;
let rt: ReturnType<typeof api>;
let admin: ReturnType<typeof api>;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const post = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

interface Evt {
  id: string;
  event_id: string;
  type: string;
  api_version: string;
  workspace_id: string;
  namespace: string | null;
  created_at: string;
  data: Record<string, unknown>;
}

async function events(query = ''): Promise<{ events: Evt[]; next_cursor: string | null }> {
  const res = await admin(`/v1/workspaces/${server.workspaceId}/events${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { events: Evt[]; next_cursor: string | null };
}

beforeAll(async () => {
  server = await startServer();
  rt = api(server, server.runtimeKey, 'ev');
  admin = api(server, server.adminKey);
});
afterAll(async () => {
  await server?.close();
});

describe('events', () => {
  it('bootstrap emitted workspace.created and key.created', async () => {
    const all = await events('?limit=200');
    const types = all.events.map((e) => e.type).reverse();
    expect(types.slice(0, 3)).toEqual(['workspace.created', 'key.created', 'key.created']);
    expect(all.events.at(-1)!.data).toEqual({ name: 'default' });
  });

  it('every mutation appends an event with the docs/protocol.md fields, newest first', async () => {
    const before = (await events('?limit=1')).events[0]!.created_at;
    await rt('/write', post({ path: 'e/a.txt', content: 'abc' }));
    await rt('/files/e/b.bin', { method: 'PUT', body: 'xy' });
    await rt('/delete', post({ path: 'e/a.txt' }));
    const exec = await rt('/v1/exec', post({ command: 'echo out; exit 3' }));
    expect(exec.status).toBe(200);
    const key = (await (await admin(`/v1/workspaces/${server.workspaceId}/keys`, post({ name: 'evk' }))).json()) as { key_id: string };
    await admin(`/v1/workspaces/${server.workspaceId}/keys/${key.key_id}`, { method: 'DELETE' });

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
          exit_code: 3,
          exit_reason: 'exited',
          duration_ms: expect.any(Number),
          stdout: 'out\n',
        },
      ],
      ['file.deleted', 'ev', { path: 'workspace/e/a.txt' }],
      ['file.written', 'ev', { path: 'workspace/e/b.bin', size_bytes: 2, source: 'upload' }],
      ['file.written', 'ev', { path: 'workspace/e/a.txt', size_bytes: 3, source: 'write' }],
    ]);
    for (const e of page.events) {
      expect(e.id).toMatch(/^evt-/);
      expect(e.event_id).toBe(e.id);
      expect(e.api_version).toBe('2026-04-30');
      expect(e.workspace_id).toBe(server.workspaceId);
      expect(e.created_at).toMatch(ISO);
    }
    // created_at strictly increasing (so `since` never skips or repeats).
    const times = page.events.map((e) => e.created_at).reverse();
    for (let i = 1; i < times.length; i++) expect(times[i]! > times[i - 1]!).toBe(true);
  });

  it('filters by types and namespace; pages with next_cursor down to since', async () => {
    const ns2 = api(server, server.runtimeKey, 'ev2');
    const start = (await events('?limit=1')).events[0]!.created_at;
    for (let i = 0; i < 25; i++) await ns2('/write', post({ path: `p${i}.txt`, content: String(i) }));
    await rt('/write', post({ path: 'other.txt', content: 'o' }));
    const filtered = await events(`?namespace=ev2&types=file.written,file.deleted&since=${encodeURIComponent(start)}&limit=10`);
    expect(filtered.events).toHaveLength(10);
    expect(filtered.events.every((e) => e.namespace === 'ev2' && e.type === 'file.written')).toBe(true);
    const seen = [...filtered.events];
    let cursor = filtered.next_cursor;
    while (cursor) {
      const next = await events(`?namespace=ev2&types=file.written,file.deleted&since=${encodeURIComponent(start)}&limit=10&cursor=${cursor}`);
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
    const earlier = `${base.slice(0, -4)}${String(Number(base.slice(-3)) - 1).padStart(3, '0')}999Z`;
    void earlier;
    expect((await admin(`/v1/workspaces/${server.workspaceId}/events?since=yesterday`)).status).toBe(400);
    expect((await admin(`/v1/workspaces/${server.workspaceId}/events?limit=0`)).status).toBe(422);
    expect((await admin(`/v1/workspaces/${server.workspaceId}/events?cursor=garbage`)).status).toBe(400);
    const capped = await events('?limit=5000');
    expect(capped.events.length).toBeLessThanOrEqual(200);
  });

  it('wait long-polls and returns promptly when a matching event lands', async () => {
    const since = (await events('?limit=1')).events[0]!.created_at;
    const t0 = Date.now();
    const pending = events(`?wait=20&types=file.written&namespace=ev&since=${encodeURIComponent(since)}`);
    // A non-matching event must not end the wait; the matching one must.
    await new Promise((r) => setTimeout(r, 200));
    await api(server, server.runtimeKey, 'elsewhere')('/write', post({ path: 'n.txt', content: 'n' }));
    await new Promise((r) => setTimeout(r, 200));
    const wrote = Date.now();
    await rt('/write', post({ path: 'w.txt', content: 'w' }));
    const got = await pending;
    const done = Date.now();
    expect(got.events.map((e) => e.data.path)).toEqual(['workspace/w.txt']);
    expect(done - t0).toBeLessThan(15_000);
    expect(done - wrote).toBeLessThan(2_000);
  });

  it('wait with nothing new returns an empty page after the wait', async () => {
    const since = (await events('?limit=1')).events[0]!.created_at;
    const t0 = Date.now();
    const got = await events(`?wait=1&since=${encodeURIComponent(since)}`);
    expect(got.events).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });
});
