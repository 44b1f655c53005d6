/**
 * The one database interface: Kysely over SQLite (default, embedded, WAL) or
 * PostgreSQL (`TROVE_DATABASE_URL=postgres://…`, cluster mode). Nothing
 * outside db/ knows which one is in use, except through `store.dialect`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, type SqliteDatabase, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { Database } from './schema.js';
import { migrations, type DialectName } from './migrations.js';

export type Db = Kysely<Database>;

export interface Store {
  db: Db;
  dialect: DialectName;
  /** For PostgreSQL: the pool (LISTEN/NOTIFY, advisory locks). */
  pgPool: pg.Pool | null;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// int8 (bigint) columns hold millisecond times and sequence numbers, all far below 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

export async function openStore(opts: { dataDir: string; databaseUrl: string | null }): Promise<Store> {
  let db: Db;
  let dialect: DialectName;
  let pgPool: pg.Pool | null = null;
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
    sqlite.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives process crashes (kill -9); only an OS crash can lose the last commits.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
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
  return {
    db,
    dialect,
    pgPool,
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
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
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase {
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
