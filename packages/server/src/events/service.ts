/**
 * The append-only event log. Every mutation appends here; `emit` runs the
 * registered in-transaction hooks (the webhook outbox) in the same transaction
 * as the event row, then wakes live waiters after commit.
 *
 * Group commit: `emit` without a caller's transaction queues the event, and a
 * committer appends whatever queued while its previous commit ran, in one
 * transaction: one commit (PostgreSQL: one WAL flush, and the workspace row
 * held once) for a burst of concurrent writes instead of one each, while each
 * `emit` still resolves only after the commit that holds its event. A batch that fails before its commit
 * is retried one event per transaction, so one bad event fails only its own
 * caller. Within a workspace, events get seq and created_at in the order their
 * `emit` was called, as one transaction per event gave them.
 */
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Db, SqliteSync, SyncInsert, SyncRunner } from '../db/index.js';
import { EventRepository, type EventFilter, type EventRow } from './repository.js';
import type { EventBus } from './bus.js';
import { AppError } from '../errors.js';
import { isoMs, newEventId } from '../ids.js';
import { boundEventData, withinBound } from './data-size.js';
import { Waiters, type EventWaiter } from './waiters.js';

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

/**
 * Runs once in every event transaction, with the events it appended (oldest first): one call for a batch
 * of a thousand events, so a hook can look up what it needs once rather than once per event.
 */
export type AppendHook = (trx: Transaction<Database>, events: readonly StoredEvent[]) => Promise<void>;
/** The same hook for SqliteSync's synchronous transaction (SQLite only). */
export type SyncAppendHook = (run: SyncRunner, events: readonly StoredEvent[]) => void;

/** A page of the log: the filters, where the previous page ended (next_cursor), and its size. */
export interface EventQuery extends EventFilter {
  cursor?: string;
  limit: number;
}

/** A page of the log: newest first; next_cursor continues with older events (null: no more). */
export interface EventPage {
  events: StoredEvent[];
  next_cursor: string | null;
}

/** What makes two list() calls the same page. */
function pageKey(workspaceId: string, q: EventQuery, cursorSeq: number | undefined): string {
  return JSON.stringify([
    workspaceId,
    q.namespace ?? null,
    q.types ?? [],
    q.sources ?? [],
    q.sinceMicros,
    cursorSeq,
    q.limit,
  ]);
}

