/**
 * Group commit of the event log against a real database: SQLite always, and
 * PostgreSQL too with TROVE_TEST_PG=1. Concurrent emits share one transaction,
 * keep the order they were emitted in (seq and created_at), keep each event's
 * outbox rows in its transaction, and a bad event fails only its own caller.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, usePg } from '../../../../test/helpers/server.js';
import { loadConfig } from '../../src/config.js';
import { openStore, type Store } from '../../src/db/index.js';
import type { Database } from '../../src/db/schema.js';
import { AppError } from '../../src/errors.js';
import { LocalEventBus } from '../../src/events/bus.js';
import { EventService, type StoredEvent } from '../../src/events/service.js';
import { nowIso } from '../../src/ids.js';
import { DeliverySender } from '../../src/webhooks/deliver.js';
import { WebhookRepo } from '../../src/webhooks/repository.js';
import { SecretBox } from '../../src/webhooks/secret-box.js';
import { WebhookService } from '../../src/webhooks/service.js';

const dialects = ['sqlite', ...(usePg ? ['postgres'] : [])] as const;

/** Events of one workspace as stored, oldest first by seq. */
async function stored(store: Store, ws: string) {
  const rows = await store.db
    .selectFrom('events')
    .select(['id', 'seq', 'created_ms', 'data'])
    .where('workspace_id', '=', ws)
    .orderBy('seq', 'asc')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    seq: Number(r.seq),
    ms: Number(r.created_ms),
    data: JSON.parse(r.data) as Record<string, unknown>,
  }));
}

/** Seq and created_at both strictly increasing along the stored order. */
function expectOrdered(rows: Array<{ seq: number; ms: number }>): void {
  for (let i = 1; i < rows.length; i++) {
    expect(rows[i]!.seq).toBeGreaterThan(rows[i - 1]!.seq);
    expect(rows[i]!.ms).toBeGreaterThan(rows[i - 1]!.ms);
  }
}

