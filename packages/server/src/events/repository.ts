/**
 * The `events` table and the workspace row that numbers a workspace's events. The statements every append
 * runs are compiled once (see prepared()) and handed to the caller's transaction: Kysely's for PostgreSQL,
 * SqliteSync's synchronous one for SQLite (events/service.ts runs the group commit around them).
 */
import { sql, type CompiledQuery, type Selectable, type Transaction } from 'kysely';
import type { Database, EventTable } from '../db/schema.js';
import { prepared, type Db } from '../db/index.js';
import { sourceLikePatterns } from './source-filter.js';

/** An events row before the database numbers it. */
export type EventRow = Omit<EventTable, 'seq'>;
export type StoredEventRow = Selectable<EventTable>;

/** What a page of the log may be filtered on. */
export interface EventFilter {
  namespace?: string | null;
  types?: string[];
  /** Only events whose data.source is one of these (source-filter.ts; `api` stands for write, upload, api). */
  sources?: string[] | null;
  /** Exclusive lower bound, microseconds since the epoch. */
  sinceMicros?: number;
}

/** The columns of an events insert, in the order of its parameters (insertParams). */
const COLUMNS = { id: '', workspace_id: '', namespace: null, type: '', created_at: '', created_ms: 0, data: '' };

/** Appends the parameters of `rows` to `out`, in the column order of COLUMNS. */
function insertParams(rows: readonly EventRow[], from: number, n: number, out: unknown[]): unknown[] {
  for (let i = from; i < from + n; i++) {
    const r = rows[i]!;
    out.push(r.id, r.workspace_id, r.namespace, r.type, r.created_at, r.created_ms, r.data);
  }
  return out;
}

/**
 * Most rows one INSERT statement carries (7 parameters each: far below SQLite's 32,766 and PostgreSQL's
 * 65,535). A batch is cut into chunks of INSERT_CHUNK and then powers of two, so only a few statement
 * texts exist (each compiled once, and prepared once by SQLite's statement cache).
 */
const INSERT_CHUNK = 128;

/** [start, rows] of the INSERT statements for `n` rows: INSERT_CHUNK at a time, then powers of two. */
function insertChunks(n: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = 0;
  for (let size = INSERT_CHUNK; size >= 1; size >>= 1) {
    while (n - at >= size) {
      out.push([at, size]);
      at += size;
    }
  }
  return out;
}

export class EventRepository {
  private readonly bumpQuery: (
    p: [n: number, last: number, n2: number, last2: number, workspaceId: string],
  ) => CompiledQuery<{ last_event_ms: number }>;
  /** The INSERT of n rows (insertChunks' sizes), by n. */
  private readonly insertOf = new Map<number, (p: readonly unknown[]) => CompiledQuery<{ id: string; seq: number }>>();
  private readonly idsAtQuery: (p: [first: number, last: number]) => CompiledQuery<{ id: string; seq: number }>;
  /** The same without RETURNING, by n (SQLite's synchronous append: the rows' seqs follow from the last rowid). */
  private readonly plainInsertOf = new Map<number, (p: readonly unknown[]) => CompiledQuery<never>>();

  constructor(private readonly db: Db) {
    // Takes n consecutive milliseconds for n events at once; for n = 1, max(last + 1, now).
    this.bumpQuery = prepared(
      db
        .updateTable('workspaces')
        .set({
          last_event_ms: sql<number>`case when last_event_ms + ${0} > ${0} then last_event_ms + ${0} else ${0} end`,
        })
        .where('id', '=', '')
        .returning('last_event_ms')
        .compile(),
    );
    this.idsAtQuery = prepared(db.selectFrom('events').select(['id', 'seq']).where('seq', 'in', [0, 0]).compile());
  }

  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  /**
   * The workspace row serialises appends per workspace: created_at is strictly
   * increasing (a tie is bumped by 1 ms) and seq order matches created_at order.
   * A batch's n events of one workspace take n consecutive milliseconds, as n
   * appends in a row within the same millisecond would. Returns the new
   * last_event_ms (no row: the workspace does not exist).
   */
  bump(workspaceId: string, n: number): CompiledQuery<{ last_event_ms: number }> {
    const last = Date.now() + n - 1;
    return this.bumpQuery([n, last, n, last, workspaceId]);
  }