export function encodeCursor(seq: number): string {
  return Buffer.from(`s:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const m = /^s:(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new AppError('query_invalid', 'Invalid cursor: pass next_cursor from a previous page unchanged');
  return Number(m[1]);
}

/** The columns of a stored event that its envelope shows (`data` as stored: JSON text). */
type EnvelopeRow = Pick<EventRow, 'id' | 'type' | 'workspace_id' | 'namespace' | 'created_at' | 'data'>;

/** A row's envelope with its data already parsed. */
function envelope(row: EnvelopeRow, seq: number, data: Record<string, unknown>): StoredEvent {
  return {
    seq,
    id: row.id,
    event_id: row.id,
    type: row.type,
    api_version: API_VERSION,
    workspace_id: row.workspace_id,
    namespace: row.namespace,
    created_at: row.created_at,
    data,
  };
}

/** A stored row's envelope (seq as the driver returns it: a number, or a string for PostgreSQL's bigint). */
export function toEnvelope(row: EnvelopeRow & { seq: number | string }): StoredEvent {
  return envelope(row, Number(row.seq), parseData(row.data));
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

/**
 * toEnvelope() of a row this process just appended: its data was bounded on the way in (row()), so it is
 * parsed without checking the bound again, and the row is not copied first (a thousand per command).
 */
function appendedEvent(row: EventRow, seq: number): StoredEvent {
  return envelope(row, seq, JSON.parse(row.data) as Record<string, unknown>);
}

/**
 * Most events one group commit appends: bounds how long its transaction holds
 * the workspace rows; the rest wait for the next commit.
 */
const MAX_BATCH = 256;
/**
 * Most events of one emitAll() (a command's changes) that one commit appends when they head the queue: the
 * default cap's 1,000 and the summary are one transaction (one commit, one WAL flush) rather than four.
 */
const MAX_BULK = 2048;
/**
 * PostgreSQL: committers running side by side, each for a fixed share of the
 * workspaces (one workspace's events always go through the same one, in
 * order), so a burst in many workspaces is not one transaction after another.
 * SQLite has one connection: one committer.
 */
const PG_LANES = 4;

interface Queued {
  input: EmitInput;
  /** emitAll(): how many of its events in this lane, this one included, are still queued from here on. */
  bulk?: number;
  resolve(event: StoredEvent): void;
  reject(err: unknown): void;
}

/** One committer: its queue, in emit order, and whether it is running. */
interface Lane {
  queue: Queued[];
  committing: boolean;
}

/** FNV-1a of the workspace id: which lane its events take. */
function laneOf(workspaceId: string, lanes: number): number {
  if (lanes === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < workspaceId.length; i++) h = Math.imul(h ^ workspaceId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}

/**
 * The seqs of `valid` (in order) from what the inserts returned. The database numbers the rows in VALUES
 * order, which the order of events rests on: checked, not assumed (a failure fails the batch before its
 * commit, and each event is appended on its own).
 */
function seqsOf(valid: readonly EventRow[], returned: ReadonlyArray<{ id: string; seq: number }>): number[] {
  const seqOf = new Map<string, number>();
  for (const r of returned) seqOf.set(r.id, Number(r.seq));
  let prev = 0;
  return valid.map((r) => {
    const seq = seqOf.get(r.id);
    if (seq === undefined || !(seq > prev)) throw new Error('events numbered out of VALUES order');
    prev = seq;
    return seq;
  });
}

/** One event's result in a batch: the stored event, or why that event alone failed. */
type Outcome = StoredEvent | AppError;

/**
 * The positions of `inputs` by workspace, workspaces in id order: a batch
 * locks its workspace rows in that order, so two nodes' batches over the same
 * workspaces cannot deadlock.
 */
function byWorkspace(inputs: readonly EmitInput[]): Array<[string, number[]]> {
  if (inputs.length === 1) return [[inputs[0]!.workspaceId, [0]]];
  const at = new Map<string, number[]>();
  inputs.forEach((input, i) => {
    const list = at.get(input.workspaceId);
    if (list) list.push(i);
    else at.set(input.workspaceId, [i]);
  });
  return [...at].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export class EventService {
  private readonly hooks: AppendHook[] = [];
  /** Synchronous forms of `hooks` (same order); the synchronous append is used only when every hook has one. */
  private readonly syncHooks: SyncAppendHook[] = [];
  /**
   * Extra work inside an event transaction for PostgreSQL (NOTIFY): once per
   * workspace per transaction, given that workspace's last event in it.
   */
  afterInsertSql: ((trx: Transaction<Database>, event: StoredEvent) => Promise<void>) | null = null;

  private readonly lanes: Lane[];
  /** Group commits so far and the events they appended, pages read for list() (diagnostics, tests). */
  readonly stats = { commits: 0, events: 0, pageReads: 0 };

  private readonly repo: EventRepository;
  /** Page reads not started yet, by pageKey(): list() callers of the same turn share one. */
  private readonly queuedPages = new Map<string, Promise<EventPage>>();
  /** Long-polls and streams waiting for events (one bus subscription per workspace). */
  readonly waiters: Waiters;

  constructor(
    db: Db,
    readonly bus: EventBus,
    /** SQLite: append without Kysely's per-statement overhead (Store.sqliteSync). */
    private readonly sync: SqliteSync | null = null,
  ) {
    this.repo = new EventRepository(db);
    this.lanes = Array.from({ length: sync ? 1 : PG_LANES }, () => ({ queue: [], committing: false }));
    this.waiters = new Waiters(bus);
  }

  /** Ends every long-poll wait (they return what they have, usually an empty page), and every later one at once. */
  endWaits(): void {
    this.waiters.closeAll();
  }

  /** A hook runs inside every event's transaction; give `syncHook` too, or SQLite falls back to Kysely for appends. */
  onAppend(hook: AppendHook, syncHook?: SyncAppendHook): void {
    this.hooks.push(hook);
    if (syncHook) this.syncHooks.push(syncHook);
  }

  /**
   * Appends inside `trx` when given (committed with it; waiters are not woken),
   * else in the next group commit; resolves once that commit is done, after
   * waking the workspace's waiters.
   */
  async emit(input: EmitInput, trx?: Transaction<Database>): Promise<StoredEvent> {
    if (trx) {
      const [event] = await this.appendAsync(trx, [input]);
      if (event instanceof AppError) throw event;
      return event!;
    }
    const lane = this.lanes[laneOf(input.workspaceId, this.lanes.length)]!;
    return new Promise<StoredEvent>((resolve, reject) => {
      lane.queue.push({ input, resolve, reject });
      // A running committer takes it with whatever else queued during its current commit.
      if (lane.committing) return;
      lane.committing = true;
      void this.commitQueued(lane);
    });
  }

  /**
   * emit() of several events at once (a command's changes): queued together and in this order, and
   * appended in one transaction when they head the queue (up to MAX_BULK; else as few as MAX_BATCH allows).
   * Resolves once every one is committed; if one fails, rejects with the first failure once every one has
   * settled.
   */
  emitAll(inputs: readonly EmitInput[]): Promise<StoredEvent[]> {
    if (inputs.length === 0) return Promise.resolve([]);
    return new Promise<StoredEvent[]>((resolve, reject) => {
      const out: StoredEvent[] = new Array(inputs.length);
      let left = inputs.length;
      let failure: { err: unknown } | null = null;
      const settled = () => {
        if (--left > 0) return;
        if (failure) reject(failure.err);
        else resolve(out);
      };
      const laneOfInput = inputs.map((input) => this.lanes[laneOf(input.workspaceId, this.lanes.length)]!);
      const inLane = new Map<Lane, number>();
      for (const lane of laneOfInput) inLane.set(lane, (inLane.get(lane) ?? 0) + 1);
      const started = new Set<Lane>();
      inputs.forEach((input, i) => {
        const lane = laneOfInput[i]!;
        const bulk = inLane.get(lane)!;
        inLane.set(lane, bulk - 1);
        lane.queue.push({
          input,
          bulk,
          resolve: (event) => {
            out[i] = event;
            settled();
          },
          reject: (err) => {
            failure ??= { err };
            settled();
          },
        });
        started.add(lane);
      });
      for (const lane of started) {
        if (lane.committing) continue;
        lane.committing = true;
        void this.commitQueued(lane);
      }
    });
  }

  /** A lane's committer: one batch at a time, each holding whatever queued while the previous one committed. */
  private async commitQueued(lane: Lane): Promise<void> {
    try {
      // Once the event loop's current phase is over: the writes whose fsyncs completed in it (a shared
      // directory fsync releases every writer waiting for it) have queued their events by then, and go
      // in this one commit instead of one commit each.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (lane.queue.length > 0) {
        const n = Math.min(MAX_BULK, Math.max(MAX_BATCH, lane.queue[0]!.bulk ?? 0));
        await this.commitBatch(lane.queue.splice(0, n));
      }
    } finally {
      lane.committing = false;
    }
  }

  /** Appends `batch` in one transaction and settles each caller; never throws. */
  private async commitBatch(batch: Queued[]): Promise<void> {
    const at = { commit: false };
    let outcomes: Outcome[];
    try {
      outcomes = await this.appendBatch(
        batch.map((q) => q.input),
        at,
      );
    } catch (err) {
      // Failed before its commit: nothing was written, so each event again on its own and only a bad one
      // fails. Failed in the commit (connection lost): it may have been written; every caller gets the
      // error, as one event's own transaction gave it.
      if (batch.length > 1 && !at.commit) {
        for (const q of batch) await this.commitBatch([q]);
      } else {
        for (const q of batch) q.reject(err);
      }
      return;
    }
    this.stats.commits++;
    this.stats.events += batch.length;
    const woken = new Set<string>();
    for (const o of outcomes) if (!(o instanceof AppError)) woken.add(o.workspace_id);
    for (const workspaceId of woken) this.bus.publish(workspaceId);
    batch.forEach((q, i) => {
      const o = outcomes[i]!;
      if (o instanceof AppError) q.reject(o);
      else q.resolve(o);
    });
  }

  /** One transaction for all of `inputs`; `at.commit` is set once only the commit is left. */
  private async appendBatch(inputs: EmitInput[], at: { commit: boolean }): Promise<Outcome[]> {
    if (this.sync && this.syncHooks.length === this.hooks.length && !this.afterInsertSql) {
      return this.sync.transaction((run, insert) => {
        const out = this.appendSync(run, insert, inputs);
        at.commit = true;
        return out;
      });
    }
    return this.repo.transaction(async (t) => {
      const out = await this.appendAsync(t, inputs);
      at.commit = true;
      return out;
    });
  }

  /**
   * appendAsync inside SQLite's synchronous transaction: the same statements without Kysely, and without
   * RETURNING: an INSERT's rows take consecutive seqs in VALUES order, up to the last rowid it reports.
   */
  private appendSync(run: SyncRunner, insert: SyncInsert, inputs: EmitInput[]): Outcome[] {
    const rows: Array<EventRow | AppError> = new Array(inputs.length);
    for (const [workspaceId, at] of byWorkspace(inputs)) {
      this.number(rows, inputs, at, run(this.repo.bump(workspaceId, at.length))[0]);
    }
    const valid = rows.filter((r): r is EventRow => !(r instanceof AppError));
    const seqs: number[] = new Array(valid.length);
    let k = 0;
    for (const { query, n } of this.repo.plainInserts(valid)) {
      const { changes, lastRowid } = insert(query);
      if (changes !== n) throw new Error(`events insert of ${n} rows inserted ${changes}`);
      for (let seq = lastRowid - n + 1; seq <= lastRowid; seq++) seqs[k++] = seq;
    }
    if (valid.length > 0) {
      // Checked, not assumed: the first and the last row are where the numbering says (a failure fails the
      // batch before its commit, and each event is appended on its own).
      const first = seqs[0]!;
      const last = seqs[seqs.length - 1]!;
      const found = new Map(run(this.repo.idsAt(first, last)).map((r) => [Number(r.seq), r.id]));
      if (found.get(first) !== valid[0]!.id || found.get(last) !== valid[valid.length - 1]!.id)
        throw new Error('events numbered out of VALUES order');
    }
    const { out, appended } = this.stored(rows, valid, seqs);
    if (appended.length > 0) for (const hook of this.syncHooks) hook(run, appended);
    return out;
  }

  /**
   * Numbers `inputs` (each workspace's row bumped once, in workspace order),
   * then inserts them in input order (a few multi-row statements), so within a
   * workspace seq follows created_at; runs the hooks once with all of them and
   * afterInsertSql once per workspace.
   */
  private async appendAsync(t: Transaction<Database>, inputs: EmitInput[]): Promise<Outcome[]> {
    const rows: Array<EventRow | AppError> = new Array(inputs.length);
    for (const [workspaceId, at] of byWorkspace(inputs)) {
      this.number(rows, inputs, at, (await t.executeQuery(this.repo.bump(workspaceId, at.length))).rows[0]);
    }
    const valid = rows.filter((r): r is EventRow => !(r instanceof AppError));
    const returned: Array<{ id: string; seq: number }> = [];
    for (const q of this.repo.inserts(valid)) returned.push(...(await t.executeQuery(q)).rows);
    const { out, appended } = this.stored(rows, valid, seqsOf(valid, returned));
    if (appended.length > 0) for (const hook of this.hooks) await hook(t, appended);
    if (this.afterInsertSql) {
      const lastOf = new Map<string, StoredEvent>();
      for (const event of appended) lastOf.set(event.workspace_id, event);
      for (const event of lastOf.values()) await this.afterInsertSql(t, event);
    }
    return out;
  }

  /**
   * Each input's outcome, given the rows inserted (`valid`, in input order) and their seqs (`seqs[k]` is
   * `valid[k]`'s); `appended`: the stored events, oldest first.
   */
  private stored(
    rows: ReadonlyArray<EventRow | AppError>,
    valid: readonly EventRow[],
    seqs: readonly number[],
  ): { out: Outcome[]; appended: StoredEvent[] } {
    const appended: StoredEvent[] = new Array(valid.length);
    let k = 0;
    const out = rows.map((row): Outcome => {
      if (row instanceof AppError) return row;
      const event = appendedEvent(row, seqs[k]!);
      appended[k++] = event;
      return event;
    });
    return { out, appended };
  }

  /** Rows for the events of one workspace at positions `at`, given its bumped row (none: it does not exist). */
  private number(
    rows: Array<EventRow | AppError>,
    inputs: EmitInput[],
    at: number[],
    bumped: { last_event_ms: number } | undefined,
  ): void {
    if (!bumped) {
      for (const i of at)
        rows[i] = new AppError('workspace_not_found', `Workspace not found: ${inputs[i]!.workspaceId}`);
      return;
    }
    let ms = Number(bumped.last_event_ms) - at.length + 1;
    for (const i of at) rows[i] = this.row(inputs[i]!, ms++);
  }

  private row(input: EmitInput, ms: number): EventRow {
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

  /**
   * A page of the log. Identical pages asked for in the same turn of the event loop are read once: the
   * read starts after that turn (setImmediate), so it sees every event committed before any of its callers
   * asked, and the long-polls of many tails with the same filters, all woken by the same commit, cost one
   * query instead of one each. The page's events are shared by those callers: read-only.
   */
  list(workspaceId: string, q: EventQuery): Promise<EventPage> {
    const cursorSeq = q.cursor ? decodeCursor(q.cursor) : undefined;
    const key = pageKey(workspaceId, q, cursorSeq);
    let page = this.queuedPages.get(key);
    if (!page) {
      page = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.queuedPages.delete(key);
        return this.readPage(workspaceId, q, cursorSeq);
      });
      this.queuedPages.set(key, page);
    }
    return page;
  }

  private async readPage(workspaceId: string, q: EventQuery, cursorSeq: number | undefined): Promise<EventPage> {
    this.stats.pageReads++;
    const rows = await this.repo.page(workspaceId, q, cursorSeq, q.limit + 1);
    const page = rows.slice(0, q.limit).map(toEnvelope);
    const more = rows.length > q.limit;
    return { events: page, next_cursor: more && page.length > 0 ? encodeCursor(page[page.length - 1]!.seq) : null };
  }

  /** Newest event seq of a workspace (0 when none); SSE streams start after it. */
  latestSeq(workspaceId: string): Promise<number> {
    return this.repo.latestSeq(workspaceId);
  }

  /** Events after `afterSeq`, oldest first (SSE streams). */
  async after(workspaceId: string, afterSeq: number, namespace: string | null, limit = 500): Promise<StoredEvent[]> {
    const rows = await this.repo.after(workspaceId, afterSeq, namespace, limit);
    return rows.map(toEnvelope);
  }

  /**
   * A wait for the workspace's next events (waiters.ts): subscribed now, so an event committed between this
   * call and the caller's first query still wakes it. Dispose of it when done.
   */
  waiter(workspaceId: string): EventWaiter {
    return this.waiters.open(workspaceId);
  }
}
