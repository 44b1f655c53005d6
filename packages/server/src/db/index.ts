/**
 * The one database interface: Kysely over SQLite (default, embedded, WAL) or
 * PostgreSQL (`TROVE_DATABASE_URL=postgres://…`, cluster mode). Nothing
 * outside db/ knows which one is in use, except through `store.dialect`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  Kysely,
  type CompiledQuery,
  type SqliteDatabase,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  createQueryId,
  sql,
} from 'kysely';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { Database } from './schema.js';
import { migrations, type DialectName } from './migrations.js';
import { Checkpointer, type CheckpointerLogger } from './checkpointer.js';

export type Db = Kysely<Database>;

export interface Store {
  db: Db;
  dialect: DialectName;
  /** For PostgreSQL: the pool (LISTEN/NOTIFY, advisory locks). */
  pgPool: pg.Pool | null;
  /** SQLite: the WAL checkpoint worker (see checkpointer.ts). */
  checkpointer: Checkpointer | null;
  /** SQLite: synchronous transactions for the hottest path (see SqliteSync); null with PostgreSQL. */
  sqliteSync: SqliteSync | null;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// int8 (bigint) columns hold millisecond times and sequence numbers, all far below 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

/** Runs one compiled query on the SQLite connection, synchronously: its rows (none for a statement without RETURNING). */
export type SyncRunner = <R>(q: CompiledQuery<R>) => R[];
/**
 * Runs one INSERT without RETURNING on the SQLite connection, synchronously: the rows it inserted and the
 * rowid of its last one (SQLite numbers the rows of one multi-row INSERT in VALUES order, one after another).
 */
export type SyncInsert = (q: CompiledQuery<never>) => { changes: number; lastRowid: number };

/**
 * SQLite only. better-sqlite3 runs every statement synchronously; Kysely wraps
 * each one in promises and its own bookkeeping, ~20–40 µs per statement, more
 * with cold caches. `transaction(fn)` runs `fn` as one SQLite transaction with
 * no await inside: at once when no transaction is open on the connection, else
 * once Kysely's connection (its mutex) is free, so no other transaction can
 * interleave. For the per-mutation event append; `fn` must not touch Kysely.
 */
export interface SqliteSync {
  transaction<T>(fn: (run: SyncRunner, insert: SyncInsert) => T): Promise<T>;
  /**
   * Runs one read-only query now, without waiting for Kysely's connection: ~5 µs against ~30 µs.
   * While a Kysely transaction is open on the connection the read sees its uncommitted writes, so
   * it is only for lookups where that is harmless (the API-key lookup: a key's secret is unknown
   * to clients until its transaction commits, and a revocation seen early only refuses sooner).
   */
  read<R>(q: CompiledQuery<R>): R[];
}

/**
 * A query the hot paths run on every request, compiled once: each call gives
 * the parameters in the compiled order (check `.parameters` of the template)
 * and skips the query builder and compiler (~30 µs per query on SQLite).
 */
export function prepared<R>(template: CompiledQuery<R>): (params: readonly unknown[]) => CompiledQuery<R> {
  const n = template.parameters.length;
  return (params) => {
    if (params.length !== n)
      throw new Error(`prepared query expects ${n} parameters, got ${params.length}: ${template.sql}`);
    return { ...template, parameters: params, queryId: createQueryId() };
  };
}

/** How often the checkpoint worker folds the WAL back into the database file. */
const CHECKPOINT_INTERVAL_MS = 1000;
/** A fully copied WAL longer than this (pages, 4 KiB each) is restarted by the server's own connection. */
const RESTART_WAL_FRAMES = 4096;