  /**
   * The INSERTs of `rows`, in order (insertChunks' sizes), each returning its rows' id and seq; every
   * statement text is compiled once per size.
   */
  inserts(rows: readonly EventRow[]): Array<CompiledQuery<{ id: string; seq: number }>> {
    return insertChunks(rows.length).map(([from, n]) => {
      let q = this.insertOf.get(n);
      if (!q) {
        const values = Array.from({ length: n }, () => ({ ...COLUMNS }));
        q = prepared(this.db.insertInto('events').values(values).returning(['id', 'seq']).compile());
        this.insertOf.set(n, q);
      }
      return q(insertParams(rows, from, n, []));
    });
  }

  /**
   * inserts() without RETURNING, each with its number of rows: for SQLite, where an INSERT's rows take
   * consecutive rowids in VALUES order and the statement reports the last one. Building the returned rows
   * (an object and an id string per event) was a fifth of the SQLite work of a command's thousand events.
   */
  plainInserts(rows: readonly EventRow[]): Array<{ query: CompiledQuery<never>; n: number }> {
    return insertChunks(rows.length).map(([from, n]) => {
      let q = this.plainInsertOf.get(n);
      if (!q) {
        const values = Array.from({ length: n }, () => ({ ...COLUMNS }));
        q = prepared(this.db.insertInto('events').values(values).compile() as CompiledQuery<never>);
        this.plainInsertOf.set(n, q);
      }
      return { query: q(insertParams(rows, from, n, [])), n };
    });
  }

  /** The ids of the events numbered `first` and `last` (SQLite's check of plainInserts' numbering). */
  idsAt(first: number, last: number): CompiledQuery<{ id: string; seq: number }> {
    return this.idsAtQuery([first, last]);
  }

  /** Up to `limit` events, newest first, older than `beforeSeq` when given. */
  async page(
    workspaceId: string,
    f: EventFilter,
    beforeSeq: number | undefined,
    limit: number,
  ): Promise<StoredEventRow[]> {
    let query = this.db.selectFrom('events').selectAll().where('workspace_id', '=', workspaceId);
    if (f.namespace !== undefined && f.namespace !== null) query = query.where('namespace', '=', f.namespace);
    if (f.types && f.types.length > 0) query = query.where('type', 'in', f.types);
    if (f.sources && f.sources.length > 0) {
      const patterns = sourceLikePatterns(f.sources);
      query = query.where((eb) => eb.or(patterns.map((p) => eb('data', 'like', p))));
    }
    if (f.sinceMicros !== undefined) {
      // created_ms*1000 > since  ⇔  created_ms > floor(since/1000) for integer created_ms.
      query = query.where('created_ms', '>', Math.floor(f.sinceMicros / 1000));
    }
    if (beforeSeq !== undefined) query = query.where('seq', '<', beforeSeq);
    return query.orderBy('seq', 'desc').limit(limit).execute();
  }

  /** Newest event seq of a workspace (0 when none). */
  async latestSeq(workspaceId: string): Promise<number> {
    const r = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('seq').as('m'))
      .where('workspace_id', '=', workspaceId)
      .executeTakeFirst();
    return Number(r?.m ?? 0);
  }

  /** Up to `limit` events after `afterSeq`, oldest first. */
  async after(
    workspaceId: string,
    afterSeq: number,
    namespace: string | null,
    limit: number,
  ): Promise<StoredEventRow[]> {
    let query = this.db
      .selectFrom('events')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('seq', '>', afterSeq);
    if (namespace !== null) query = query.where('namespace', '=', namespace);
    return query.orderBy('seq', 'asc').limit(limit).execute();
  }
}
