/**
 * GET /v1/workspaces/{ws}/webhooks/stream (Server-Sent Events) against the
 * real server: connected message, live events, heartbeats, namespace scoping,
 * client disconnects and server shutdown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';

let server: StartedServer;

/** Reads raw SSE frames (data messages and `:` comments) from a streaming response. */
class SseReader {
  readonly frames: string[] = [];
  private buffer = '';
  private waiters: Array<() => void> = [];
  ended = false;
  /** The server ended the response (rather than the connection breaking or the test aborting). */
  endedCleanly = false;
  readonly done: Promise<void>;

  constructor(readonly res: Response) {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    this.done = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            this.endedCleanly = true;
            break;
          }
          this.buffer += decoder.decode(value, { stream: true });
          let i: number;
          while ((i = this.buffer.indexOf('\n\n')) !== -1) {
            this.frames.push(this.buffer.slice(0, i));
            this.buffer = this.buffer.slice(i + 2);
          }
          this.wakeAll();
        }
      } catch {
        // aborted by the test
      } finally {
        this.ended = true;
        this.wakeAll();
      }
    })();
  }

  private wakeAll() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Data messages, parsed. */
  get messages(): Array<Record<string, unknown>> {
    return this.frames
      .filter((f) => f.startsWith('data: '))
      .map((f) => JSON.parse(f.slice(6)) as Record<string, unknown>);
  }

  async waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'frames'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0 || this.ended)
        throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

async function open(key: string, query = '', signal?: AbortSignal): Promise<SseReader> {
  const res = await fetch(`${server.baseUrl}/v1/workspaces/${server.workspaceId}/webhooks/stream${query}`, {
    headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
    signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  expect(res.headers.get('cache-control')).toContain('no-cache');
  expect(res.headers.get('x-request-id')).toMatch(/^req-/);
  return new SseReader(res);
}

async function write(ns: string, path: string): Promise<void> {
  const res = await api(
    server,
    server.runtimeKey,
    ns,
  )('/write', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path, content: 'x' }),
  });
  expect(res.status).toBe(200);
}

