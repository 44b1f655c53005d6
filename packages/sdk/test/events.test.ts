/** events.list / iteration / tail (long-poll and polling fallback) / stream (SSE). */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';
import { TroveAdminClient, TroveClient, type EventStreamParams, type TroveEvent } from '../src/index.js';
import { json, startPeer } from './helpers/peer.js';

let server: StartedServer;
let trove: TroveClient;
let admin: TroveAdminClient;

beforeAll(async () => {
  server = await startServer();
  trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'ev' });
  admin = new TroveAdminClient({ apiKey: server.adminKey, baseUrl: server.baseUrl });
});
afterAll(async () => {
  await server?.close();
});

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('events.list', () => {
  it('returns camelCased envelopes of every runtime event, newest first', async () => {
    const ns = trove.withNamespace('ev-shape');
    await ns.write('a.txt', 'hello');
    await ns.upload('b.bin', new Uint8Array([1, 2, 3]));
    await ns.exec('echo done');
    await ns.delete('a.txt');
    const snap = await ns.snapshots.create({ label: 'l' });
    await ns.snapshots.restore(snap.snapshotId);
    await ns.snapshots.delete(snap.snapshotId);

    const page = await trove.events.list({ namespace: 'ev-shape' });
    expect(page.events.map((e) => e.type)).toEqual([
      'snapshot.deleted',
      'snapshot.restored',
      'snapshot.created',
      'file.deleted',
      'exec.completed',
      'file.written',
      'file.written',
    ]);
    const byType = (t: string) => page.events.filter((e) => e.type === t);
    const written = byType('file.written').reverse();
    expect(written[0]).toEqual({
      id: expect.stringMatching(/^evt-/),
      eventId: written[0]!.id,
      type: 'file.written',
      apiVersion: '2026-04-30',
      workspaceId: server.workspaceId,
      namespace: 'ev-shape',
      createdAt: expect.stringMatching(ISO_MS),
      data: { path: 'workspace/a.txt', sizeBytes: 5, source: 'write' },
    });
    expect(written[1]!.data).toEqual({ path: 'workspace/b.bin', sizeBytes: 3, source: 'upload' });
    expect(byType('exec.completed')[0]!.data).toEqual({
      command: 'echo done',
      commandBytes: 9,
      commandSha256: createHash('sha256').update('echo done').digest('hex'),
      commandTruncated: false,
      // Ours: the id its file changes carry (this command changed none).
      execId: expect.stringMatching(/^exec-[0-9a-f]{24}$/),
      exitCode: 0,
      exitReason: 'exited',
      durationMs: expect.any(Number),
      stdout: 'done\n',
    });
    expect(byType('file.deleted')[0]!.data).toEqual({ path: 'workspace/a.txt', source: 'api' });
    expect(byType('snapshot.created')[0]!.data).toEqual({ snapshotId: snap.snapshotId, label: 'l' });
    expect(byType('snapshot.restored')[0]!.data).toEqual({ snapshotId: snap.snapshotId, filesRestored: 1 });
    expect(byType('snapshot.deleted')[0]!.data).toEqual({ snapshotId: snap.snapshotId });
    // created_at is strictly increasing.
    const times = page.events.map((e) => e.createdAt);
    expect([...new Set(times)].sort().reverse()).toEqual(times);
  });

  it('filters by types and since (exclusive, string or Date)', async () => {
    const ns = trove.withNamespace('ev-since');
    await ns.write('1.txt', '1');
    await ns.exec('true');
    const first = (await trove.events.list({ namespace: 'ev-since', limit: 1 })).events[0]!;
    await ns.write('2.txt', '2');
    await ns.write('3.txt', '3');
    const after = await trove.events.list({ namespace: 'ev-since', since: first.createdAt });
    expect(after.events.map((e) => (e.type === 'file.written' ? e.data.path : e.type))).toEqual([
      'workspace/3.txt',
      'workspace/2.txt',
    ]);
    const onlyExec = await trove.events.list({ namespace: 'ev-since', types: ['exec.completed'] });
    expect(onlyExec.events.map((e) => e.type)).toEqual(['exec.completed']);
    const both = await trove.events.list({ namespace: 'ev-since', types: ['exec.completed', 'file.written'] });
    expect(both.events).toHaveLength(4);
    const viaDate = await trove.events.list({ namespace: 'ev-since', since: new Date(Date.parse(first.createdAt)) });
    expect(viaDate.events.map((e) => e.id)).toEqual(after.events.map((e) => e.id));
  });

  it('pages with nextCursor, and for-await walks every page', async () => {
    const ns = trove.withNamespace('ev-page');
    for (let i = 0; i < 25; i++) await ns.write(`f${i}.txt`, String(i));
    const first = await trove.events.list({ namespace: 'ev-page', limit: 10 });
    expect(first.events).toHaveLength(10);
    expect(first.hasNextPage()).toBe(true);
    const second = await first.getNextPage();
    expect(second.events).toHaveLength(10);
    const third = await second.getNextPage();
    expect(third.events).toHaveLength(5);
    expect(third.hasNextPage()).toBe(false);
    expect(third.nextCursor).toBeNull();
    await expect(third.getNextPage()).rejects.toThrow(/No next page/);

    const all: TroveEvent[] = [];
    for await (const e of trove.events.list({ namespace: 'ev-page', limit: 10 })) all.push(e);
    expect(all).toHaveLength(25);
    expect(all.map((e) => (e.type === 'file.written' ? e.data.path : ''))).toEqual(
      Array.from({ length: 25 }, (_, i) => `workspace/f${24 - i}.txt`),
    );
    let pages = 0;
    for await (const _p of first.iterPages()) pages++;
    expect(pages).toBe(3);
  });

  it('is available to admin keys too, and a namespace-scoped key sees only its namespace', async () => {
    await trove.withNamespace('ev-a').write('x', 'x');
    await trove.withNamespace('ev-b').write('y', 'y');
    const adminPage = await admin.events.list({ limit: 200 });
    const namespaces = new Set(adminPage.events.map((e) => e.namespace));
    expect(namespaces.has('ev-a') && namespaces.has('ev-b')).toBe(true);

    const { apiKey } = await admin.createKey('ev-a-only', { namespace: 'ev-a' });
    const scoped = new TroveClient({ apiKey, baseUrl: server.baseUrl });
    const scopedPage = await scoped.events.list({ limit: 200 });
    expect(scopedPage.events.length).toBeGreaterThan(0);
    expect(scopedPage.events.every((e) => e.namespace === 'ev-a')).toBe(true);
  });

  it('wait long-polls until a matching event exists', async () => {
    const ns = trove.withNamespace('ev-wait');
    await ns.write('seed.txt', 's');
    const since = (await trove.events.list({ namespace: 'ev-wait', limit: 1 })).events[0]!.createdAt;
    const started = Date.now();
    const pending = trove.events.list({ namespace: 'ev-wait', since, wait: 10 }).then((p) => p);
    setTimeout(() => void ns.write('later.txt', 'l'), 300);
    const page = await pending;
    expect(page.events.map((e) => e.type)).toEqual(['file.written']);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5000);
  });
});

