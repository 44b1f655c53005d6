/**
 * Every query of the webhooks subsystem. Functions that serve an API call take
 * the workspace id first and filter on it; the delivery worker's functions
 * (claim, record, sweep) work across workspaces, as the outbox is one queue.
 * SQL stays dialect-neutral except the claim, which uses FOR UPDATE SKIP LOCKED
 * on PostgreSQL so nodes of a cluster never claim the same delivery.
 */
import { sql, type CompiledQuery, type ExpressionBuilder, type Generated, type Kysely, type Transaction } from 'kysely';
import { prepared, type Store, type SyncRunner } from '../db/index.js';
import type { Database, WebhookDeliveryTable, WebhookTable } from '../db/schema.js';
import { isoMs } from '../ids.js';
import type { StoredEvent } from '../events/service.js';
import { toEnvelope } from '../events/service.js';

/** Columns added by migration 0002-webhooks (mirrored here until db/schema.ts lists them). */
export interface DeliveryWindowColumns {
  /** Start of the current retry window (null: created_ms); a resend restarts it. */
  window_start_ms: number | null;
  /** Attempts in the current window: the backoff step. */
  window_attempts: Generated<number>;
}

type Tables = Database & { webhook_deliveries: WebhookDeliveryTable & DeliveryWindowColumns };
export type WebhooksDb = Kysely<Tables>;

/** `window_attempts` of a delivery re-sent while an attempt was in flight (see `resend`). */
export const RESEND_AFTER_ATTEMPT = -1;

/**
 * Releasing a lease means the attempt never happened, so a resend asked for during it
 * is already satisfied by the next attempt: drop the marker.
 */
const notResending = sql<number>`case when window_attempts < 0 then 0 else window_attempts end`;

export type WebhookRow = WebhookTable;
export type DeliveryRow = WebhookDeliveryTable & { window_start_ms: number | null; window_attempts: number };

export interface AttemptRow {
  attempted_at: string;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  next_attempt_at: string | null;
}

/** A claimed delivery with everything needed to send it. */
export interface ClaimedDelivery {
  delivery: DeliveryRow;
  webhook: Pick<WebhookRow, 'id' | 'url' | 'secret' | 'enabled'> | null;
  event: StoredEvent | null;
}

export interface AttemptOutcome {
  deliveryId: string;
  webhookId: string;
  workspaceId: string;
  leaseOwner: string;
  attemptedAtMs: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  /** Success, a retry at `nextAttemptMs`, or the final failure. */
  result: { kind: 'delivered' } | { kind: 'retry'; nextAttemptMs: number } | { kind: 'failed' };
  disableAfterFailures: number;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** An enabled endpoint's filter columns, as the outbox reads them. */
export interface OutboxEndpoint {
  id: string;
  events: string;
  namespace: string | null;
  sources: string | null;
}

/** Deliveries per INSERT statement (17 parameters each: within SQLite's and PostgreSQL's limits). */
const DELIVERY_CHUNK = 1000;

/** The workspaces of `events`, each once. */
function workspacesOf(events: readonly StoredEvent[]): Set<string> {
  const out = new Set<string>();
  for (const e of events) out.add(e.workspace_id);
  return out;
}

/** One pending delivery per event and matching endpoint of its workspace, in event order. */
function deliveriesFor(
  events: readonly StoredEvent[],
  endpoints: ReadonlyMap<string, OutboxEndpoint[]>,
  matcher: (w: OutboxEndpoint) => (event: StoredEvent) => boolean,
  newId: () => string,
): WebhookDeliveryTable[] {
  const tests = new Map<string, Array<{ id: string; test: (event: StoredEvent) => boolean }>>();
  for (const [ws, list] of endpoints) {
    const mine = list.map((w) => ({ id: w.id, test: matcher(w) }));
    if (mine.length > 0) tests.set(ws, mine);
  }
  const rows: WebhookDeliveryTable[] = [];
  if (tests.size === 0) return rows;
  for (const event of events) {
    const mine = tests.get(event.workspace_id);
    if (!mine) continue;
    const createdMs = Date.parse(event.created_at);
    for (const w of mine) {
      if (!w.test(event)) continue;
      rows.push({
        id: newId(),
        workspace_id: event.workspace_id,
        webhook_id: w.id,
        event_seq: event.seq,
        event_id: event.id,
        event_type: event.type,
        status: 'pending',
        attempts: 0,
        next_attempt_ms: createdMs,
        lease_owner: null,
        lease_until_ms: null,
        last_status_code: null,
        last_error: null,
        last_attempt_at: null,
        delivered_at: null,
        created_at: event.created_at,
        created_ms: createdMs,
      });
    }
  }
  return rows;
}

function toDeliveryRow(r: Record<string, unknown>): DeliveryRow {
  return {
    ...(r as unknown as DeliveryRow),
    event_seq: Number(r.event_seq),
    attempts: Number(r.attempts),
    next_attempt_ms: Number(r.next_attempt_ms),
    lease_until_ms: num(r.lease_until_ms),
    last_status_code: num(r.last_status_code),
    created_ms: Number(r.created_ms),
    window_start_ms: num(r.window_start_ms),
    window_attempts: Number(r.window_attempts ?? 0),
  };
}

export class WebhookRepo {
  readonly db: WebhooksDb;

