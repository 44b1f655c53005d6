/**
 * The outbox and the claim query against a real database: SQLite always, and
 * PostgreSQL too in the PostgreSQL pass (TROVE_TEST_PG=1: a fresh database from
 * createTestDatabase, dropped afterwards). On PostgreSQL two stores (two pools)
 * stand in for two nodes; SQLite serves one node, so its two "nodes" are two
 * claimers sharing the process's connection (two connections in one thread
 * would just deadlock).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, usePg } from '../../../../test/helpers/server.js';
import { loadConfig } from '../../src/config.js';
import { openStore, type Store } from '../../src/db/index.js';
import { LocalEventBus } from '../../src/events/bus.js';
import { EventService } from '../../src/events/service.js';
import { nowIso } from '../../src/ids.js';
import { DeliverySender } from '../../src/webhooks/deliver.js';
import { WebhookRepo } from '../../src/webhooks/repository.js';
import { SecretBox } from '../../src/webhooks/secret-box.js';
import { WebhookService } from '../../src/webhooks/service.js';

const dialects = ['sqlite', ...(usePg ? ['postgres'] : [])] as const;

interface Node {
  store: Store;
  repo: WebhookRepo;
  events: EventService;
  service: WebhookService;
  sender: DeliverySender;
}

describe.each(dialects)('webhook outbox on %s', (dialect) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'trove-outbox-'));
  let databaseUrl: string | null = null;
  let dropDb: (() => Promise<void>) | null = null;
  const nodes: Node[] = [];
  let a: Node;
  let b: Node;
  const ws = 'ws-' + randomBytes(8).toString('hex');
  const config = loadConfig({ TROVE_DATA_DIR: dataDir, TROVE_WEBHOOK_ALLOW_PRIVATE: '1' });

  async function node(): Promise<Node> {
    const store = dialect === 'sqlite' && nodes[0] ? nodes[0].store : await openStore({ dataDir, databaseUrl });
    const events = new EventService(store.db, new LocalEventBus(), store.sqliteSync);
    const repo = new WebhookRepo(store);
    const sender = new DeliverySender({ allowPrivate: true, timeoutMs: 1000 });
    const service = new WebhookService({
      repo,
      secrets: await SecretBox.open(dataDir),
      sender,
      events,
      config,
      version: 'test',
      onWork: () => {},
    });
    events.onAppend(service.outboxHook, service.outboxHookSync);
    const n = { store, repo, events, service, sender };
    nodes.push(n);
    return n;
  }

  beforeAll(async () => {
    if (dialect === 'postgres') {
      const db = await createTestDatabase();
      databaseUrl = db.url;
      dropDb = db.drop;
    }
    a = await node();
    b = await node();
    await a.store.db
      .insertInto('workspaces')
      .values({ id: ws, name: 't', created_at: nowIso(), last_event_ms: 0 })
      .execute();
  });

  afterAll(async () => {
    for (const n of nodes) await n.sender.close();
    for (const store of new Set(nodes.map((n) => n.store))) await store.close();
    await dropDb?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const hook = (events: string[], namespace: string | null = null) =>
    a.service.create(ws, { url: 'http://127.0.0.1:9/hook', events, namespace });
  const emit = (type: string, namespace: string | null = null, n: Node = a) =>
    n.events.emit({ workspaceId: ws, namespace, type, data: {} });
  const deliveriesOf = async (webhookId: string) =>
    a.store.db
      .selectFrom('webhook_deliveries')
      .select(['id', 'event_id', 'event_seq', 'status'])
      .where('webhook_id', '=', webhookId)
      .orderBy('event_seq')
      .execute();
  const clear = async () => {
    for (const w of await a.service.list(ws)) await a.service.delete(ws, w.webhook_id);
  };
  const ok = (o: { id: string; webhookId: string; owner: string; at?: number }) =>
    a.repo.recordAttempt({
      deliveryId: o.id,
      webhookId: o.webhookId,
      workspaceId: ws,
      leaseOwner: o.owner,
      attemptedAtMs: o.at ?? Date.now(),
      statusCode: 200,
      error: null,
      durationMs: 1,
      result: { kind: 'delivered' },
      disableAfterFailures: 50,
    });

  it('writes deliveries in the event transaction: a rolled-back event leaves none', async () => {
    await clear();
    const w = await hook(['*']);
    await expect(
      a.store.db.transaction().execute(async (t) => {
        await a.events.emit({ workspaceId: ws, namespace: null, type: 'key.created', data: {} }, t);
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    expect(await deliveriesOf(w.webhook_id)).toHaveLength(0);
    const e = await emit('key.created');
    expect((await deliveriesOf(w.webhook_id)).map((d) => d.event_id)).toEqual([e.id]);
  });

  it('queues one delivery per matching enabled endpoint, by type and namespace', async () => {
    await clear();
    const all = await hook(['*']);
    const filesA = await hook(['file.written'], 'a');
    const keys = await hook(['key.created', 'key.revoked']);
    const off = await hook(['*']);
    await a.service.update(ws, off.webhook_id, { enabled: false });
    const e1 = await emit('file.written', 'a');
    const e2 = await emit('file.written', 'b');
    const e3 = await emit('key.created');
    const e4 = await emit('snapshot.some_future_type', 'a');
    await emit('webhook.test', 'a');
    const ids = async (w: { webhook_id: string }) => (await deliveriesOf(w.webhook_id)).map((d) => d.event_id);
    expect(await ids(all)).toEqual([e1.id, e2.id, e3.id, e4.id]);
    expect(await ids(filesA)).toEqual([e1.id]);
    expect(await ids(keys)).toEqual([e3.id]);
    expect(await ids(off)).toEqual([]);
  });

  it('claims only the oldest pending delivery of each endpoint, once', async () => {
    await clear();
    const w1 = await hook(['*']);
    const w2 = await hook(['*']);
    await emit('key.created');
    await emit('key.revoked');
    await emit('key.created');
    const d1 = await deliveriesOf(w1.webhook_id);
    const d2 = await deliveriesOf(w2.webhook_id);
    const now = Date.now() + 10;
    const first = await a.repo.claim('node-a', 10, now, 60_000);
    expect(first.sort()).toEqual([d1[0]!.id, d2[0]!.id].sort());
    // The heads are leased, so nothing else of these endpoints is due.
    expect(await b.repo.claim('node-b', 10, now, 60_000)).toEqual([]);
    await ok({ id: d1[0]!.id, webhookId: w1.webhook_id, owner: 'node-a' });
    expect(await b.repo.claim('node-b', 10, now, 60_000)).toEqual([d1[1]!.id]);
  });

  it('lets another node take over an expired lease (a crashed node)', async () => {
    await clear();
    const w = await hook(['*']);
    await emit('key.created');
    const [d] = await deliveriesOf(w.webhook_id);
    const t0 = Date.now() + 10;
    expect(await a.repo.claim('dead-node', 5, t0, 1000)).toEqual([d!.id]);
    expect(await b.repo.claim('node-b', 5, t0 + 999, 1000)).toEqual([]);
    expect(await b.repo.claim('node-b', 5, t0 + 1001, 1000)).toEqual([d!.id]);
    const row = await a.store.db
      .selectFrom('webhook_deliveries')
      .select('lease_owner')
      .where('id', '=', d!.id)
      .executeTakeFirst();
    expect(row?.lease_owner).toBe('node-b');
  });

  it('waits for the retry time, keeps later events behind it, and skips disabled endpoints', async () => {
    await clear();
    const w = await hook(['*']);
    await emit('key.created');
    await emit('key.revoked');
    const [d1, d2] = await deliveriesOf(w.webhook_id);
    const t0 = Date.now() + 10;
    expect(await a.repo.claim('n', 5, t0, 60_000)).toEqual([d1!.id]);
    await a.repo.recordAttempt({
      deliveryId: d1!.id,
      webhookId: w.webhook_id,
      workspaceId: ws,
      leaseOwner: 'n',
      attemptedAtMs: t0,
      statusCode: 500,
      error: 'Receiver answered HTTP 500',
      durationMs: 3,
      result: { kind: 'retry', nextAttemptMs: t0 + 5000 },
      disableAfterFailures: 50,
    });
    expect(await a.repo.claim('n', 5, t0 + 4999, 60_000)).toEqual([]);
    expect(await a.repo.nextRetryMs(t0)).toBe(t0 + 5000);
    await a.service.update(ws, w.webhook_id, { enabled: false });
    expect(await a.repo.claim('n', 5, t0 + 5001, 60_000)).toEqual([]);
    await a.service.update(ws, w.webhook_id, { enabled: true });
    expect(await a.repo.claim('n', 5, t0 + 5001, 60_000)).toEqual([d1!.id]);
    const detail = await a.service.retrieveDelivery(ws, w.webhook_id, d1!.id);
    expect(detail.attempts).toBe(1);
    expect(detail.attempt_history).toEqual([
      {
        attempted_at: new Date(t0).toISOString(),
        status_code: 500,
        error: 'Receiver answered HTTP 500',
        duration_ms: 3,
        next_attempt_at: new Date(t0 + 5000).toISOString(),
      },
    ]);
    void d2;
  });

  it('disables an endpoint after N deliveries in a row failed for good; success resets the streak', async () => {
    await clear();
    const w = await hook(['*']);
    for (let i = 0; i < 4; i++) await emit('key.created');
    const ds = await deliveriesOf(w.webhook_id);
    const fail = (id: string) =>
      a.repo.recordAttempt({
        deliveryId: id,
        webhookId: w.webhook_id,
        workspaceId: ws,
        leaseOwner: 'n',
        attemptedAtMs: Date.now(),
        statusCode: null,
        error: 'Connection refused (ECONNREFUSED)',
        durationMs: 1,
        result: { kind: 'failed' },
        disableAfterFailures: 2,
      });
    const claimOne = async () => (await a.repo.claim('n', 1, Date.now() + 10, 60_000))[0]!;
    expect(await claimOne()).toBe(ds[0]!.id);
    expect(await fail(ds[0]!.id)).toEqual({ disabledNow: false, failedForGood: true });
    expect(await claimOne()).toBe(ds[1]!.id);
    await ok({ id: ds[1]!.id, webhookId: w.webhook_id, owner: 'n' });
    expect((await a.service.retrieve(ws, w.webhook_id)).consecutive_failures).toBe(0);
    expect(await claimOne()).toBe(ds[2]!.id);
    expect(await fail(ds[2]!.id)).toEqual({ disabledNow: false, failedForGood: true });
    expect(await claimOne()).toBe(ds[3]!.id);
    expect(await fail(ds[3]!.id)).toEqual({ disabledNow: true, failedForGood: true });
    const view = await a.service.retrieve(ws, w.webhook_id);
    expect(view).toMatchObject({
      enabled: false,
      consecutive_failures: 2,
      last_delivery_ok: false,
      last_delivery_status: null,
    });
    expect(view.disabled_reason).toBe(
      'Disabled automatically after 2 consecutive failed deliveries (last error: Connection refused (ECONNREFUSED)); re-enable with PATCH {"enabled": true}',
    );
    const back = await a.service.update(ws, w.webhook_id, { enabled: true });
    expect(back).toMatchObject({ enabled: true, consecutive_failures: 0, disabled_reason: null });
  });

  it('two nodes claiming at once never share a delivery and keep each endpoint in order', async () => {
    await clear();
    const hooks = [];
    for (let i = 0; i < 12; i++) hooks.push(await hook(['*']));
    for (let i = 0; i < 6; i++) await emit(i % 2 ? 'key.created' : 'key.revoked', null, i % 2 ? a : b);
    const total = hooks.length * 6;
    const claimedBy = new Map<string, string>();
    const order = new Map<string, number[]>();
    const seqOf = new Map<string, { seq: number; webhook: string }>();
    for (const h of hooks)
      for (const d of await deliveriesOf(h.webhook_id))
        seqOf.set(d.id, { seq: Number(d.event_seq), webhook: h.webhook_id });
    const run = async (n: Node, owner: string) => {
      for (let round = 0; round < 200 && claimedBy.size < total; round++) {
        const ids = await n.repo.claim(owner, 5, Date.now() + 10, 60_000);
        for (const id of ids) {
          expect(claimedBy.has(id), `${id} claimed twice`).toBe(false);
          claimedBy.set(id, owner);
          const s = seqOf.get(id)!;
          order.set(s.webhook, [...(order.get(s.webhook) ?? []), s.seq]);
        }
        await Promise.all(
          ids.map((id) =>
            n.repo.recordAttempt({
              deliveryId: id,
              webhookId: seqOf.get(id)!.webhook,
              workspaceId: ws,
              leaseOwner: owner,
              attemptedAtMs: Date.now(),
              statusCode: 200,
              error: null,
              durationMs: 1,
              result: { kind: 'delivered' },
              disableAfterFailures: 50,
            }),
          ),
        );
      }
    };
    await Promise.all([run(a, 'node-a'), run(b, 'node-b')]);
    expect(claimedBy.size).toBe(total);
    for (const seqs of order.values()) expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    const statuses = await a.store.db
      .selectFrom('webhook_deliveries')
      .select('status')
      .where('workspace_id', '=', ws)
      .where('status', '!=', 'delivered')
      .execute();
    expect(statuses).toEqual([]);
  });

  it('resend reopens a finished delivery with a fresh retry window, ahead of newer ones', async () => {
    await clear();
    const w = await hook(['*']);
    await emit('key.created');
    await emit('key.revoked');
    const [d1, d2] = await deliveriesOf(w.webhook_id);
    expect(await a.repo.claim('n', 5, Date.now() + 10, 60_000)).toEqual([d1!.id]);
    await ok({ id: d1!.id, webhookId: w.webhook_id, owner: 'n' });
    const resent = await a.service.resend(ws, w.webhook_id, d1!.id);
    expect(resent).toMatchObject({ delivery_id: d1!.id, status: 'pending', attempts: 1, delivered_at: null });
    expect(await a.repo.claim('n', 5, Date.now() + 10, 60_000)).toEqual([d1!.id]);
    const row = await a.repo.getDelivery(ws, w.webhook_id, d1!.id);
    expect(row?.window_attempts).toBe(0);
    expect(row?.window_start_ms).toBeGreaterThan(0);
    void d2;
  });
  it('resend during an attempt in flight sends once more after it, whatever its outcome', async () => {
    await clear();
    const w = await hook(['*']);
    await emit('key.created');
    await emit('key.revoked');
    const [d1, d2] = await deliveriesOf(w.webhook_id);
    const fail = (id: string, kind: 'retry' | 'failed') =>
      a.repo.recordAttempt({
        deliveryId: id,
        webhookId: w.webhook_id,
        workspaceId: ws,
        leaseOwner: 'n',
        attemptedAtMs: Date.now(),
        statusCode: 500,
        error: 'Receiver answered HTTP 500',
        durationMs: 1,
        result: kind === 'retry' ? { kind, nextAttemptMs: Date.now() + 3_600_000 } : { kind },
        disableAfterFailures: 1,
      });
    const due = () => Date.now() + 10;

    // Success in flight: stays pending and due, ahead of d2, and the next success finishes it.
    expect(await a.repo.claim('n', 5, due(), 60_000)).toEqual([d1!.id]);
    expect(await a.service.resend(ws, w.webhook_id, d1!.id)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await ok({ id: d1!.id, webhookId: w.webhook_id, owner: 'n' })).toEqual({
      disabledNow: false,
      failedForGood: false,
    });
    expect(await a.repo.getDelivery(ws, w.webhook_id, d1!.id)).toMatchObject({
      status: 'pending',
      attempts: 1,
      delivered_at: null,
      window_attempts: 0,
    });
    expect(await a.repo.claim('n', 5, due(), 60_000)).toEqual([d1!.id]);
    await ok({ id: d1!.id, webhookId: w.webhook_id, owner: 'n' });
    expect(await a.repo.getDelivery(ws, w.webhook_id, d1!.id)).toMatchObject({ status: 'delivered', attempts: 2 });

    // A retry planned an hour out, and a final failure: both become "due now" instead,
    // and the final one neither counts towards auto-disable (limit 1 here) nor fails.
    expect(await a.repo.claim('n', 5, due(), 60_000)).toEqual([d2!.id]);
    await a.service.resend(ws, w.webhook_id, d2!.id);
    await fail(d2!.id, 'retry');
    expect(await a.repo.claim('n', 5, due(), 60_000)).toEqual([d2!.id]);
    await a.service.resend(ws, w.webhook_id, d2!.id);
    expect(await fail(d2!.id, 'failed')).toEqual({ disabledNow: false, failedForGood: false });
    expect(await a.service.retrieve(ws, w.webhook_id)).toMatchObject({ enabled: true, consecutive_failures: 0 });
    expect(await a.repo.getDelivery(ws, w.webhook_id, d2!.id)).toMatchObject({ status: 'pending', attempts: 2 });
    expect(await a.repo.claim('n', 5, due(), 60_000)).toEqual([d2!.id]);
    // Without a resend, a final failure is final and counts.
    expect(await fail(d2!.id, 'failed')).toEqual({ disabledNow: true, failedForGood: true });
  });

  it('a resend during an attempt that is then released (shutdown) is satisfied by the next attempt', async () => {
    await clear();
    const w = await hook(['*']);
    await emit('key.created');
    const [d] = await deliveriesOf(w.webhook_id);
    expect(await a.repo.claim('n', 5, Date.now() + 10, 60_000)).toEqual([d!.id]);
    await a.service.resend(ws, w.webhook_id, d!.id);
    await a.repo.releaseLeases('n');
    expect(await a.repo.claim('n', 5, Date.now() + 10, 60_000)).toEqual([d!.id]);
    await ok({ id: d!.id, webhookId: w.webhook_id, owner: 'n' });
    expect(await a.repo.getDelivery(ws, w.webhook_id, d!.id)).toMatchObject({ status: 'delivered', attempts: 1 });
  });
});
