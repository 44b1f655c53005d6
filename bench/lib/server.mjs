/**
 * Starts the real built server (packages/server/bin/trove-server.cjs, which imports dist/bin.js) the way an
 * operator would: its own process, TROVE_PORT=0, a temp data dir, preset
 * bootstrap keys. Its output goes to a log file, not a pipe, so the bench
 * process never sits on the server's logging path.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
// TROVE_BENCH_SERVER_BIN: measure another build (e.g. a patched copy of dist/) with the same harness.
export const serverBin = process.env.TROVE_BENCH_SERVER_BIN ?? join(repoRoot, 'packages/server/bin/trove-server.cjs');

export const randomKey = () => 'trove-sk-' + randomBytes(24).toString('hex');

/**
 * @param {object} [opts]
 * @param {Record<string,string|undefined>} [opts.env]  extra environment (undefined removes a variable)
 * @param {string} [opts.bin]  the launcher to run (default: serverBin)
 * @param {string} [opts.cpuProfDir]  run the server under `node --cpu-prof` writing here (written on SIGTERM)
 * @param {string} [opts.logLevel]  TROVE_LOG_LEVEL; default: the server's own default
 */
export async function startServer(opts = {}) {
  // The launcher (bin/trove-server.cjs) imports ../dist/bin.js: that is what a build produces.
  const bin = opts.bin ?? serverBin;
  const built = bin.endsWith('.cjs') ? join(dirname(bin), '..', 'dist', 'bin.js') : bin;
  if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` first`);
  const dataDir = mkdtempSync(join(tmpdir(), 'trove-bench-'));
  const logPath = join(dataDir, 'server.log');
  const adminKey = randomKey();
  const runtimeKey = randomKey();
  const env = {
    ...process.env,
    TROVE_HOST: '127.0.0.1',
    TROVE_PORT: '0',
    TROVE_DATA_DIR: join(dataDir, 'data'),
    TROVE_BOOTSTRAP_ADMIN_KEY: adminKey,
    TROVE_BOOTSTRAP_RUNTIME_KEY: runtimeKey,
    TROVE_WEBHOOK_ALLOW_PRIVATE: '1',
  };
  // A bench must not silently inherit the caller's database or tuning.
  for (const k of Object.keys(env)) if (k.startsWith('TROVE_') && !(k in baseKeys)) delete env[k];
  // Opt-in: measure on PostgreSQL instead of the embedded SQLite.
  if (process.env.TROVE_BENCH_DATABASE_URL) env.TROVE_DATABASE_URL = process.env.TROVE_BENCH_DATABASE_URL;
  if (opts.logLevel) env.TROVE_LOG_LEVEL = opts.logLevel;
  // TROVE_BENCH_ENV="TROVE_CHANGES=off,TROVE_SQLITE_SYNCHRONOUS=full": server settings for an A/B run.
  for (const pair of (process.env.TROVE_BENCH_ENV ?? '').split(',').filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at < 1) throw new Error(`TROVE_BENCH_ENV: "${pair}" is not NAME=value`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  // TROVE_BENCH_NODE_ARGS: extra node flags for the server (e.g. --trace-deopt, --perf-basic-prof).
  const nodeArgs = (process.env.TROVE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  if (opts.cpuProfDir) {
    mkdirSync(opts.cpuProfDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`);
  }
  const logFd = openSync(logPath, 'a');
  const proc = spawn(process.execPath, [...nodeArgs, bin], { env, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise((res) => proc.once('exit', (code, signal) => res({ code, signal })));
  const output = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };

  let port = null;
  const deadline = Date.now() + 60_000;
  while (port === null) {
    const m = /Trove listening on http:\/\/[^\s]+:(\d+)/.exec(output());
    if (m) port = Number(m[1]);
    else if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`server exited before listening:\n${output()}`);
    } else if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`server did not print its listening line in 60 s:\n${output()}`);
    } else await sleep(50);
  }
  const baseUrl = `http://127.0.0.1:${port}`;
  const me = await fetch(`${baseUrl}/v1/me`, { headers: { authorization: `Bearer ${adminKey}` } });
  if (me.status !== 200)
    throw new Error(`GET /v1/me with the bootstrap admin key answered ${me.status}: ${await me.text()}`);
  const { workspace_id: workspaceId } = await me.json();

  let stopped = null;
  const stop = (signal = 'SIGTERM') =>
    (stopped ??= (async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const res = await exited;
      clearTimeout(timer);
      return res;
    })());

  return {
    baseUrl,
    host: '127.0.0.1',
    port,
    pid: proc.pid,
    proc,
    adminKey,
    runtimeKey,
    workspaceId,
    dataDir: join(dataDir, 'data'),
    logPath,
    output,
    stop,
    /** Stops the server and removes its temp dir (keep it with TROVE_BENCH_KEEP=1). */
    async close() {
      await stop();
      if (process.env.TROVE_BENCH_KEEP !== '1') rmSync(dataDir, { recursive: true, force: true });
      else process.stderr.write(`kept ${dataDir}\n`);
    },
  };
}

// TROVE_* variables a bench passes through from the caller on purpose.
const baseKeys = {
  TROVE_HOST: 1,
  TROVE_PORT: 1,
  TROVE_DATA_DIR: 1,
  TROVE_BOOTSTRAP_ADMIN_KEY: 1,
  TROVE_BOOTSTRAP_RUNTIME_KEY: 1,
  TROVE_WEBHOOK_ALLOW_PRIVATE: 1,
  TROVE_EXEC_INSECURE: 1,
  TROVE_EXEC_UID: 1,
  TROVE_EXEC_GID: 1,
};