  /** Runs inside every event's transaction (the outbox): compiled once (see prepared()). */
  private readonly enabledHooks: (p: [workspaceId: string, enabled: 1]) => CompiledQuery<OutboxEndpoint>;

  constructor(private readonly store: Store) {
    this.db = store.db.withTables<{ webhook_deliveries: DeliveryWindowColumns }>() as unknown as WebhooksDb;
    this.enabledHooks = prepared(
      store.db
        .selectFrom('webhooks')
        .select(['id', 'events', 'namespace', 'sources'])
        .where('workspace_id', '=', '')
        .where('enabled', '=', 1)
        .compile(),
    );
  }

  // ---- endpoints -------------------------------------------------------------

  async insertWebhook(row: WebhookRow): Promise<void> {
    await this.db.insertInto('webhooks').values(row).execute();
  }

  async countWebhooks(workspaceId: string): Promise<number> {
    const r = await this.db
      .selectFrom('webhooks')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('workspace_id', '=', workspaceId)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async listWebhooks(workspaceId: string): Promise<WebhookRow[]> {
    return this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  async getWebhook(workspaceId: string, id: string): Promise<WebhookRow | undefined> {
    return this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  async updateWebhook(workspaceId: string, id: string, patch: Partial<WebhookRow>): Promise<boolean> {
    const res = await this.db
      .updateTable('webhooks')
      .set(patch)
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Deletes the endpoint with its delivery log; an attempt in flight finishes and updates nothing. */
  async deleteWebhook(workspaceId: string, id: string): Promise<boolean> {
    return this.db.transaction().execute(async (t) => {
      const res = await t
        .deleteFrom('webhooks')
        .where('workspace_id', '=', workspaceId)
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) return false;
      await t
        .deleteFrom('webhook_attempts')
        .where('workspace_id', '=', workspaceId)
        .where('delivery_id', 'in', (eb) =>
          eb
            .selectFrom('webhook_deliveries')
            .select('webhook_deliveries.id')
            .where('webhook_deliveries.webhook_id', '=', id),
        )
        .execute();
      await t
        .deleteFrom('webhook_deliveries')
        .where('workspace_id', '=', workspaceId)
        .where('webhook_id', '=', id)
        .execute();
      return true;
    });
  }

  /** Workspaces whose events the worker should wake up for. */
  async workspacesWithWebhooks(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('webhooks')
      .select('workspace_id')
      .where('enabled', '=', 1)
      .distinct()
      .execute();
    return rows.map((r) => r.workspace_id);
  }

  // ---- outbox ----------------------------------------------------------------

  /**
   * Runs inside the events' transaction: one pending delivery per event and enabled, matching endpoint,
   * so a delivery exists exactly when its event does. Each workspace's endpoints are read once for all of
   * its events (a command's thousand changes are one query, not a thousand). Returns the deliveries made.
   */
  async enqueue(
    trx: Transaction<Database>,
    events: readonly StoredEvent[],
    matcher: (w: OutboxEndpoint) => (event: StoredEvent) => boolean,
    newId: () => string,
  ): Promise<number> {
    const endpoints = new Map<string, OutboxEndpoint[]>();
    for (const ws of workspacesOf(events)) {
      endpoints.set(ws, (await trx.executeQuery(this.enabledHooks([ws, 1]))).rows);
    }
    const rows = deliveriesFor(events, endpoints, matcher, newId);
    for (let at = 0; at < rows.length; at += DELIVERY_CHUNK) {
      await trx.executeQuery(this.insertDeliveries(rows.slice(at, at + DELIVERY_CHUNK)));
    }
    return rows.length;
  }

  /** enqueue() inside a synchronous SQLite transaction (SqliteSync). */
  enqueueSync(
    run: SyncRunner,
    events: readonly StoredEvent[],
    matcher: (w: OutboxEndpoint) => (event: StoredEvent) => boolean,
    newId: () => string,
  ): number {
    const endpoints = new Map<string, OutboxEndpoint[]>();
    for (const ws of workspacesOf(events)) endpoints.set(ws, run(this.enabledHooks([ws, 1])));
    const rows = deliveriesFor(events, endpoints, matcher, newId);
    for (let at = 0; at < rows.length; at += DELIVERY_CHUNK) {
      run(this.insertDeliveries(rows.slice(at, at + DELIVERY_CHUNK)));
    }
    return rows.length;
  }

  private insertDeliveries(rows: WebhookDeliveryTable[]) {
    return this.db.insertInto('webhook_deliveries').values(rows).compile();
  }

  // ---- delivery log ----------------------------------------------------------

  async listDeliveries(
    workspaceId: string,
    webhookId: string,
    opts: { limit: number; status?: DeliveryRow['status'] },
  ): Promise<DeliveryRow[]> {
    let q = this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('webhook_id', '=', webhookId);
    if (opts.status) q = q.where('status', '=', opts.status);
    const rows = await q.orderBy('event_seq', 'desc').orderBy('id', 'desc').limit(opts.limit).execute();
    return rows.map((r) => toDeliveryRow(r as Record<string, unknown>));
  }

  async getDelivery(workspaceId: string, webhookId: string, deliveryId: string): Promise<DeliveryRow | undefined> {
    const r = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('webhook_id', '=', webhookId)
      .where('id', '=', deliveryId)
      .executeTakeFirst();
    return r ? toDeliveryRow(r as Record<string, unknown>) : undefined;
  }

  async listAttempts(workspaceId: string, deliveryId: string): Promise<AttemptRow[]> {
    const rows = await this.db
      .selectFrom('webhook_attempts')
      .select(['attempted_at', 'status_code', 'error', 'duration_ms', 'next_attempt_at'])
      .where('workspace_id', '=', workspaceId)
      .where('delivery_id', '=', deliveryId)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ ...r, status_code: num(r.status_code), duration_ms: Number(r.duration_ms) }));
  }

