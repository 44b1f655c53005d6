/**
 * The append-only event log. Every mutation appends here; `emit` runs the
 * registered in-transaction hooks (the webhook outbox) in the same transaction
 * as the event row, then wakes live waiters after commit.
 */
import { sql, type CompiledQuery, type Transaction } from 'kysely';
import type { Database, EventTable } from '../db/schema.js';
import { prepared, type Db, type SqliteSync, type SyncRunner } from '../db/index.js';
import type { EventBus } from './bus.js';
import { AppError } from '../errors.js';
import { isoMs, newEventId } from '../ids.js';
import { boundEventData, withinBound } from './data-size.js';

export const API_VERSION = '2026-04-30';

export interface EventEnvelope {
  id: string;
  event_id: string;
  type: string;
  api_version: string;
  workspace_id: string;
  namespace: string | null;
  created_at: string;
  data: Record<string, unknown>;
}

export interface StoredEvent extends EventEnvelope {
  seq: number;
}

export interface EmitInput {
  workspaceId: string;
  namespace: string | null;
  type: string;
  data: Record<string, unknown>;
}

export type AppendHook = (trx: Transaction<Database>, event: StoredEvent) => Promise<void>;
/** The same hook for SqliteSync's synchronous transaction (SQLite only). */
export type SyncAppendHook = (run: SyncRunner, event: StoredEvent) => void;

export interface EventQuery {
  namespace?: string | null;
  types?: string[];
  /** Exclusive lower bound, microseconds since the epoch. */
  sinceMicros?: number;
  cursor?: string;
  limit: number;
}

