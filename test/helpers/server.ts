/**
 * Starts the real, built Trove server (packages/server/dist/bin.js) on an
 * ephemeral port with a temp data dir and preset bootstrap keys.
 * Every end-to-end test in the repository uses this one helper.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const serverBin = join(repoRoot, 'packages/server/dist/bin.js');
export const cliBin = join(repoRoot, 'packages/cli/dist/bin.js');

export interface StartedServer {
  baseUrl: string;
  port: number;
  adminKey: string;
  runtimeKey: string;
  workspaceId: string;
  dataDir: string;
  proc: ChildProcess;
  /** Everything the server printed so far (stdout + stderr). */
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** Send a signal (e.g. SIGKILL) and wait for exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start a new server process on the same data dir / env (after stop or kill). */
  restart(extraEnv?: Record<string, string>): Promise<StartedServer>;
  /** stop() and remove the data dir. */
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  dataDir?: string;
  adminKey?: string;
  runtimeKey?: string;
  port?: number;
  args?: string[];
}

export function randomKey(): string {
  return 'trove-sk-' + randomBytes(24).toString('hex');
}

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
  // Tests can be pointed at PostgreSQL as a whole (TROVE_TEST_DATABASE_URL).
  if (process.env.TROVE_TEST_DATABASE_URL && !('TROVE_DATABASE_URL' in (opts.env ?? {}))) {
    env.TROVE_DATABASE_URL = process.env.TROVE_TEST_DATABASE_URL;
  }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const proc = spawn(process.execPath, [serverBin, ...(opts.args ?? [])], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => (out += d));
  proc.stderr!.on('data', (d: string) => (out += d));
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));

  const port = await new Promise<number>((res, rej) => {
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
    proc,
    output: () => out,
    stop: () => kill('SIGTERM'),
    kill,
    restart: (extraEnv) =>
      startServer({ ...opts, dataDir, adminKey, runtimeKey, env: { ...opts.env, ...extraEnv } }),
    close: async () => {
      await kill('SIGTERM');
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
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