  /**
   * Makes a delivery due now with a fresh retry window, whatever its state, in
   * one UPDATE (a read-then-write could miss a state change between the two).
   * A finished delivery becomes pending; a pending one skips its backoff wait.
   * One with an attempt in flight keeps its lease and is marked
   * (`window_attempts = -1`), so that attempt's outcome leaves it pending and
   * due instead of finishing it: the receiver gets the event once more after
   * the attempt that was already on its way. Returns false when it does not exist.
   */
  async resend(workspaceId: string, webhookId: string, deliveryId: string, nowMs: number): Promise<boolean> {
    const inFlight = sql<boolean>`status = 'pending' and lease_owner is not null and lease_until_ms >= ${nowMs}`;
    const res = await this.db
      .updateTable('webhook_deliveries')
      .set({
        status: 'pending',
        next_attempt_ms: nowMs,
        window_start_ms: nowMs,
        window_attempts: sql<number>`case when ${inFlight} then ${sql.lit(RESEND_AFTER_ATTEMPT)} else 0 end`,
        lease_owner: sql<string | null>`case when ${inFlight} then lease_owner else null end`,
        lease_until_ms: sql<number | null>`case when ${inFlight} then lease_until_ms else null end`,
        delivered_at: null,
      })
      .where('workspace_id', '=', workspaceId)
      .where('webhook_id', '=', webhookId)
      .where('id', '=', deliveryId)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** The synchronous `test` delivery: its row and attempt are written finished. */
  async insertFinishedDelivery(input: {
    row: Omit<DeliveryRow, 'window_start_ms' | 'window_attempts'>;
    attempt: AttemptRow;
  }): Promise<void> {
    await this.db.transaction().execute(async (t) => {
      await t
        .insertInto('webhook_deliveries')
        .values({ ...input.row, window_start_ms: null, window_attempts: 1 })
        .execute();
      await t
        .insertInto('webhook_attempts')
        .values({ delivery_id: input.row.id, workspace_id: input.row.workspace_id, ...input.attempt })
        .execute();
      await t
        .updateTable('webhooks')
        .set({
          last_delivery_ok: input.row.status === 'delivered' ? 1 : 0,
          last_delivery_at: input.attempt.attempted_at,
          last_delivery_status: input.attempt.status_code,
        })
        .where('workspace_id', '=', input.row.workspace_id)
        .where('id', '=', input.row.webhook_id)
        .execute();
    });
  }

  // ---- worker ----------------------------------------------------------------

  /**
   * Leases up to `limit` due deliveries, each the oldest pending delivery of its
   * endpoint (so an endpoint has at most one attempt in flight, cluster-wide,
   * and receives events in order). An expired lease (a node died mid-attempt)
   * is claimable again.
   */
  async claim(owner: string, limit: number, nowMs: number, leaseMs: number): Promise<string[]> {
    const lease = { lease_owner: owner, lease_until_ms: nowMs + leaseMs };
    // Both forms walk the endpoints and look up each one's head with one index seek,
    // rather than scanning every due delivery: a backlog behind a retrying head is free.
    const head = (eb: ExpressionBuilder<Tables & { w: WebhookTable }, 'w'>) =>
      eb
        .selectFrom('webhook_deliveries as h')
        .select('h.id')
        .whereRef('h.webhook_id', '=', 'w.id')
        .where('h.status', '=', 'pending')
        .orderBy('h.event_seq')
        .orderBy('h.id')
        .limit(1);
    // The head is claimable when its endpoint is enabled, it is due, and nobody holds a live lease on it.
    const due = (eb: ExpressionBuilder<Tables & { w: WebhookTable; d: WebhookDeliveryTable }, 'w' | 'd'>) =>
      eb.and([
        eb('w.enabled', '=', 1),
        eb('d.status', '=', 'pending'),
        eb('d.next_attempt_ms', '<=', nowMs),
        eb.or([eb('d.lease_until_ms', 'is', null), eb('d.lease_until_ms', '<', nowMs)]),
      ]);

    if (this.store.dialect === 'postgres') {
      return this.db.transaction().execute(async (t) => {
        const rows = await t
          .selectFrom('webhooks as w')
          .innerJoinLateral(
            (eb) => head(eb as never).as('head'),
            (join) => join.onTrue(),
          )
          .innerJoin('webhook_deliveries as d', 'd.id', 'head.id')
          .select('d.id')
          .where((eb) => due(eb as never))
          .orderBy('d.next_attempt_ms')
          .limit(limit)
          // SKIP LOCKED: rows another node is claiming right now are skipped, not waited on;
          // the status and lease conditions are re-checked on the locked row's latest version.
          .forUpdate(['d'])
          .skipLocked()
          .execute();
        if (rows.length === 0) return [];
        const ids = rows.map((r) => r.id);
        const updated = await t
          .updateTable('webhook_deliveries')
          .set(lease)
          .where('id', 'in', ids)
          .returning('id')
          .execute();
        return updated.map((r) => r.id);
      });
    }
    // SQLite has one writer at a time, so a single UPDATE … WHERE id IN (…) is atomic.
    // It has no LATERAL; CROSS JOIN is how SQLite is told to keep `webhooks` the outer loop.
    const claimable = this.db
      .selectFrom('webhooks as w')
      .crossJoin('webhook_deliveries as d')
      .where((eb) => eb('d.id', '=', head(eb as never)))
      .select('d.id')
      .where((eb) => due(eb as never))
      .orderBy('d.next_attempt_ms')
      .limit(limit);
    const updated = await this.db
      .updateTable('webhook_deliveries')
      .set(lease)
      .where('id', 'in', claimable as never)
      .returning('id')
      .execute();
    return updated.map((r) => r.id);
  }

  async loadClaimed(ids: string[]): Promise<ClaimedDelivery[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .selectFrom('webhook_deliveries as d')
      .leftJoin('webhooks as w', 'w.id', 'd.webhook_id')
      .leftJoin('events as e', 'e.seq', 'd.event_seq')
      .selectAll('d')
      .select([
        'w.id as w_id',
        'w.url as w_url',
        'w.secret as w_secret',
        'w.enabled as w_enabled',
        'e.seq as e_seq',
        'e.id as e_id',
        'e.type as e_type',
        'e.workspace_id as e_workspace_id',
        'e.namespace as e_namespace',
        'e.created_at as e_created_at',
        'e.data as e_data',
      ])
      .where('d.id', 'in', ids)
      .execute();
    return rows.map((r) => ({
      delivery: toDeliveryRow(r as unknown as Record<string, unknown>),
      webhook: r.w_id ? { id: r.w_id, url: r.w_url!, secret: r.w_secret!, enabled: Number(r.w_enabled) } : null,
      event:
        r.e_id && r.e_workspace_id === r.workspace_id
          ? toEnvelope({
              seq: r.e_seq!,
              id: r.e_id,
              type: r.e_type!,
              workspace_id: r.e_workspace_id!,
              namespace: r.e_namespace ?? null,
              created_at: r.e_created_at!,
              data: r.e_data!,
            })
          : null,
    }));
  }

  /** Records one attempt and its consequences (delivery state, endpoint health) atomically. */
  async recordAttempt(o: AttemptOutcome): Promise<{ disabledNow: boolean; failedForGood: boolean }> {
    const attemptedAt = isoMs(o.attemptedAtMs);
    return this.db.transaction().execute(async (t) => {
      await t
        .insertInto('webhook_attempts')
        .values({
          delivery_id: o.deliveryId,
          workspace_id: o.workspaceId,
          attempted_at: attemptedAt,
          status_code: o.statusCode,
          error: o.error,
          duration_ms: o.durationMs,
          next_attempt_at: o.result.kind === 'retry' ? isoMs(o.result.nextAttemptMs) : null,
        })
        .execute();
      // A resend asked for while this attempt was in flight (see resend) turns any outcome
      // into "pending, due now", so the event goes out once more.
      const again = sql<boolean>`window_attempts = ${sql.lit(RESEND_AFTER_ATTEMPT)}`;
      const nowMs = Date.now();
      const common = {
        attempts: sql<number>`attempts + 1`,
        window_attempts: sql<number>`case when ${again} then 0 else window_attempts + 1 end`,
        last_status_code: o.statusCode,
        last_error: o.error,
        last_attempt_at: attemptedAt,
        lease_owner: null,
        lease_until_ms: null,
      };
      const finalStatus = (done: 'delivered' | 'failed') =>
        sql<'pending' | 'delivered' | 'failed'>`case when ${again} then 'pending' else ${done} end`;
      // Casts: PostgreSQL would type a CASE of bare parameters as text.
      const dueNowOr = (ms: number | null) =>
        sql<number>`case when ${again} then cast(${nowMs} as bigint) else ${ms === null ? sql.ref('next_attempt_ms') : sql`cast(${ms} as bigint)`} end`;
      let update = t.updateTable('webhook_deliveries').where('id', '=', o.deliveryId).where('status', '=', 'pending');
      let changed: { status: string } | undefined;
      if (o.result.kind === 'delivered') {
        // A success counts even if our lease lapsed meanwhile: the receiver has the event.
        changed = await update
          .set({
            ...common,
            status: finalStatus('delivered'),
            delivered_at: sql<string | null>`case when ${again} then null else ${attemptedAt} end`,
            next_attempt_ms: dueNowOr(null),
          })
          .returning('status')
          .executeTakeFirst();
      } else {
        // A failure only moves the delivery on while we still hold it, so a node that
        // took over an expired lease is not overruled.
        update = update.where('lease_owner', '=', o.leaseOwner);
        changed = await (
          o.result.kind === 'retry'
            ? update.set({ ...common, next_attempt_ms: dueNowOr(o.result.nextAttemptMs) })
            : update.set({ ...common, status: finalStatus('failed'), next_attempt_ms: dueNowOr(null) })
        )
          .returning('status')
          .executeTakeFirst();
      }
      const health = {
        last_delivery_ok: o.result.kind === 'delivered' ? 1 : 0,
        last_delivery_at: attemptedAt,
        last_delivery_status: o.statusCode,
      };
      const hook = t.updateTable('webhooks').where('workspace_id', '=', o.workspaceId).where('id', '=', o.webhookId);
      if (o.result.kind === 'delivered') {
        await hook.set({ ...health, consecutive_failures: 0 }).execute();
        return { disabledNow: false, failedForGood: false };
      }
      if (o.result.kind === 'retry' || changed?.status !== 'failed') {
        // Still pending (a retry, or a resend asked for meanwhile), or not ours to record.
        await hook.set(health).execute();
        return { disabledNow: false, failedForGood: false };
      }
      // The streak counts deliveries that gave up; one UPDATE keeps it exact when nodes race.
      const limit = o.disableAfterFailures;
      const reason = `Disabled automatically after ${limit} consecutive failed deliveries (last error: ${(o.error ?? 'unknown').slice(0, 300)}); re-enable with PATCH {"enabled": true}`;
      const row = await hook
        .set({
          ...health,
          consecutive_failures: sql<number>`consecutive_failures + 1`,
          ...(limit > 0
            ? {
                enabled: sql<number>`case when consecutive_failures + 1 >= ${limit} then 0 else enabled end`,
                disabled_reason: sql<
                  string | null
                >`case when consecutive_failures + 1 >= ${limit} and enabled = 1 then ${reason} else disabled_reason end`,
              }
            : {}),
        })
        .returning(['consecutive_failures'])
        .executeTakeFirst();
      return { disabledNow: limit > 0 && Number(row?.consecutive_failures ?? 0) === limit, failedForGood: true };
    });
  }

  /** Gives up leases (shutdown, or a delivery that could not be attempted). */
  async releaseLeases(owner: string, ids?: string[]): Promise<void> {
    let q = this.db
      .updateTable('webhook_deliveries')
      .set({ lease_owner: null, lease_until_ms: null, window_attempts: notResending })
      .where('lease_owner', '=', owner)
      .where('status', '=', 'pending');
    if (ids) {
      if (ids.length === 0) return;
      q = q.where('id', 'in', ids);
    }
    await q.execute();
  }

  /**
   * SQLite serves one node, so at start-up every lease belongs to a process that
   * is gone (a crash or kill -9): release them instead of waiting for expiry.
   */
  async releaseOrphanedLeases(): Promise<number> {
    const res = await this.db
      .updateTable('webhook_deliveries')
      .set({ lease_owner: null, lease_until_ms: null, window_attempts: notResending })
      .where('status', '=', 'pending')
      .where('lease_owner', 'is not', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /** Marks a delivery failed without an attempt (its endpoint or event is gone). */
  async abandon(deliveryId: string, error: string): Promise<void> {
    await this.db
      .updateTable('webhook_deliveries')
      .set({ status: 'failed', last_error: error, lease_owner: null, lease_until_ms: null })
      .where('id', '=', deliveryId)
      .where('status', '=', 'pending')
      .execute();
  }

  /** The earliest future retry time, so the worker sleeps exactly until then. */
  async nextRetryMs(nowMs: number): Promise<number | null> {
    const r = await this.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('next_attempt_ms').as('m'))
      .where('status', '=', 'pending')
      .where('next_attempt_ms', '>', nowMs)
      .executeTakeFirst();
    return num(r?.m);
  }

  /** Deletes finished deliveries (and their attempts) created before `beforeMs`, a batch at a time. */
  async sweepFinished(beforeMs: number, batch: number): Promise<number> {
    return this.db.transaction().execute(async (t) => {
      const rows = await t
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('status', 'in', ['delivered', 'failed'])
        .where('created_ms', '<', beforeMs)
        .limit(batch)
        .execute();
      if (rows.length === 0) return 0;
      const ids = rows.map((r) => r.id);
      await t.deleteFrom('webhook_attempts').where('delivery_id', 'in', ids).execute();
      await t.deleteFrom('webhook_deliveries').where('id', 'in', ids).execute();
      return ids.length;
    });
  }
}