describe('events.tail', () => {
  it('receives an event within 100 ms of the write over the long-poll', async () => {
    const waits: string[] = [];
    const instrumented: typeof fetch = (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.includes('wait=')) waits.push(url);
      return fetch(input, init);
    };
    const watcher = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, fetch: instrumented });
    const writer = trove.withNamespace('ev-tail');
    await writer.write('before.txt', 'not yielded: it happened before the tail started');
    const ac = new AbortController();
    const it = watcher.events.tail({ namespace: 'ev-tail', signal: ac.signal })[Symbol.asyncIterator]();
    // Five rounds: each write lands while the tail's long-poll is already waiting on the server.
    // The median is the claim (a single sample on a busy 2-core CI box is a coin toss); every round
    // must still be answered by the request that was waiting, not by a later poll.
    const latencies: number[] = [];
    for (let round = 0; round < 5; round++) {
      const next = it.next();
      while (waits.length === round) await new Promise((r) => setTimeout(r, 10));
      // Let the long-poll reach the server and start waiting.
      await new Promise((r) => setTimeout(r, 200));
      await writer.write(`live${round}.txt`, 'now');
      const written = performance.now();
      const ev = await next;
      latencies.push(performance.now() - written);
      expect(ev.done).toBe(false);
      expect(ev.value).toMatchObject({ type: 'file.written', data: { path: `workspace/live${round}.txt` } });
      expect(waits).toHaveLength(round + 1);
    }
    latencies.sort((x, y) => x - y);
    expect(latencies[2], JSON.stringify(latencies)).toBeLessThan(100);
    // Without a wake-up the poll would have run its full wait (seconds).
    expect(latencies[4], JSON.stringify(latencies)).toBeLessThan(2000);

    // Several events at once arrive oldest first.
    await writer.write('n1.txt', '1');
    await writer.write('n2.txt', '2');
    await writer.delete('n1.txt');
    const next3 = [await it.next(), await it.next(), await it.next()].map((r) => r.value as TroveEvent);
    expect(next3.map((e) => e.type)).toEqual(['file.written', 'file.written', 'file.deleted']);
    expect(next3[0]!.data).toMatchObject({ path: 'workspace/n1.txt' });

    // Aborting ends the iteration (no exception), even mid long-poll.
    const pending = it.next();
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
  });

  it('filters types, replays from since, and stops on break', async () => {
    const ns = trove.withNamespace('ev-tail2');
    await ns.write('a.txt', 'a');
    const since = (await trove.events.list({ namespace: 'ev-tail2', limit: 1 })).events[0]!.createdAt;
    await ns.exec('echo one');
    await ns.write('b.txt', 'b');
    await ns.exec('echo two');
    const seen: string[] = [];
    for await (const e of trove.events.tail({ namespace: 'ev-tail2', types: ['exec.completed'], since })) {
      if (e.type === 'exec.completed') seen.push(e.data.stdout);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['one\n', 'two\n']);
  });

  it('falls back to polling against a server that ignores wait', async () => {
    const evt = (n: number) => ({
      id: `evt-${n}`,
      event_id: `evt-${n}`,
      type: 'file.written',
      api_version: '2026-04-30',
      workspace_id: 'ws-peer',
      namespace: 'p',
      created_at: `2026-01-01T00:00:0${n}.000Z`,
      data: { path: `workspace/${n}.txt`, size_bytes: 1, source: 'write' },
    });
    let polls = 0;
    const peer = await startPeer((req, res) => {
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/v1/me') {
        return json(res, 200, {
          workspace_id: 'ws-peer',
          key_id: 'k',
          key_name: 'k',
          scope: 'workspace',
          namespace: null,
        });
      }
      // The baseline query for "now".
      if (url.searchParams.get('limit') === '1') return json(res, 200, { events: [evt(0)], next_cursor: null });
      polls++;
      // An old server: answers at once, ignoring wait; the event appears on the third poll.
      const since = url.searchParams.get('since');
      const events = polls >= 3 && since === evt(0).created_at ? [evt(1)] : [];
      json(res, 200, { events, next_cursor: null });
    });
    try {
      const client = new TroveClient({ apiKey: 'trove-sk-x', baseUrl: peer.url });
      const started = Date.now();
      for await (const e of client.events.tail({ pollIntervalMs: 300 })) {
        expect(e).toMatchObject({ id: 'evt-1', data: { path: 'workspace/1.txt', sizeBytes: 1 } });
        break;
      }
      expect(polls).toBe(3);
      const pollRequests = peer.requests.filter((r) => r.url.includes('wait='));
      expect(pollRequests).toHaveLength(3);
      // Two empty immediate answers → two pauses of pollIntervalMs.
      expect(pollRequests[1]!.at - pollRequests[0]!.at).toBeGreaterThanOrEqual(290);
      expect(pollRequests[2]!.at - pollRequests[1]!.at).toBeGreaterThanOrEqual(290);
      expect(Date.now() - started).toBeGreaterThanOrEqual(580);
    } finally {
      await peer.close();
    }
  });
});