describe.each(dialects)('event group commit on %s', (dialect) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'trove-group-commit-'));
  let store: Store;
  let events: EventService;
  let service: WebhookService;
  let sender: DeliverySender;
  let dropDb: (() => Promise<void>) | null = null;
  const ws1 = 'ws-' + randomBytes(8).toString('hex');
  const ws2 = 'ws-' + randomBytes(8).toString('hex');
  const config = loadConfig({ TROVE_DATA_DIR: dataDir, TROVE_WEBHOOK_ALLOW_PRIVATE: '1' });

  beforeAll(async () => {
    let databaseUrl: string | null = null;
    if (dialect === 'postgres') {
      const db = await createTestDatabase();
      databaseUrl = db.url;
      dropDb = db.drop;
    }
    store = await openStore({ dataDir, databaseUrl });
    events = new EventService(store.db, new LocalEventBus(), store.sqliteSync);
    sender = new DeliverySender({ allowPrivate: true, timeoutMs: 1000 });
    service = new WebhookService({
      repo: new WebhookRepo(store),
      secrets: await SecretBox.open(dataDir),
      sender,
      events,
      config,
      version: 'test',
      onWork: () => {},
    });
    events.onAppend(service.outboxHook, service.outboxHookSync);
    // An event whose data says so fails its transaction, after the rows and outbox rows of all its events were written.
    events.onAppend(
      async (_t, list) => {
        if (list.some((e) => e.data.poison)) throw new Error('poisoned event');
      },
      (_run, list) => {
        if (list.some((e) => e.data.poison)) throw new Error('poisoned event');
      },
    );
    for (const id of [ws1, ws2]) {
      await store.db
        .insertInto('workspaces')
        .values({ id, name: 't', created_at: nowIso(), last_event_ms: 0 })
        .execute();
    }
  });

  afterAll(async () => {
    await sender?.close();
    await store?.close();
    await dropDb?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const emit = (workspaceId: string, data: Record<string, unknown>, trx?: Transaction<Database>) =>
    events.emit({ workspaceId, namespace: 'n', type: 'file.written', data }, trx);

  it('appends the emits of one turn of the event loop in one transaction, in emit order', async () => {
    const before = events.stats.commits;
    const got = await Promise.all(Array.from({ length: 40 }, (_, i) => emit(ws1, { i })));
    // The first emit found the committer idle; it commits once the loop's current phase is over, by when
    // the 39 others have queued.
    expect(events.stats.commits - before).toBe(1);
    const rows = (await stored(store, ws1)).filter((r) => got.some((e) => e.id === r.id));
    expect(rows.map((r) => r.data.i)).toEqual(got.map((_, i) => i));
    expect(rows.map((r) => r.id)).toEqual(got.map((e) => e.id));
    expect(got.map((e) => e.seq)).toEqual(rows.map((r) => r.seq));
    expect(got.map((e) => Date.parse(e.created_at))).toEqual(rows.map((r) => r.ms));
    expectOrdered(rows);
    expect(new Set(got.map((e) => e.id)).size).toBe(40);
  });

  it('keeps each workspace in emit order when a batch mixes workspaces, and wakes each one', async () => {
    const w1 = events.waiter(ws1);
    const w2 = events.waiter(ws2);
    try {
      const inputs = Array.from({ length: 30 }, (_, i) => ({ ws: i % 3 === 0 ? ws2 : ws1, i }));
      const got = await Promise.all(inputs.map((x) => emit(x.ws, { i: x.i, mixed: true })));
      for (const ws of [ws1, ws2]) {
        const mine = got.filter((e) => e.workspace_id === ws);
        const rows = (await stored(store, ws)).filter((r) => r.data.mixed);
        expect(rows.map((r) => r.id)).toEqual(mine.map((e) => e.id));
        expect(rows.map((r) => r.data.i)).toEqual(inputs.filter((x) => x.ws === ws).map((x) => x.i));
        expectOrdered(await stored(store, ws));
      }
      // Woken after the commit: both waits return at once instead of after their minute.
      await Promise.all([w1.wait(60_000), w2.wait(60_000)]);
    } finally {
      w1.dispose();
      w2.dispose();
    }
  });

  it('writes each event of a batch with its outbox rows; a failing event fails alone, leaving neither', async () => {
    const hook = await service.create(ws1, { url: 'http://127.0.0.1:9/hook', events: ['file.written'] });
    try {
      const settled = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => emit(ws1, { i, poison: i === 5 })));
      const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ i, reason: s.reason as Error }] : []));
      expect(failed.map((f) => [f.i, f.reason.message])).toEqual([[5, 'poisoned event']]);
      const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      expect(ok).toHaveLength(11);
      const rows = await stored(store, ws1);
      expect(rows.some((r) => r.data.poison)).toBe(false);
      expect(rows.filter((r) => ok.some((e) => e.id === r.id)).map((r) => r.data.i)).toEqual([
        0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11,
      ]);
      expectOrdered(rows);
      const deliveries = await store.db
        .selectFrom('webhook_deliveries')
        .select(['event_id', 'event_seq'])
        .where('webhook_id', '=', hook.webhook_id)
        .orderBy('event_seq')
        .execute();
      expect(deliveries.map((d) => d.event_id)).toEqual(ok.map((e) => e.id));
      expect(deliveries.map((d) => Number(d.event_seq))).toEqual(ok.map((e) => e.seq));
    } finally {
      await service.delete(ws1, hook.webhook_id);
    }
  });

  it('fails only the events of a missing workspace in a batch', async () => {
    const missing = 'ws-' + randomBytes(8).toString('hex');
    const settled = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => emit(i % 2 === 0 ? missing : ws2, { i, orphan: i % 2 === 0 })),
    );
    settled.forEach((s, i) => {
      if (i % 2 === 0) {
        expect(s.status).toBe('rejected');
        const err = (s as PromiseRejectedResult).reason as AppError;
        expect(err).toBeInstanceOf(AppError);
        expect([err.code, err.message]).toEqual(['workspace_not_found', `Workspace not found: ${missing}`]);
      } else {
        expect(s.status).toBe('fulfilled');
      }
    });
    const count = await store.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('workspace_id', '=', missing)
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(0);
  });

  it("appends inside a caller's transaction while batches commit around it", async () => {
    let inTrx: StoredEvent | null = null;
    // Queued emits first; the caller's transaction starts while they commit.
    const queued = Array.from({ length: 10 }, (_, i) => emit(ws2, { i, around: true }));
    const trx = store.db.transaction().execute(async (t) => {
      inTrx = await emit(ws2, { trx: true }, t);
      await t
        .insertInto('namespaces')
        .values({ workspace_id: ws2, name: 'from-trx', created_at: nowIso(), last_activity_at: nowIso() })
        .execute();
    });
    const more = Array.from({ length: 10 }, (_, i) => emit(ws2, { i: 10 + i, around: true }));
    const got = await Promise.all([...queued, ...more]);
    await trx;
    const rows = await stored(store, ws2);
    expect(rows.map((r) => r.id)).toContain(inTrx!.id);
    for (const e of got) expect(rows.map((r) => r.id)).toContain(e.id);
    expect(rows.filter((r) => r.data.around).map((r) => r.data.i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expectOrdered(rows);
  });

  it("emitAll appends a command's burst in one transaction, several rows per INSERT, in order", async () => {
    const burst = (n: number, tag: string) =>
      Array.from({ length: n }, (_, i) => ({
        workspaceId: ws1,
        namespace: 'n',
        type: 'file.written',
        data: { i, [tag]: true },
      }));
    const check = async (got: StoredEvent[], tag: string, n: number) => {
      expect(got.map((e) => e.data.i)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(new Set(got.map((e) => e.id)).size).toBe(n);
      const rows = (await stored(store, ws1)).filter((r) => r.data[tag]);
      expect(rows.map((r) => r.id)).toEqual(got.map((e) => e.id));
      expect(rows.map((r) => r.seq)).toEqual(got.map((e) => e.seq));
      expect(rows.map((r) => r.ms)).toEqual(got.map((e) => Date.parse(e.created_at)));
      expectOrdered(await stored(store, ws1));
    };
    // 300 events (more than a batch of single emits): one commit, INSERTs of 128, 128, 32, 8 and 4 rows.
    let before = events.stats.commits;
    await check(await events.emitAll(burst(300, 'burst')), 'burst', 300);
    expect(events.stats.commits - before).toBe(1);
    // Beyond the bulk bound (2,048): two commits.
    before = events.stats.commits;
    await check(await events.emitAll(burst(2100, 'huge')), 'huge', 2100);
    expect(events.stats.commits - before).toBe(2);
    expect(await events.emitAll([])).toEqual([]);
  });

  it('emitAll keeps each workspace in order when its events mix workspaces', async () => {
    const inputs = Array.from({ length: 60 }, (_, i) => ({
      workspaceId: i % 7 === 3 ? ws2 : ws1,
      namespace: 'n',
      type: 'file.written',
      data: { i, mixedAll: true },
    }));
    const got = await events.emitAll(inputs);
    expect(got.map((e) => [e.workspace_id, e.data.i])).toEqual(inputs.map((x) => [x.workspaceId, x.data.i]));
    for (const ws of [ws1, ws2]) {
      const mine = got.filter((e) => e.workspace_id === ws);
      const rows = (await stored(store, ws)).filter((r) => r.data.mixedAll);
      expect(rows.map((r) => r.id)).toEqual(mine.map((e) => e.id));
      expect(rows.map((r) => r.seq)).toEqual(mine.map((e) => e.seq));
      expectOrdered(await stored(store, ws));
    }
  });

  it('emitAll with one failing event: the others are appended in order, and it rejects with that failure', async () => {
    const inputs = Array.from({ length: 20 }, (_, i) => ({
      workspaceId: ws2,
      namespace: 'n',
      type: 'file.written',
      data: { i, some: true, poison: i === 7 },
    }));
    await expect(events.emitAll(inputs)).rejects.toThrow('poisoned event');
    const rows = (await stored(store, ws2)).filter((r) => r.data.some);
    expect(rows.map((r) => r.data.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expectOrdered(await stored(store, ws2));
  });

  it("emitAll's outbox: one delivery per event and matching endpoint, in event order, more than one INSERT of them", async () => {
    // 300 events × 4 endpoints in one transaction: 1,200 deliveries, more than one INSERT carries.
    const all = await Promise.all(
      Array.from({ length: 4 }, () => service.create(ws1, { url: 'http://127.0.0.1:9/hook', events: ['*'] })),
    );
    const fromExec = await service.create(ws1, {
      url: 'http://127.0.0.1:9/hook',
      events: ['file.written'],
      namespace: 'n',
      sources: ['exec'],
    });
    try {
      const inputs = Array.from({ length: 300 }, (_, i) => ({
        workspaceId: ws1,
        namespace: i % 3 === 0 ? 'other' : 'n',
        type: i % 5 === 0 ? 'file.deleted' : 'file.written',
        data: { i, fanout: true, source: i % 2 === 0 ? 'exec' : 'api' },
      }));
      const got = await events.emitAll(inputs);
      const deliveries = async (id: string) =>
        (
          await store.db
            .selectFrom('webhook_deliveries')
            .select(['event_id', 'event_seq', 'event_type', 'status'])
            .where('webhook_id', '=', id)
            .orderBy('event_seq')
            .execute()
        ).map((d) => ({ ...d, event_seq: Number(d.event_seq) }));
      for (const w of all) {
        expect(await deliveries(w.webhook_id)).toEqual(
          got.map((e) => ({ event_id: e.id, event_seq: e.seq, event_type: e.type, status: 'pending' })),
        );
      }
      const wanted = got.filter((e, i) => e.namespace === 'n' && e.type === 'file.written' && i % 2 === 0);
      expect(wanted.length).toBeGreaterThan(50);
      expect((await deliveries(fromExec.webhook_id)).map((d) => d.event_id)).toEqual(wanted.map((e) => e.id));
    } finally {
      for (const w of [...all, fromExec]) await service.delete(ws1, w.webhook_id);
    }
  });

  it('without a synchronous form of every hook (and always on PostgreSQL): one insert per batch, afterInsertSql once per workspace', async () => {
    const asyncEvents = new EventService(store.db, new LocalEventBus(), store.sqliteSync);
    const calls: Array<{ trx: Transaction<Database>; event: StoredEvent }> = [];
    asyncEvents.afterInsertSql = async (trx, event) => {
      calls.push({ trx, event });
    };
    const inputs = Array.from({ length: 24 }, (_, i) => ({ ws: i % 4 === 0 ? ws1 : ws2, i }));
    const got = await Promise.all(
      inputs.map((x) =>
        asyncEvents.emit({ workspaceId: x.ws, namespace: null, type: 'key.created', data: { i: x.i, async: true } }),
      ),
    );
    for (const ws of [ws1, ws2]) {
      const rows = (await stored(store, ws)).filter((r) => r.data.async);
      expect(rows.map((r) => r.id)).toEqual(got.filter((e) => e.workspace_id === ws).map((e) => e.id));
      expect(rows.map((r) => r.seq)).toEqual(got.filter((e) => e.workspace_id === ws).map((e) => e.seq));
      expectOrdered(await stored(store, ws));
    }
    // Once per workspace per transaction, with that workspace's last event of the transaction.
    const byTrx = new Map<Transaction<Database>, StoredEvent[]>();
    for (const c of calls) byTrx.set(c.trx, [...(byTrx.get(c.trx) ?? []), c.event]);
    for (const list of byTrx.values()) expect(new Set(list.map((e) => e.workspace_id)).size).toBe(list.length);
    expect(asyncEvents.stats.events).toBe(24);
    expect(asyncEvents.stats.commits).toBeLessThan(24);
    const last = got.filter((e) => e.workspace_id === ws2).at(-1)!;
    expect(calls.some((c) => c.event.id === last.id)).toBe(true);
  });
});