export function encodeCursor(seq: number): string {
  return Buffer.from(`s:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const m = /^s:(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new AppError('query_invalid', 'Invalid cursor: pass next_cursor from a previous page unchanged');
  return Number(m[1]);
}

export function toEnvelope(row: {
  seq: number;
  id: string;
  type: string;
  workspace_id: string;
  namespace: string | null;
  created_at: string;
  data: string;
}): StoredEvent {
  return {
    seq: row.seq,
    id: row.id,
    event_id: row.id,
    type: row.type,
    api_version: API_VERSION,
    workspace_id: row.workspace_id,
    namespace: row.namespace,
    created_at: row.created_at,
    data: parseData(row.data),
  };
}

/** Stored data; a row from before the size bound (data-size.ts) is cut on the way out, as a new one is on the way in. */
function parseData(json: string): Record<string, unknown> {
  const data = JSON.parse(json) as Record<string, unknown>;
  return withinBound(json) ? data : (JSON.parse(boundEventData(data)) as Record<string, unknown>);
}

export function publicEnvelope(e: StoredEvent): EventEnvelope {
  const { seq: _seq, ...rest } = e;
  return rest;
}

/** An events row before the database numbers it. */
type EventRow = Omit<EventTable, 'seq'>;

/** Parameters of the prepared insert, in the column order of `columns` in the constructor. */
function insertParams(r: EventRow): [string, string, string | null, string, string, number, string] {
  return [r.id, r.workspace_id, r.namespace, r.type, r.created_at, r.created_ms, r.data];
}

export class EventService {
  private readonly hooks: AppendHook[] = [];
  /** Synchronous forms of `hooks` (same order); the synchronous append is used only when every hook has one. */
  private readonly syncHooks: SyncAppendHook[] = [];
  /** Extra work to run inside the event transaction for PostgreSQL (NOTIFY). */
  afterInsertSql: ((trx: Transaction<Database>, event: StoredEvent) => Promise<void>) | null = null;

  /** Every mutation appends: these two statements are compiled once (see prepared()). */
  private readonly bump: (p: [now: number, now2: number, workspaceId: string]) => CompiledQuery<{ last_event_ms: number }>;
  private readonly insert: (
    p: [id: string, workspaceId: string, namespace: string | null, type: string, createdAt: string, createdMs: number, data: string],
  ) => CompiledQuery<{ seq: number }>;

  constructor(
    private readonly db: Db,
    readonly bus: EventBus,
    /** SQLite: append without Kysely's per-statement overhead (Store.sqliteSync). */
    private readonly sync: SqliteSync | null = null,
  ) {
    this.bump = prepared(
      db
        .updateTable('workspaces')
        .set({ last_event_ms: sql<number>`case when last_event_ms + 1 > ${0} then last_event_ms + 1 else ${0} end` })
        .where('id', '=', '')
        .returning('last_event_ms')
        .compile(),
    );
    const columns = { id: '', workspace_id: '', namespace: null, type: '', created_at: '', created_ms: 0, data: '' };
    this.insert = prepared(db.insertInto('events').values(columns).returning('seq').compile());
  }

  private readonly closing = new AbortController();

  /** Aborted when the server shuts down: long-polls answer at once instead of holding the shutdown up. */
  get closingSignal(): AbortSignal {
    return this.closing.signal;
  }

  /** Ends every long-poll wait (they return what they have, usually an empty page). */
  endWaits(): void {
    this.closing.abort();
  }

  /** A hook runs inside every event's transaction; give `syncHook` too, or SQLite falls back to Kysely for appends. */
  onAppend(hook: AppendHook, syncHook?: SyncAppendHook): void {
    this.hooks.push(hook);
    if (syncHook) this.syncHooks.push(syncHook);
  }

  /** Appends inside `trx` (when given) or its own transaction; wakes waiters after commit. */
  async emit(input: EmitInput, trx?: Transaction<Database>): Promise<StoredEvent> {
    if (!trx && this.sync && this.syncHooks.length === this.hooks.length && !this.afterInsertSql) {
      const event = await this.sync.transaction((run) => {
        const bumped = run(this.bump(this.bumpParams(input)))[0];
        const row = this.row(input, bumped);
        const event = toEnvelope({ ...row, seq: Number(run(this.insert(insertParams(row)))[0]!.seq) });
        for (const hook of this.syncHooks) hook(run, event);
        return event;
      });
      this.bus.publish(input.workspaceId);
      return event;
    }
    const append = async (t: Transaction<Database>) => {
      const bumped = (await t.executeQuery(this.bump(this.bumpParams(input)))).rows[0];
      const row = this.row(input, bumped);
      const event = toEnvelope({ ...row, seq: Number((await t.executeQuery(this.insert(insertParams(row)))).rows[0]!.seq) });
      for (const hook of this.hooks) await hook(t, event);
      if (this.afterInsertSql) await this.afterInsertSql(t, event);
      return event;
    };
    const event = trx ? await append(trx) : await this.db.transaction().execute(append);
    if (!trx) this.bus.publish(input.workspaceId);
    return event;
  }

  /**
   * The workspace row serialises appends per workspace: created_at is strictly
   * increasing (a tie is bumped by 1 ms) and seq order matches created_at order.
   */
  private bumpParams(input: EmitInput): [number, number, string] {
    const now = Date.now();
    return [now, now, input.workspaceId];
  }

  private row(input: EmitInput, bumped: { last_event_ms: number } | undefined): EventRow {
    if (!bumped) throw new AppError('workspace_not_found', `Workspace not found: ${input.workspaceId}`);
    const ms = Number(bumped.last_event_ms);
    return {
      id: newEventId(),
      workspace_id: input.workspaceId,
      namespace: input.namespace,
      type: input.type,
      created_at: isoMs(ms),
      created_ms: ms,
      // Bounded: a page of events must stay a few MiB whatever one emitter passes (data-size.ts).
      data: boundEventData(input.data),
    };
  }

  async list(workspaceId: string, q: EventQuery): Promise<{ events: StoredEvent[]; next_cursor: string | null }> {
    let query = this.db.selectFrom('events').selectAll().where('workspace_id', '=', workspaceId);
    if (q.namespace !== undefined && q.namespace !== null) query = query.where('namespace', '=', q.namespace);
    if (q.types && q.types.length > 0) query = query.where('type', 'in', q.types);
    if (q.sinceMicros !== undefined) {
      // created_ms*1000 > since  ⇔  created_ms > floor(since/1000) for integer created_ms.
      query = query.where('created_ms', '>', Math.floor(q.sinceMicros / 1000));
    }
    if (q.cursor) query = query.where('seq', '<', decodeCursor(q.cursor));
    const rows = await query.orderBy('seq', 'desc').limit(q.limit + 1).execute();
    const page = rows.slice(0, q.limit).map((r) => toEnvelope({ ...r, seq: Number(r.seq) }));
    const more = rows.length > q.limit;
    return { events: page, next_cursor: more && page.length > 0 ? encodeCursor(page[page.length - 1]!.seq) : null };
  }

  /** Newest event seq of a workspace (0 when none); SSE streams start after it. */
  async latestSeq(workspaceId: string): Promise<number> {
    const r = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('seq').as('m'))
      .where('workspace_id', '=', workspaceId)
      .executeTakeFirst();
    return Number(r?.m ?? 0);
  }

  /** Events after `afterSeq`, oldest first (SSE streams). */
  async after(workspaceId: string, afterSeq: number, namespace: string | null, limit = 500): Promise<StoredEvent[]> {
    let query = this.db
      .selectFrom('events')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('seq', '>', afterSeq);
    if (namespace !== null) query = query.where('namespace', '=', namespace);
    const rows = await query.orderBy('seq', 'asc').limit(limit).execute();
    return rows.map((r) => toEnvelope({ ...r, seq: Number(r.seq) }));
  }

  /**
   * Resolves after the next wake-up for the workspace, `timeoutMs`, or abort.
   * Subscribe first, then query, so an event that lands in between still wakes.
   */
  waiter(workspaceId: string): { wait(timeoutMs: number, signal?: AbortSignal): Promise<void>; dispose(): void } {
    let pending = false;
    let wake: (() => void) | null = null;
    const unsubscribe = this.bus.subscribe(workspaceId, () => {
      pending = true;
      wake?.();
    });
    return {
      wait: (timeoutMs, signal) =>
        new Promise<void>((resolve) => {
          if (pending || signal?.aborted) {
            pending = false;
            resolve();
            return;
          }
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            wake = null;
            pending = false;
            resolve();
          };
          const timer = setTimeout(done, Math.max(0, timeoutMs));
          signal?.addEventListener('abort', done, { once: true });
          wake = done;
        }),
      dispose: unsubscribe,
    };
  }
}