/**
 * Opens `events.stream()` with `params`, resolves `connected` once the server confirmed the
 * subscription, and `done` with the first `count` events (the stream is then aborted).
 */
function collectStream(client: TroveClient | TroveAdminClient, params: EventStreamParams, count: number) {
  const ac = new AbortController();
  let onConnected!: () => void;
  const isConnected = new Promise<void>((r) => (onConnected = r));
  const received: TroveEvent[] = [];
  const done = (async () => {
    for await (const e of client.events.stream({ ...params, signal: ac.signal, onConnected })) {
      received.push(e);
      if (received.length === count) ac.abort();
    }
    return received;
  })();
  // A failing stream rejects `done` instead of ever connecting.
  return { connected: Promise.race([isConnected, done.then(() => {})]), done };
}

describe('events.stream (SSE)', () => {
  it('delivers live events over Server-Sent Events until aborted', async () => {
    const stream = collectStream(admin, {}, 2);
    await stream.connected;
    const ns = trove.withNamespace('ev-sse');
    await ns.write('s1.txt', 'one');
    await ns.delete('s1.txt');
    const received = await stream.done;
    expect(received.map((e) => e.type)).toEqual(['file.written', 'file.deleted']);
    expect(received[0]).toMatchObject({
      namespace: 'ev-sse',
      data: { path: 'workspace/s1.txt', sizeBytes: 3, source: 'write' },
    });
  });

  it('passes types and namespace to the server', async () => {
    const stream = collectStream(trove, { types: ['file.deleted'], namespace: 'ev-sse2', heartbeatSeconds: 1 }, 1);
    await stream.connected;
    await trove.withNamespace('ev-sse-other').write('gone.txt', 'x');
    await trove.withNamespace('ev-sse-other').delete('gone.txt');
    await trove.withNamespace('ev-sse2').write('s2.txt', 'x');
    await trove.withNamespace('ev-sse2').delete('s2.txt');
    const received = await stream.done;
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      type: 'file.deleted',
      namespace: 'ev-sse2',
      data: { path: 'workspace/s2.txt' },
    });
  });
});