export async function openStore(opts: {
  dataDir: string;
  databaseUrl: string | null;
  log?: CheckpointerLogger;
  /**
   * SQLite: `full` fsyncs the WAL at every commit (a batch of the group commit), so an answered write's event
   * survives a power cut too; `normal` (the default) survives a crash of the server (kill -9) but not of the OS.
   */
  sqliteSynchronous?: 'normal' | 'full';
}): Promise<Store> {
  let db: Db;
  let dialect: DialectName;
  let pgPool: pg.Pool | null = null;
  let sqliteConn: SQLite.Database | null = null;
  let sqliteSync: SqliteSync | null = null;
  if (opts.databaseUrl) {
    dialect = 'postgres';
    pgPool = new pg.Pool({ connectionString: opts.databaseUrl, max: 20, connectionTimeoutMillis: 5000 });
    // A pool error (database restarted) must not crash the process; requests fail with 503 meanwhile.
    pgPool.on('error', () => {});
    // The pool only listens for errors on idle clients. A checked-out client whose socket
    // dies emits 'error' with no listener, which would crash the process; its query
    // already fails through its own callback, so the event itself can be dropped.
    pgPool.on('connect', (client) => {
      client.on('error', () => {});
    });
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pgPool }) });
  } else {
    dialect = 'sqlite';
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    const file = join(opts.dataDir, 'trove.db');
    const sqlite = new SQLite(file);
    sqliteConn = sqlite;
    sqlite.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives process crashes (kill -9); only an OS crash can lose the last commits.
    // FULL fsyncs the WAL at each commit (docs/durability.md).
    sqlite.pragma(`synchronous = ${opts.sqliteSynchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    const cached = withStatementCache(sqlite);
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cached }) });
    const kysely = db;
    const run: SyncRunner = <R>(q: CompiledQuery<R>) => {
      const stmt = cached.prepare(q.sql);
      if (stmt.reader) return stmt.all(q.parameters as unknown[]) as R[];
      stmt.run(q.parameters as unknown[]);
      return [];
    };
    const insert: SyncInsert = (q) => {
      const info = cached.prepare(q.sql).run(q.parameters as unknown[]);
      return { changes: Number(info.changes), lastRowid: Number(info.lastInsertRowid) };
    };
    // One wrapper for all calls: better-sqlite3 issues BEGIN/COMMIT (ROLLBACK when fn throws) around it.
    const inTransaction = sqlite.transaction((fn: (r: SyncRunner, i: SyncInsert) => unknown) => fn(run, insert));
    sqliteSync = {
      transaction: <T>(fn: (r: SyncRunner, i: SyncInsert) => T) => {
        const commit = () => inTransaction(fn as (r: SyncRunner, i: SyncInsert) => unknown) as T;
        // No transaction open on the connection: nothing can interleave with this one (it runs to its commit
        // without yielding), so it runs now, without queueing for Kysely's connection (~60 µs of promise
        // hops). A Kysely transaction that is open between two of its statements would see these statements
        // as its own: then this one waits for the connection like any other query.
        if (!sqlite.inTransaction) {
          try {
            return Promise.resolve(commit());
          } catch (err) {
            return Promise.reject(err as Error);
          }
        }
        return kysely.connection().execute(async () => commit());
      },
      read: <R>(q: CompiledQuery<R>) => {
        const stmt = cached.prepare(q.sql);
        if (!stmt.reader) throw new Error(`sqliteSync.read is for queries that return rows: ${q.sql}`);
        return stmt.all(q.parameters as unknown[]) as R[];
      },
    };
  }
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(dialect) },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`database migration failed${failed ? ` at ${failed.migrationName}` : ''}: ${String(error)}`);
  }
  let checkpointer: Checkpointer | null = null;
  let restarting = false;
  if (sqliteConn) {
    const conn = sqliteConn;
    // Commits never checkpoint (an fsync on the event loop); the worker does, off the loop.
    conn.pragma('wal_autocheckpoint = 0');
    // After a checkpoint resets the log, a WAL file that grew in a burst is cut back to this size.
    conn.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    checkpointer = new Checkpointer(
      conn.name,
      CHECKPOINT_INTERVAL_MS,
      opts.log ?? { warn: (o, m) => console.error(m ?? o) },
      () => {
        try {
          conn.pragma('wal_autocheckpoint = 1000');
        } catch {
          /* closed meanwhile */
        }
      },
      (r) => {
        if (r.log < RESTART_WAL_FRAMES || r.checkpointed < r.log || restarting) return;
        restarting = true;
        // Through Kysely, so it waits for a transaction in progress on this connection instead of joining it.
        void sql`pragma wal_checkpoint(RESTART)`
          .execute(db)
          .catch(() => {})
          .finally(() => {
            restarting = false;
          });
      },
    );
  }
  return {
    db,
    dialect,
    pgPool,
    checkpointer,
    sqliteSync,
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      // The worker's connection first: the last connection to close folds the WAL in and removes it.
      await checkpointer?.close();
      await db.destroy();
    },
  };
}

/** Most recently used prepared statements kept per connection: the API issues a few hundred distinct queries. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query afresh; preparing is a measurable share of a
 * small request's CPU. better-sqlite3 statements are reusable and run
 * synchronously (all/run), so one per SQL text is safe to share. Only a
 * streaming read (`iterate`) would hold a statement open; nothing uses one.
 */
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase & { prepare(text: string): SQLite.Statement } {
  const cache = new Map<string, SQLite.Statement>();
  return {
    prepare(text: string) {
      let stmt = cache.get(text);
      if (stmt) {
        cache.delete(text); // re-insert: Map order is recency order
      } else {
        stmt = sqlite.prepare(text);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      cache.set(text, stmt);
      return stmt;
    },
    close() {
      cache.clear();
      sqlite.close();
    },
  };
}
