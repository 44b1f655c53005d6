/**
 * Starts the real, built Trove server (packages/server/bin/trove-server.cjs → dist/bin.js) on an
 * ephemeral port with a temp data dir and preset bootstrap keys.
 * Every end-to-end test in the repository uses this one helper.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { rmTree } from './root.js';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const serverBin = join(repoRoot, 'packages/server/bin/trove-server.cjs');
export const cliBin = join(repoRoot, 'packages/cli/dist/bin.js');
/** `node --import` this to SIGKILL a process at a snapshot restore phase named by TROVE_TEST_CRASH_AT (kill -9 tests). */
export const crashAtPreload = join(repoRoot, 'test/helpers/crash-at.mjs');

export interface StartedServer {
  baseUrl: string;
  port: number;
  adminKey: string;
  runtimeKey: string;
  workspaceId: string;
  dataDir: string;
  /** The PostgreSQL database the server uses, or null for embedded SQLite. */
  databaseUrl: string | null;
  proc: ChildProcess;
  /** Everything the server printed so far (stdout + stderr). */
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** Send a signal (e.g. SIGKILL) and wait for exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start a new server process on the same data dir / env (after stop or kill). */
  restart(extraEnv?: Record<string, string>): Promise<StartedServer>;
  /** stop() and remove the data dir (and, with TROVE_TEST_PG=1, drop the database it created). */
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  dataDir?: string;
  adminKey?: string;
  runtimeKey?: string;
  port?: number;
  args?: string[];
  /** Flags for node itself, before the server's entry point (e.g. `--import` of a test preload). */
  nodeArgs?: string[];
}

export function randomKey(): string {
  return 'trove-sk-' + randomBytes(24).toString('hex');
}

/** Where TROVE_TEST_PG=1 creates its databases (a superuser URL; trust auth on the local cluster). */
export const pgAdminUrl = process.env.TROVE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export const usePg = process.env.TROVE_TEST_PG === '1';

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the database, disconnecting whoever is still connected. */
  drop(): Promise<void>;
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgAdminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/**
 * A fresh, empty PostgreSQL database `trove_t_<run>_<random>` (for tests that share one between servers).
 * `<run>` is the pid of the run that owns it (scripts/test-pg.mjs, or this test process when run alone), so
 * that a run clears only the leftovers of runs that are gone, never a concurrent run's databases.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const run = /^[0-9]+$/.test(process.env.TROVE_TEST_PG_RUN ?? '') ? process.env.TROVE_TEST_PG_RUN : process.pid;
  const name = `trove_t_${run}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(pgAdminUrl);
  url.pathname = '/' + name;
  let dropped: Promise<void> | null = null;
  return {
    url: url.toString(),
    name,
    drop: () => (dropped ??= adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  };
}

/**
 * TROVE_TEST_PG=1: the database belongs to the data dir, so a second
 * startServer({dataDir}) (a restart, or another process on the same state)
 * finds the same database. It is dropped by the close() that leaves no
 * server of that data dir running.
 */
const pgByDataDir = new Map<string, { db: TestDatabase; running: Set<ChildProcess> }>();

export async function startServer(opts: StartOptions = {}): Promise<StartedServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'trove-test-'));
  const adminKey = opts.adminKey ?? randomKey();
  const runtimeKey = opts.runtimeKey ?? randomKey();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    TROVE_HOST: '127.0.0.1',
    TROVE_PORT: String(opts.port ?? 0),
    TROVE_DATA_DIR: dataDir,
    TROVE_BOOTSTRAP_ADMIN_KEY: adminKey,
    TROVE_BOOTSTRAP_RUNTIME_KEY: runtimeKey,
    TROVE_WEBHOOK_ALLOW_PRIVATE: '1',
    TROVE_LOG_LEVEL: process.env.TROVE_LOG_LEVEL ?? 'warn',
  };
  // The runner's own setting must not leak into servers that chose SQLite.
  delete env.TROVE_DATABASE_URL;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  let pgState: { db: TestDatabase; running: Set<ChildProcess> } | undefined;
  if (usePg && !(opts.env && 'TROVE_DATABASE_URL' in opts.env)) {
    pgState = pgByDataDir.get(dataDir);
    if (!pgState) {
      pgState = { db: await createTestDatabase(), running: new Set() };
      pgByDataDir.set(dataDir, pgState);
    }
    env.TROVE_DATABASE_URL = pgState.db.url;
  }
  const databaseUrl = env.TROVE_DATABASE_URL ?? null;
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), serverBin, ...(opts.args ?? [])], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => (out += d));
  proc.stderr!.on('data', (d: string) => (out += d));
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  pgState?.running.add(proc);
  void exited.then(() => pgState?.running.delete(proc));

  const listening = new Promise<number>((res, rej) => {
    const timer = setTimeout(() => rej(new Error('server did not start in 60s:\n' + out)), 60_000);
    const onData = () => {
      const m = /Trove listening on http:\/\/[^:\s]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
        res(Number(m[1]));
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`server exited with ${code} before listening:\n${out}`));
    });
  });
  let port: number;
  try {
    port = await listening;
  } catch (err) {
    // A server that never came up must not leave a process or a database behind.
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
    if (pgState && pgState.running.size === 0 && pgByDataDir.get(dataDir) === pgState) {
      pgByDataDir.delete(dataDir);
      await pgState.db.drop().catch(() => {});
    }
    throw err;
  }
  const baseUrl = `http://127.0.0.1:${port}`;
  const me = await fetch(`${baseUrl}/v1/me`, { headers: { authorization: `Bearer ${adminKey}` } });
  const workspaceId = ((await me.json()) as { workspace_id: string }).workspace_id;

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  const server: StartedServer = {
    baseUrl,
    port,
    adminKey,
    runtimeKey,
    workspaceId,
    dataDir,
    databaseUrl,
    proc,
    output: () => out,
    stop: () => kill('SIGTERM'),
    kill,
    restart: (extraEnv) => startServer({ ...opts, dataDir, adminKey, runtimeKey, env: { ...opts.env, ...extraEnv } }),
    close: async () => {
      await kill('SIGTERM');
      if (pgState && pgState.running.size === 0 && pgByDataDir.get(dataDir) === pgState) {
        pgByDataDir.delete(dataDir);
        await pgState.db.drop();
      }
      // A restored snapshot can hold read-only directories: rmTree copes when the tests do not run as root.
      if (!opts.dataDir) await rmTree(dataDir);
    },
  };
  return server;
}

/** fetch with a Bearer key and optional namespace header. */
export function api(server: { baseUrl: string }, key: string | null, namespace?: string) {
  return (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (key !== null) headers.set('authorization', `Bearer ${key}`);
    if (namespace !== undefined) headers.set('x-namespace', namespace);
    return fetch(server.baseUrl + path, { ...init, headers });
  };
}
