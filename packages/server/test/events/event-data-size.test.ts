/**
 * The size bound on an event's data (events/data-size.ts): the UTF-8-safe
 * cut, the cut-with-a-marker policy, and that a page of the maximum limit
 * stays bounded whatever an emitter passes, on SQLite and (TROVE_TEST_PG=1)
 * PostgreSQL, including rows stored before the bound existed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, usePg } from '../../../../test/helpers/server.js';
import { openStore, type Store } from '../../src/db/index.js';
import { LocalEventBus } from '../../src/events/bus.js';
import { MAX_EVENT_DATA_BYTES, boundEventData, utf8Head } from '../../src/events/data-size.js';
import { EventService } from '../../src/events/service.js';
import { newEventId, nowIso } from '../../src/ids.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('utf8Head', () => {
  it('keeps text that fits, and cuts longer text at a character boundary', () => {
    expect(utf8Head('héllo', 6)).toBe('héllo');
    expect(utf8Head('héllo', 5)).toBe('héll');
    expect(utf8Head('aé', 2)).toBe('a'); // é is 2 bytes: it goes whole
    expect(utf8Head('a€b', 3)).toBe('a');
    expect(utf8Head('a€b', 4)).toBe('a€');
    expect(utf8Head('🎉🎉', 7)).toBe('🎉'); // a surrogate pair is one 4-byte character
    expect(utf8Head('x'.repeat(10), 0)).toBe('');
    // A real U+FFFD at the cut is kept (it is text, not a broken character).
    expect(utf8Head('ab\uFFFDcd', 5)).toBe('ab\uFFFD');
  });

  it('never returns more than the byte budget', () => {
    const text = 'a€🎉é\u0001'.repeat(1000);
    for (let max = 0; max < 60; max++) {
      const head = utf8Head(text, max);
      expect(bytes(head)).toBeLessThanOrEqual(max);
      expect(text.startsWith(head)).toBe(true);
      expect(bytes(head)).toBeGreaterThan(max - 4);
    }
  });
});

describe('boundEventData', () => {
  it('stores data within the bound unchanged', () => {
    const data = { path: 'workspace/a.txt', size_bytes: 3, text: 'x'.repeat(1000) };
    expect(boundEventData(data)).toBe(JSON.stringify(data));
  });

  it('cuts the longest string fields and marks the cut with data_truncated and data_bytes', () => {
    const data = { small: 'keep me', big: '\u0001'.repeat(100_000), other: 'é'.repeat(20_000), n: 5 };
    const json = boundEventData(data);
    expect(bytes(json)).toBeLessThanOrEqual(MAX_EVENT_DATA_BYTES);
    const out = JSON.parse(json) as Record<string, unknown>;
    expect(out).toMatchObject({
      small: 'keep me',
      n: 5,
      data_truncated: true,
      data_bytes: bytes(JSON.stringify(data)),
    });
    expect(data.big.startsWith(out.big as string)).toBe(true);
    expect(data.other.startsWith(out.other as string)).toBe(true);
    // It uses the room it has: cut to the bound, not far below it.
    expect(bytes(json)).toBeGreaterThan(MAX_EVENT_DATA_BYTES - 64);
  });

  it('replaces data whose bulk is not in strings by the marker alone', () => {
    const data = { list: Array.from({ length: 20_000 }, (_, i) => i) };
    const json = boundEventData(data);
    expect(JSON.parse(json)).toEqual({ data_truncated: true, data_bytes: bytes(JSON.stringify(data)) });
  });
});

const dialects = ['sqlite', ...(usePg ? ['postgres'] : [])] as const;

describe.each(dialects)('an events page on %s', (dialect) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'trove-event-size-'));
  let store: Store;
  let events: EventService;
  let dropDb: (() => Promise<void>) | null = null;
  const ws = 'ws-' + randomBytes(8).toString('hex');

  beforeAll(async () => {
    let databaseUrl: string | null = null;
    if (dialect === 'postgres') {
      const db = await createTestDatabase();
      databaseUrl = db.url;
      dropDb = db.drop;
    }
    store = await openStore({ dataDir, databaseUrl });
    events = new EventService(store.db, new LocalEventBus(), store.sqliteSync);
    await store.db
      .insertInto('workspaces')
      .values({ id: ws, name: 't', created_at: nowIso(), last_event_ms: 0 })
      .execute();
  });
  afterAll(async () => {
    await store?.close();
    await dropDb?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('emit stores at most the bound, and a page of 200 oversized events stays under 200 × the bound', async () => {
    const huge = { message: 'é\u0001'.repeat(64 * 1024) };
    const emitted = await events.emit({ workspaceId: ws, namespace: 'ns', type: 'webhook.test', data: huge });
    expect(emitted.data).toMatchObject({ data_truncated: true, data_bytes: bytes(JSON.stringify(huge)) });
    const stored = await store.db
      .selectFrom('events')
      .select('data')
      .where('id', '=', emitted.id)
      .executeTakeFirstOrThrow();
    expect(bytes(stored.data)).toBeLessThanOrEqual(MAX_EVENT_DATA_BYTES);
    for (let i = 1; i < 200; i++)
      await events.emit({ workspaceId: ws, namespace: 'ns', type: 'webhook.test', data: huge });
    const page = await events.list(ws, { limit: 200 });
    expect(page.events).toHaveLength(200);
    const size = bytes(JSON.stringify(page));
    expect(size).toBeLessThanOrEqual(200 * (MAX_EVENT_DATA_BYTES + 512));
    expect(size).toBeGreaterThan(200 * (MAX_EVENT_DATA_BYTES - 64));
  });

  it('cuts a row stored before the bound existed on the way out, in pages and in the SSE feed', async () => {
    const legacy = { command: 'x'.repeat(1024 * 1024), exit_code: 0 };
    const id = newEventId();
    await store.db
      .insertInto('events')
      .values({
        id,
        workspace_id: ws,
        namespace: 'old',
        type: 'exec.completed',
        created_at: nowIso(),
        created_ms: Date.now(),
        data: JSON.stringify(legacy),
      })
      .execute();
    const page = await events.list(ws, { namespace: 'old', limit: 200 });
    expect(page.events).toHaveLength(1);
    expect(bytes(JSON.stringify(page.events[0]!.data))).toBeLessThanOrEqual(MAX_EVENT_DATA_BYTES);
    expect(page.events[0]!.data).toMatchObject({
      exit_code: 0,
      data_truncated: true,
      data_bytes: bytes(JSON.stringify(legacy)),
    });
    const feed = (await events.after(ws, 0, 'old')).find((e) => e.id === id)!;
    expect(feed.data).toEqual(page.events[0]!.data);
  });
});
