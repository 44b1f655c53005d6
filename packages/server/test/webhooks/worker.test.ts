/**
 * The delivery worker in-process against a real loopback receiver: wake-ups,
 * ordering, crash leftovers, and shutdown in the middle of an attempt. On
 * SQLite, and on PostgreSQL too in the PostgreSQL pass (TROVE_TEST_PG=1).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, usePg, type TestDatabase } from '../../../../test/helpers/server.js';
import { loadConfig } from '../../src/config.js';
import { openStore, type Store } from '../../src/db/index.js';
import { LocalEventBus } from '../../src/events/bus.js';
import { EventService } from '../../src/events/service.js';
import { nowIso } from '../../src/ids.js';
import { DeliverySender } from '../../src/webhooks/deliver.js';
import { WebhookRepo } from '../../src/webhooks/repository.js';
import { SecretBox } from '../../src/webhooks/secret-box.js';
import { WebhookService } from '../../src/webhooks/service.js';
import { DeliveryWorker } from '../../src/webhooks/worker.js';

const ws = 'ws-worker000000000';
const dialects = ['sqlite', ...(usePg ? ['postgres'] : [])] as const;
let pgDb: TestDatabase | null = null;
let dir: string;
let store: Store;
let events: EventService;
let bus: LocalEventBus;
let repo: WebhookRepo;
let service: WebhookService;
let sender: DeliverySender;
let secrets: SecretBox;
let receiver: http.Server;
let url: string;
let hits: Array<{ id: string; path: string }>;
let respond: (res: http.ServerResponse) => void;
let onHit: () => void = () => {};
const workers: DeliveryWorker[] = [];
const logger = { info() {}, warn() {}, error() {} };
const config = () =>
  loadConfig({ TROVE_DATA_DIR: dir, TROVE_WEBHOOK_ALLOW_PRIVATE: '1', TROVE_WEBHOOK_RETRY_SCHEDULE: '50' });

function worker(): DeliveryWorker {
  const w = new DeliveryWorker({
    config: config().webhooks,
    repo,
    sender,
    secrets,
    bus,
    logger,
    version: 'test',
    releaseOrphansOnStart: true,
  });
  workers.push(w);
  return w;
}

const waitHits = (n: number) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`only ${hits.length} of ${n} deliveries arrived`)), 10_000);
    const check = () => {
      if (hits.length >= n) {
        clearTimeout(t);
        resolve();
      }
    };
    onHit = check;
    check();
  });

/** The receiver answers before the worker records the outcome: wait for the record. */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(dialects)('DeliveryWorker on %s', (dialect) => {
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trove-worker-'));
    pgDb = dialect === 'postgres' ? await createTestDatabase() : null;
    store = await openStore({ dataDir: dir, databaseUrl: pgDb?.url ?? null });
    bus = new LocalEventBus();
    events = new EventService(store.db, bus, store.sqliteSync);
    repo = new WebhookRepo(store);
    sender = new DeliverySender({ allowPrivate: true, timeoutMs: 5000 });
    secrets = await SecretBox.open(dir);
    hits = [];
    respond = (res) => res.end('ok');
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        hits.push({ id: (JSON.parse(body) as { id: string }).id, path: req.url ?? '' });
        respond(res);
        onHit();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    service = new WebhookService({
      repo,
      secrets,
      sender,
      events,
      config: config(),
      version: 'test',
      onWork: () => {},
    });
    events.onAppend(service.outboxHook, service.outboxHookSync);
    await store.db
      .insertInto('workspaces')
      .values({ id: ws, name: 't', created_at: nowIso(), last_event_ms: 0 })
      .execute();
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop(100);
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
    await sender.close();
    await store.close();
    await pgDb?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const emit = () => events.emit({ workspaceId: ws, namespace: null, type: 'key.created', data: {} });

  describe('DeliveryWorker', () => {
    it('drains a backlog in event order and is woken by new events', async () => {
      await service.create(ws, { url: `${url}/a`, events: ['*'] });
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push((await emit()).id);
      const w = worker();
      await w.start();
      await waitHits(20);
      expect(hits.map((h) => h.id)).toEqual(ids);
      // Polling is once a second; an event is delivered well before that because the bus wakes the worker.
      const started = Date.now();
      const late = await emit();
      await waitHits(21);
      expect(hits[20]!.id).toBe(late.id);
      expect(Date.now() - started).toBeLessThan(900);
    });

    it('resumes deliveries a crashed process left leased', async () => {
      const h = await service.create(ws, { url: `${url}/b`, events: ['*'] });
      const e = await emit();
      // A process that claimed the delivery and died: its lease would only lapse in an hour.
      expect(await repo.claim('dead-process', 10, Date.now() + 5, 3_600_000)).toHaveLength(1);
      await worker().start();
      await waitHits(1);
      expect(hits[0]!.id).toBe(e.id);
      const [d] = await eventually(
        () => service.listDeliveries(ws, h.webhook_id, { limit: 5 }),
        (l) => l[0]?.status === 'delivered',
      );
      expect(d).toMatchObject({ status: 'delivered', attempts: 1 });
    });

    it('on stop, aborts an attempt in flight without charging it and releases the lease', async () => {
      respond = () => {}; // hang
      const h = await service.create(ws, { url: `${url}/c`, events: ['*'] });
      await emit();
      const w = worker();
      await w.start();
      await waitHits(1);
      const t0 = Date.now();
      await w.stop(200);
      expect(Date.now() - t0).toBeLessThan(3000);
      const [d] = await service.listDeliveries(ws, h.webhook_id, { limit: 5 });
      expect(d).toMatchObject({ status: 'pending', attempts: 0, last_error: null });
      const row = await store.db
        .selectFrom('webhook_deliveries')
        .select(['lease_owner', 'lease_until_ms'])
        .where('id', '=', d!.delivery_id)
        .executeTakeFirst();
      expect(row).toEqual({ lease_owner: null, lease_until_ms: null });
      // The next worker sends it.
      respond = (res) => res.end('ok');
      await worker().start();
      await waitHits(2);
      const [after] = await eventually(
        () => service.listDeliveries(ws, h.webhook_id, { limit: 5 }),
        (l) => l[0]?.status === 'delivered',
      );
      expect(after).toMatchObject({ status: 'delivered', attempts: 1 });
    });

    it('retries a failure after its backoff and records both attempts', async () => {
      let n = 0;
      respond = (res) => {
        res.statusCode = n++ === 0 ? 502 : 200;
        res.end();
      };
      const h = await service.create(ws, { url: `${url}/d`, events: ['*'] });
      await emit();
      await worker().start();
      await waitHits(2);
      const [d] = await eventually(
        () => service.listDeliveries(ws, h.webhook_id, { limit: 5 }),
        (l) => l[0]?.status === 'delivered',
      );
      const detail = await service.retrieveDelivery(ws, h.webhook_id, d!.delivery_id);
      expect(detail.status).toBe('delivered');
      expect(detail.attempt_history.map((a) => [a.status_code, a.error])).toEqual([
        [502, 'Receiver answered HTTP 502'],
        [200, null],
      ]);
    });
  });
});