async function lockedKey(ns: string): Promise<string> {
  const res = await api(server, server.adminKey)(`/v1/workspaces/${server.workspaceId}/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: `locked-${ns}`, namespace: ns }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { api_key: string }).api_key;
}

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

describe('webhooks/stream', () => {
  it('sends connected first, then each new event as one data line, and pings when idle', async () => {
    const ac = new AbortController();
    const s = await open(server.adminKey, '?heartbeat=1', ac.signal);
    await s.waitFor(() => s.frames.length >= 1);
    expect(s.frames[0]).toBe('data: {"type":"connected"}');
    await write('live', 'a.txt');
    await write('live', 'b.txt');
    await s.waitFor(() => s.messages.length >= 3, 10_000, 'two events');
    const [connected, e1, e2] = s.messages;
    expect(connected).toEqual({ type: 'connected' });
    expect(e1).toMatchObject({
      type: 'file.written',
      namespace: 'live',
      workspace_id: server.workspaceId,
      api_version: '2026-04-30',
      data: { path: 'workspace/a.txt' },
    });
    expect(e1!.event_id).toBe(e1!.id);
    expect(e2).toMatchObject({ type: 'file.written', data: { path: 'workspace/b.txt' } });
    // Each message is exactly one `data:` line.
    for (const f of s.frames.filter((x) => !x.startsWith(':'))) expect(f.split('\n')).toHaveLength(1);
    await s.waitFor(() => s.frames.includes(': ping'), 5000, 'a heartbeat');
    ac.abort();
    await s.done;
    // The server is fine after the client went away.
    expect((await api(server, server.adminKey)('/v1/me')).status).toBe(200);
  });

  it('starts from now: events from before the connection are not replayed', async () => {
    await write('replay', 'old.txt');
    const ac = new AbortController();
    const s = await open(server.runtimeKey, '', ac.signal);
    await s.waitFor(() => s.frames.length >= 1);
    await write('replay', 'new.txt');
    await s.waitFor(() => s.messages.length >= 2);
    expect(s.messages[1]).toMatchObject({ data: { path: 'workspace/new.txt' } });
    ac.abort();
    await s.done;
  });

  it('gives a namespace-scoped key only its namespace', async () => {
    const key = await lockedKey('mine');
    const ac = new AbortController();
    const s = await open(key, '', ac.signal);
    await s.waitFor(() => s.frames.length >= 1);
    await write('theirs', 'x.txt');
    await api(server, server.adminKey)(`/v1/workspaces/${server.workspaceId}/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'unscoped-event' }),
    });
    await write('mine', 'y.txt');
    // Events arrive in order, so had the other namespace's (or a workspace-level) event been sent, it would be first.
    await s.waitFor(() => s.messages.length >= 2);
    expect(s.messages.slice(1).map((m) => [m.type, m.namespace])).toEqual([['file.written', 'mine']]);
    ac.abort();
    await s.done;

    const forbidden = await api(server, key)(`/v1/workspaces/${server.workspaceId}/webhooks/stream?namespace=theirs`);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toEqual({
      detail: 'This key is locked to namespace "mine"',
      code: 'namespace_forbidden',
    });
  });

  it('filters by ?namespace= and ?types= (ours)', async () => {
    const ac = new AbortController();
    const s = await open(server.adminKey, '?namespace=only&types=file.deleted', ac.signal);
    await s.waitFor(() => s.frames.length >= 1);
    await write('other', 'z.txt');
    await write('only', 'z.txt');
    const del = await api(
      server,
      server.runtimeKey,
      'only',
    )('/delete', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'z.txt' }),
    });
    expect(del.status).toBe(200);
    await s.waitFor(() => s.messages.length >= 2);
    expect(s.messages.slice(1).map((m) => [m.type, m.namespace])).toEqual([['file.deleted', 'only']]);
    ac.abort();
    await s.done;
  });

  it('ends the stream when its key is revoked', async () => {
    const admin = api(server, server.adminKey);
    const create = async (body: Record<string, unknown>) => {
      const res = await admin(`/v1/workspaces/${server.workspaceId}/keys`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return (await res.json()) as { key_id: string; api_key: string };
    };
    const revoke = (id: string) => admin(`/v1/workspaces/${server.workspaceId}/keys/${id}`, { method: 'DELETE' });
    // A workspace key sees its own key.revoked event and stops right there.
    const wide = await create({ name: 'stream-wide' });
    const s1 = await open(wide.api_key);
    await s1.waitFor(() => s1.frames.length >= 1);
    expect((await revoke(wide.key_id)).status).toBe(200);
    await s1.done;
    expect(s1.endedCleanly).toBe(true);
    expect(s1.messages.some((m) => m.type === 'key.revoked')).toBe(false);
    // So does a namespace-scoped stream, which never shows workspace-level events.
    const narrow = await create({ name: 'stream-narrow', namespace: 'rv' });
    const s2 = await open(narrow.api_key);
    await s2.waitFor(() => s2.frames.length >= 1);
    expect((await revoke(narrow.key_id)).status).toBe(200);
    await write('rv', 'after-revoke.txt');
    await s2.done;
    expect(s2.endedCleanly).toBe(true);
    expect(s2.messages.filter((m) => m.type === 'file.written')).toEqual([]);
  });

  it('answers errors as JSON before streaming', async () => {
    const path = `/v1/workspaces/${server.workspaceId}/webhooks/stream`;
    expect((await api(server, null)(path)).status).toBe(401);
    const other = await api(server, server.adminKey)('/v1/workspaces/ws-0000000000000000/webhooks/stream');
    expect(other.status).toBe(404);
    expect(((await other.json()) as { code: string }).code).toBe('workspace_not_found');
    const bad = await api(server, server.adminKey)(`${path}?namespace=..`);
    expect(bad.status).toBe(400);
    const hb = await api(server, server.adminKey)(`${path}?heartbeat=0`);
    expect(hb.status).toBe(422);
  });

  it('pings every 15 s by default', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const s = await open(server.adminKey, '', ac.signal);
    await s.waitFor(() => s.frames.includes(': ping'), 30_000, 'the default heartbeat');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(14_500);
    ac.abort();
    await s.done;
  }, 45_000);

  it('ends open streams cleanly when the server shuts down', async () => {
    const own = await startServer();
    try {
      const res = await fetch(`${own.baseUrl}/v1/workspaces/${own.workspaceId}/webhooks/stream`, {
        headers: { authorization: `Bearer ${own.adminKey}` },
      });
      const s = new SseReader(res);
      await s.waitFor(() => s.frames.length >= 1);
      const t0 = Date.now();
      await own.stop();
      await s.done;
      expect(s.endedCleanly).toBe(true);
      // No forced exit after the 15 s shutdown deadline: the stream did not hold the server up.
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(own.proc.exitCode).toBe(0);
    } finally {
      await own.close();
    }
  });
});
