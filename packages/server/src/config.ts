/**
 * Operator configuration: environment variables, each also a command-line flag
 * (`TROVE_DATA_DIR` ⇔ `--data-dir`). docs/protocol.md "Operator settings the contract names" is the
 * contract; everything else here is ours and documented in the README.
 */
import { resolve } from 'node:path';
import type { ExecOptions } from './sandbox/runner.js';
import type { ChangesConfig } from './changes/tracker.js';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | null;
  /** SQLite's `synchronous` (TROVE_SQLITE_SYNCHRONOUS): what an answered write's event survives (docs/durability.md). */
  sqliteSynchronous: 'normal' | 'full';
  bootstrapAdminKey: string | null;
  bootstrapRuntimeKey: string | null;
  allowSignup: boolean;
  webhookAllowPrivate: boolean;
  logLevel: string;
  /** Public URL printed in `trove login` lines; defaults to http://host:port. */
  publicUrl: string | null;
  files: {
    maxUploadBytes: number;
    maxReadBytes: number;
    quotaBytes: number;
    quotaFiles: number;
    /** Free space kept from tenants on the data volume (null: 5 % of it, at most 1 GiB; 0: none). */
    minFreeBytes: number | null;
    /**
     * How long a measured namespace usage is trusted for quota checks. One node sees every write
     * (and re-measures after exec and restore), so its figure stays exact; in a cluster, other
     * nodes' writes are only seen on the next measurement.
     */
    usageCacheMs: number;
  };
  /** Exec sandbox limits; the fields are documented on ExecOptions. */
  exec: ExecOptions;
  /** What commands change in the tree, as events (changes/tracker.ts, docs/events.md). */
  changes: ChangesConfig;
  /** Background processes (processes/service.ts, docs/exec.md "Background processes"). */
  processes: {
    /** Running processes per namespace (429 exec_busy beyond). */
    maxPerNamespace: number;
    /** Running processes per server (node). */
    maxTotal: number;
    /** Output retained per stream of a process (a ring: the oldest bytes go first). */
    outputBytes: number;
    /** Records and output are kept this long after a process ends. */
    retentionMs: number;
    /** Cap on a requested timeout_ms (0 = no cap); without one a process has no wall clock. */
    maxTimeoutMs: number;
    /** RLIMIT_CPU per process of a background process (0 = none: its namespace's CPU weight shares the CPU). */
    cpuSeconds: number;
    /** Cluster: a node's running processes are marked node_lost once it has not vouched for them this long. */
    nodeLostMs: number;
  };
  webhooks: {
    attemptTimeoutMs: number;
    concurrency: number;
    /** Delays (ms) between attempts; the last one repeats until maxAgeMs. */
    retryScheduleMs: number[];
    maxAgeMs: number;
    disableAfterFailures: number;
    /** How long past the attempt timeout a node's claim on a delivery lasts (a dead node's claims lapse then). */
    leaseMarginMs: number;
  };
  snapshots: {
    retentionDays: number;
    maxPerNamespace: number;
    sweepIntervalMs: number;
  };
  rateLimit: {
    /** Requests per minute per API key; 0 = off. */
    perKeyPerMinute: number;
  };
  http: {
    /** Downloads larger than a small body go out with sendfile(2) (the native addon); false: buffered writes. */
    sendfile: boolean;
    /** The built dashboard to serve at /dashboard/; null: the one built next to the server (packages/dashboard/dist). */
    dashboardDir: string | null;
  };
  /**
   * V8's old-generation growth between full collections, in percent (TROVE_HEAP_GROWTH_PERCENT); 0 = V8's own
   * heuristic, which lets the old generation reach up to 4× what survived the last collection.
   */
  heapGrowthPercent: number;
  /** How long a client may take, phase by phase (http/slow-clients.ts). */
  timeouts: {
    /** A request body that sends nothing for this long → 408 `request_timeout`, connection closed. */
    bodyIdleMs: number;
    /** The whole request (head and body) must arrive within this; 0 = no limit (node:http requestTimeout). */
    requestMs: number;
    /** A request head must arrive within this (node:http headersTimeout). */
    headersMs: number;
    /** A connection where nothing moves is closed, unless the server is working on its answer; 0 = never (Fastify connectionTimeout). */
    connectionMs: number;
    /** An idle keep-alive connection is closed after this. */
    keepAliveMs: number;
  };
}

interface Option {
  env: string;
  flag: string;
  kind: 'string' | 'int' | 'bool';
  help: string;
}

/** Per-namespace byte quota of a new install: generous for agents' work trees, small next to a disk. */
export const DEFAULT_QUOTA_BYTES = 10 * 1024 ** 3;
/**
 * CPU weight of the exec sandboxes' group against the server's own processes (cgroup v2 scale, 100 = even).
 * Low: when tenant commands saturate the CPU, the API (answering writes, reads, listings) is served first;
 * the commands still get every core the server leaves idle. bench/README.md, "The API under command load".
 */
export const DEFAULT_EXEC_CPU_WEIGHT = 12;

/**
 * Old-generation growth between V8's full collections. V8 bounds it by the heap's size limit, which follows the
 * machine's memory, not by what the process needs: with memory to spare it lets promoted garbage pile up to 4×
 * the live heap (~30 MiB live became ~95 MiB before the next collection under bench/scale.mjs). 2.5× keeps the
 * resident size nearer the live size for a few more full collections, each a few milliseconds on a heap this
 * size. Tighter costs throughput where requests carry large buffers: V8 counts them towards the same limit, and
 * at 1.5× 1 MiB uploads ran 38 % slower from full collections alone (bench/README.md, issue 20).
 */
export const DEFAULT_HEAP_GROWTH_PERCENT = 150;

/** Every knob, in one table: env name, flag, type and one-line help. */
export const OPTIONS: Option[] = [
  { env: 'TROVE_HOST', flag: 'host', kind: 'string', help: 'Interface to listen on (default 127.0.0.1)' },
  { env: 'TROVE_PORT', flag: 'port', kind: 'int', help: 'Port (default 8080; 0 = pick a free port)' },
  {
    env: 'TROVE_DATA_DIR',
    flag: 'data-dir',
    kind: 'string',
    help: 'Database, namespace trees, snapshots (default ./.trove)',
  },
  {
    env: 'TROVE_SQLITE_SYNCHRONOUS',
    flag: 'sqlite-synchronous',
    kind: 'string',
    help: "SQLite: full = an answered write's event survives a power cut too (an fsync per commit batch); normal = it survives a crash of the server, not of the OS (default normal)",
  },
  {
    env: 'TROVE_DATABASE_URL',
    flag: 'database-url',
    kind: 'string',
    help: 'postgres://… for PostgreSQL (default: SQLite in the data dir)',
  },
  {
    env: 'TROVE_BOOTSTRAP_ADMIN_KEY',
    flag: 'bootstrap-admin-key',
    kind: 'string',
    help: 'Admin key to create on first start',
  },
  {
    env: 'TROVE_BOOTSTRAP_RUNTIME_KEY',
    flag: 'bootstrap-runtime-key',
    kind: 'string',
    help: 'Workspace key to create on first start',
  },
  { env: 'TROVE_ALLOW_SIGNUP', flag: 'allow-signup', kind: 'bool', help: 'Enable POST /v1/workspaces' },
  {
    env: 'TROVE_WEBHOOK_ALLOW_PRIVATE',
    flag: 'webhook-allow-private',
    kind: 'bool',
    help: 'Allow webhooks to loopback/private addresses',
  },
  { env: 'TROVE_EXEC_TIMEOUT_MS', flag: 'exec-timeout-ms', kind: 'int', help: 'Exec wall-clock limit (default 30000)' },
  { env: 'TROVE_EXEC_NETWORK', flag: 'exec-network', kind: 'bool', help: 'Give exec network access (default off)' },
  {
    env: 'TROVE_EXEC_INSECURE',
    flag: 'exec-insecure',
    kind: 'bool',
    help: 'DANGEROUS: run exec without a sandbox (development only)',
  },
  {
    env: 'TROVE_EXEC_UID',
    flag: 'exec-uid',
    kind: 'int',
    help: 'Unprivileged uid exec runs as (default 64000 when root)',
  },
  {
    env: 'TROVE_EXEC_GID',
    flag: 'exec-gid',
    kind: 'int',
    help: 'Unprivileged gid exec runs as (default 64000 when root)',
  },
  {
    env: 'TROVE_EXEC_MAX_OUTPUT_BYTES',
    flag: 'exec-max-output-bytes',
    kind: 'int',
    help: 'Cap per output stream (default 10 MiB)',
  },
  {
    env: 'TROVE_EXEC_CPU_SECONDS',
    flag: 'exec-cpu-seconds',
    kind: 'int',
    help: 'CPU-time limit per exec (default 60)',
  },
  {
    env: 'TROVE_EXEC_MEMORY_BYTES',
    flag: 'exec-memory-bytes',
    kind: 'int',
    help: 'Memory limit per exec (default 1 GiB)',
  },
  { env: 'TROVE_EXEC_MAX_PROCS', flag: 'exec-max-procs', kind: 'int', help: 'Process limit per exec (default 128)' },
  {
    env: 'TROVE_EXEC_MAX_FILE_BYTES',
    flag: 'exec-max-file-bytes',
    kind: 'int',
    help: 'Largest file an exec may write (default 1 GiB)',
  },
  {
    env: 'TROVE_EXEC_CONCURRENCY',
    flag: 'exec-concurrency',
    kind: 'int',
    help: 'Running execs per server (default 16)',
  },
  {
    env: 'TROVE_EXEC_NS_CONCURRENCY',
    flag: 'exec-ns-concurrency',
    kind: 'int',
    help: 'Running execs per namespace (default 4)',
  },
  {
    env: 'TROVE_EXEC_WORKSPACE_CONCURRENCY',
    flag: 'exec-workspace-concurrency',
    kind: 'int',
    help: 'Running execs per workspace (default: half of --exec-concurrency, rounded up)',
  },
  {
    env: 'TROVE_EXEC_QUEUE_TIMEOUT_MS',
    flag: 'exec-queue-timeout-ms',
    kind: 'int',
    help: 'Max wait for an exec slot before 429 (default: --exec-timeout-ms)',
  },
  {
    env: 'TROVE_EXEC_WARM_IDLE_MS',
    flag: 'exec-warm-idle-ms',
    kind: 'int',
    help: "A namespace's warm sandbox is stopped after this long without a command (default 300000)",
  },
  {
    env: 'TROVE_EXEC_WARM_MAX',
    flag: 'exec-warm-max',
    kind: 'int',
    help: 'Warm sandboxes kept while idle, least recently used stopped first (default 256)',
  },
  {
    env: 'TROVE_EXEC_POOL_SIZE',
    flag: 'exec-pool-size',
    kind: 'int',
    help: "Pre-made sandboxes kept ready for namespaces' first commands, root only (default 8; 0 = none)",
  },
  {
    env: 'TROVE_NS_MEMORY_BYTES',
    flag: 'ns-memory-bytes',
    kind: 'int',
    help: 'Memory of all running execs of a namespace together, cgroup (default 2 GiB; 0 = none)',
  },
  {
    env: 'TROVE_NS_MAX_PROCS',
    flag: 'ns-max-procs',
    kind: 'int',
    help: 'Processes of all running execs of a namespace together, cgroup (default 256; 0 = none)',
  },
  {
    env: 'TROVE_NS_CPU_WEIGHT',
    flag: 'ns-cpu-weight',
    kind: 'int',
    help: 'CPU weight of each namespace against the others, 1-10000 (default 100: even shares)',
  },
  {
    env: 'TROVE_EXEC_CPU_WEIGHT',
    flag: 'exec-cpu-weight',
    kind: 'int',
    help: "CPU weight of all exec sandboxes together against the server's own processes, 1-10000 (default 12: a busy API keeps its latency while commands saturate the CPU; 100 = even)",
  },
  {
    env: 'TROVE_CGROUP_PARENT',
    flag: 'cgroup-parent',
    kind: 'string',
    help: "Delegated cgroup v2 directory for exec groups (default: cgroup v1 if mounted, else the server's own v2 group)",
  },
  {
    env: 'TROVE_CHANGES',
    flag: 'changes',
    kind: 'string',
    help: "Commands' file changes as events: auto (fanotify when root, else before/after scans of one-shot execs), fanotify, scan or off (default auto)",
  },
  {
    env: 'TROVE_CHANGES_MAX_PER_COMMAND',
    flag: 'changes-max-per-command',
    kind: 'int',
    help: 'Paths recorded per command (per window of a background process) before one files.changed summary (default 1000)',
  },
  {
    env: 'TROVE_CHANGES_WINDOW_MS',
    flag: 'changes-window-ms',
    kind: 'int',
    help: "A background process's changes are recorded this often (default 100)",
  },
  {
    env: 'TROVE_CHANGES_SCAN_MAX_FILES',
    flag: 'changes-scan-max-files',
    kind: 'int',
    help: 'Scan mode: entries compared per one-shot exec at most (default 20000)',
  },
  {
    env: 'TROVE_PROCESS_MAX_PER_NAMESPACE',
    flag: 'process-max-per-namespace',
    kind: 'int',
    help: 'Running background processes per namespace (default 16)',
  },
  {
    env: 'TROVE_PROCESS_MAX_TOTAL',
    flag: 'process-max-total',
    kind: 'int',
    help: 'Running background processes per server (default 256)',
  },
  {
    env: 'TROVE_PROCESS_OUTPUT_BYTES',
    flag: 'process-output-bytes',
    kind: 'int',
    help: 'Output kept per stream of a background process, oldest dropped first (default 16 MiB)',
  },
  {
    env: 'TROVE_PROCESS_RETENTION_MS',
    flag: 'process-retention-ms',
    kind: 'int',
    help: "Keep a background process's record and output this long after it ends (default 86400000 = 24 h)",
  },
  {
    env: 'TROVE_PROCESS_MAX_TIMEOUT_MS',
    flag: 'process-max-timeout-ms',
    kind: 'int',
    help: "Cap on a background process's timeout_ms (default 86400000 = 24 h; 0 = no cap); default timeout: none",
  },
  {
    env: 'TROVE_PROCESS_NODE_LOST_MS',
    flag: 'process-node-lost-ms',
    kind: 'int',
    help: "Cluster: another node's running processes are marked node_lost after it has not vouched for them this long (default 45000)",
  },
  {
    env: 'TROVE_PROCESS_CPU_SECONDS',
    flag: 'process-cpu-seconds',
    kind: 'int',
    help: 'CPU-time limit per process of a background process (default 0 = none)',
  },
  { env: 'TROVE_MAX_UPLOAD_BYTES', flag: 'max-upload-bytes', kind: 'int', help: 'Largest upload (default 5 GiB)' },
  {
    env: 'TROVE_MAX_READ_BYTES',
    flag: 'max-read-bytes',
    kind: 'int',
    help: 'GET /files cap before truncation (default 100 MiB)',
  },
  {
    env: 'TROVE_QUOTA_BYTES',
    flag: 'quota-bytes',
    kind: 'int',
    help: 'Bytes per namespace, what exec writes included (default 10 GiB; 0 = unlimited)',
  },
  { env: 'TROVE_QUOTA_FILES', flag: 'quota-files', kind: 'int', help: 'Files per namespace (default 0 = unlimited)' },
  {
    env: 'TROVE_MIN_FREE_BYTES',
    flag: 'min-free-bytes',
    kind: 'int',
    help: 'Free space on the data volume kept from tenant writes and execs (default 5 % of it, at most 1 GiB; 0 = none)',
  },
  {
    env: 'TROVE_QUOTA_CACHE_MS',
    flag: 'quota-cache-ms',
    kind: 'int',
    help: 'Re-measure a namespace for quota checks after this long (default 30000; 2000 with PostgreSQL)',
  },
  {
    env: 'TROVE_WEBHOOK_TIMEOUT_MS',
    flag: 'webhook-timeout-ms',
    kind: 'int',
    help: 'Per-attempt delivery timeout (default 10000)',
  },
  {
    env: 'TROVE_WEBHOOK_CONCURRENCY',
    flag: 'webhook-concurrency',
    kind: 'int',
    help: 'Concurrent deliveries per node (default 16)',
  },
  {
    env: 'TROVE_WEBHOOK_RETRY_SCHEDULE',
    flag: 'webhook-retry-schedule',
    kind: 'string',
    help: 'Comma list of retry delays in ms (default 1s,5s,30s,2m,10m,30m,1h,2h,4h)',
  },
  {
    env: 'TROVE_WEBHOOK_MAX_AGE_MS',
    flag: 'webhook-max-age-ms',
    kind: 'int',
    help: 'Give up on a delivery after this long (default 26 h)',
  },
  {
    env: 'TROVE_WEBHOOK_DISABLE_AFTER',
    flag: 'webhook-disable-after',
    kind: 'int',
    help: 'Disable an endpoint after N consecutive failed deliveries (default 50)',
  },
  {
    env: 'TROVE_WEBHOOK_LEASE_MARGIN_MS',
    flag: 'webhook-lease-margin-ms',
    kind: 'int',
    help: "Cluster: a dead node's in-flight deliveries are retried this long after the attempt timeout (default 30000)",
  },
  {
    env: 'TROVE_SNAPSHOT_RETENTION_DAYS',
    flag: 'snapshot-retention-days',
    kind: 'int',
    help: 'Delete snapshots older than this (default 30)',
  },
  {
    env: 'TROVE_SNAPSHOT_MAX_PER_NAMESPACE',
    flag: 'snapshot-max-per-namespace',
    kind: 'int',
    help: 'Keep at most N snapshots per namespace (default 100)',
  },
  {
    env: 'TROVE_BODY_IDLE_TIMEOUT_MS',
    flag: 'body-idle-timeout-ms',
    kind: 'int',
    help: 'A request body that sends nothing for this long gets 408 and the connection closed (default 30000)',
  },
  {
    env: 'TROVE_REQUEST_TIMEOUT_MS',
    flag: 'request-timeout-ms',
    kind: 'int',
    help: 'A whole request, upload included, must arrive within this (default 3600000 = 1 h; 0 = no limit)',
  },
  {
    env: 'TROVE_HEADERS_TIMEOUT_MS',
    flag: 'headers-timeout-ms',
    kind: 'int',
    help: 'A request head must arrive within this (default 30000)',
  },
  {
    env: 'TROVE_CONNECTION_TIMEOUT_MS',
    flag: 'connection-timeout-ms',
    kind: 'int',
    help: 'Close a connection idle this long unless the server is still working on its answer (default 120000; 0 = never; else >= 65000)',
  },
  {
    env: 'TROVE_KEEP_ALIVE_TIMEOUT_MS',
    flag: 'keep-alive-timeout-ms',
    kind: 'int',
    help: 'Close an idle keep-alive connection after this (default 72000)',
  },
  {
    env: 'TROVE_RATE_LIMIT_PER_MINUTE',
    flag: 'rate-limit-per-minute',
    kind: 'int',
    help: 'Requests per minute per key (default 0 = off)',
  },
  {
    env: 'TROVE_NATIVE_IO',
    flag: 'native-io',
    kind: 'bool',
    help: 'Send large downloads with sendfile (default 1; 0 = buffered writes, for comparisons)',
  },
  {
    env: 'TROVE_DASHBOARD_DIR',
    flag: 'dashboard-dir',
    kind: 'string',
    help: 'Serve the dashboard built in this directory (default: packages/dashboard/dist)',
  },
  {
    env: 'TROVE_HEAP_GROWTH_PERCENT',
    flag: 'heap-growth-percent',
    kind: 'int',
    help: "How far V8's heap may grow past what survived its last full collection before the next (default 150; 0 = V8's own, up to 300 %)",
  },
  { env: 'TROVE_PUBLIC_URL', flag: 'public-url', kind: 'string', help: 'URL clients use, for printed login lines' },
  { env: 'TROVE_LOG_LEVEL', flag: 'log-level', kind: 'string', help: 'pino level (default info)' },
];

export class ConfigError extends Error {}

/** Parses `--flag value`, `--flag=value` and boolean `--flag` into env-style names. */
export function parseFlags(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`Unexpected argument: ${arg}`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const opt = OPTIONS.find((o) => o.flag === name);
    if (!opt) throw new ConfigError(`Unknown flag --${name} (see trove-server --help)`);
    if (eq !== -1) out[opt.env] = arg.slice(eq + 1);
    else if (opt.kind === 'bool') out[opt.env] = '1';
    else {
      const v = argv[++i];
      if (v === undefined) throw new ConfigError(`--${name} needs a value`);
      out[opt.env] = v;
    }
  }
  return out;
}

/** Flags win over environment variables. */
export function loadConfig(env: NodeJS.ProcessEnv, argv: string[] = []): Config {
  const src: Record<string, string | undefined> = { ...env, ...parseFlags(argv) };
  const str = (name: string) => {
    const v = src[name];
    return v === undefined || v === '' ? null : v;
  };
  const int = (name: string, def: number) => {
    const v = str(name);
    if (v === null) return def;
    if (!/^\d+$/.test(v.trim())) throw new ConfigError(`${name} must be a non-negative integer, got "${v}"`);
    return Number(v);
  };
  const bool = (name: string, def = false) => {
    const v = str(name);
    if (v === null) return def;
    if (/^(1|true|yes|on)$/i.test(v)) return true;
    if (/^(0|false|no|off)$/i.test(v)) return false;
    throw new ConfigError(`${name} must be 1 or 0, got "${v}"`);
  };
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const port = int('TROVE_PORT', 8080);
  if (port > 65535) throw new ConfigError(`TROVE_PORT must be 0-65535, got ${port}`);
  const databaseUrl = str('TROVE_DATABASE_URL');
  const sqliteSynchronous = (str('TROVE_SQLITE_SYNCHRONOUS') ?? 'normal').toLowerCase();
  if (sqliteSynchronous !== 'normal' && sqliteSynchronous !== 'full') {
    throw new ConfigError(`TROVE_SQLITE_SYNCHRONOUS must be normal or full, got "${sqliteSynchronous}"`);
  }
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('TROVE_DATABASE_URL must start with postgres:// (leave it unset for embedded SQLite)');
  }
  const schedule = (
    str('TROVE_WEBHOOK_RETRY_SCHEDULE') ?? '1000,5000,30000,120000,600000,1800000,3600000,7200000,14400000'
  )
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      if (!/^\d+$/.test(s))
        throw new ConfigError(`TROVE_WEBHOOK_RETRY_SCHEDULE must be a comma list of milliseconds, got "${s}"`);
      return Number(s);
    });
  if (schedule.length === 0) throw new ConfigError('TROVE_WEBHOOK_RETRY_SCHEDULE must not be empty');
  for (const name of ['TROVE_BOOTSTRAP_ADMIN_KEY', 'TROVE_BOOTSTRAP_RUNTIME_KEY']) {
    const k = str(name);
    if (k !== null && (k.length < 16 || !/^[\x21-\x7e]+$/.test(k))) {
      throw new ConfigError(`${name} must be at least 16 printable characters without spaces`);
    }
  }
  const timeouts = {
    bodyIdleMs: int('TROVE_BODY_IDLE_TIMEOUT_MS', 30_000),
    requestMs: int('TROVE_REQUEST_TIMEOUT_MS', 3600_000),
    headersMs: int('TROVE_HEADERS_TIMEOUT_MS', 30_000),
    connectionMs: int('TROVE_CONNECTION_TIMEOUT_MS', 120_000),
    keepAliveMs: int('TROVE_KEEP_ALIVE_TIMEOUT_MS', 72_000),
  };
  for (const [name, v] of [
    ['TROVE_BODY_IDLE_TIMEOUT_MS', timeouts.bodyIdleMs],
    ['TROVE_HEADERS_TIMEOUT_MS', timeouts.headersMs],
    ['TROVE_KEEP_ALIVE_TIMEOUT_MS', timeouts.keepAliveMs],
  ] as const) {
    // No "off": these are what keep slow clients from holding connections.
    if (v === 0) throw new ConfigError(`${name} must be at least 1, got 0`);
  }
  if (timeouts.requestMs > 0 && timeouts.headersMs > timeouts.requestMs) {
    throw new ConfigError('TROVE_HEADERS_TIMEOUT_MS must not exceed TROVE_REQUEST_TIMEOUT_MS');
  }
  // Event streams may be silent for up to 60 s between heartbeats (?heartbeat=60).
  if (timeouts.connectionMs > 0 && timeouts.connectionMs < 65_000) {
    throw new ConfigError(
      `TROVE_CONNECTION_TIMEOUT_MS must be 0 or at least 65000 (event streams send a heartbeat every 60 s at most), got ${timeouts.connectionMs}`,
    );
  }
  const nsCpuWeight = int('TROVE_NS_CPU_WEIGHT', 100);
  if (nsCpuWeight < 1 || nsCpuWeight > 10_000)
    throw new ConfigError(`TROVE_NS_CPU_WEIGHT must be 1-10000, got ${nsCpuWeight}`);
  const execCpuWeight = int('TROVE_EXEC_CPU_WEIGHT', DEFAULT_EXEC_CPU_WEIGHT);
  if (execCpuWeight < 1 || execCpuWeight > 10_000)
    throw new ConfigError(`TROVE_EXEC_CPU_WEIGHT must be 1-10000, got ${execCpuWeight}`);
  const cgroupParent = str('TROVE_CGROUP_PARENT');
  if (cgroupParent !== null && !cgroupParent.startsWith('/')) {
    throw new ConfigError(
      `TROVE_CGROUP_PARENT must be an absolute path (a directory in a cgroup2 file system), got "${cgroupParent}"`,
    );
  }
  const processes = {
    maxPerNamespace: int('TROVE_PROCESS_MAX_PER_NAMESPACE', 16),
    maxTotal: int('TROVE_PROCESS_MAX_TOTAL', 256),
    outputBytes: int('TROVE_PROCESS_OUTPUT_BYTES', 16 * 1024 ** 2),
    retentionMs: int('TROVE_PROCESS_RETENTION_MS', 24 * 3600_000),
    maxTimeoutMs: int('TROVE_PROCESS_MAX_TIMEOUT_MS', 24 * 3600_000),
    cpuSeconds: int('TROVE_PROCESS_CPU_SECONDS', 0),
    nodeLostMs: int('TROVE_PROCESS_NODE_LOST_MS', 45_000),
  };
  if (processes.nodeLostMs < 1000)
    throw new ConfigError(`TROVE_PROCESS_NODE_LOST_MS must be at least 1000, got ${processes.nodeLostMs}`);
  if (processes.outputBytes < 1024)
    throw new ConfigError(`TROVE_PROCESS_OUTPUT_BYTES must be at least 1024, got ${processes.outputBytes}`);
  const changesMode = str('TROVE_CHANGES') ?? 'auto';
  if (changesMode !== 'auto' && changesMode !== 'fanotify' && changesMode !== 'scan' && changesMode !== 'off') {
    throw new ConfigError(`TROVE_CHANGES must be auto, fanotify, scan or off, got "${changesMode}"`);
  }
  const changes: ChangesConfig = {
    mode: changesMode,
    maxPerCommand: int('TROVE_CHANGES_MAX_PER_COMMAND', 1000),
    windowMs: int('TROVE_CHANGES_WINDOW_MS', 100),
    scanMaxFiles: int('TROVE_CHANGES_SCAN_MAX_FILES', 20_000),
  };
  if (changes.maxPerCommand < 1)
    throw new ConfigError(`TROVE_CHANGES_MAX_PER_COMMAND must be at least 1, got ${changes.maxPerCommand}`);
  if (changes.windowMs < 10 || changes.windowMs > 60_000)
    throw new ConfigError(`TROVE_CHANGES_WINDOW_MS must be 10-60000, got ${changes.windowMs}`);
  if (changes.scanMaxFiles < 1)
    throw new ConfigError(`TROVE_CHANGES_SCAN_MAX_FILES must be at least 1, got ${changes.scanMaxFiles}`);
  const heapGrowthPercent = int('TROVE_HEAP_GROWTH_PERCENT', DEFAULT_HEAP_GROWTH_PERCENT);
  if (heapGrowthPercent > 1000)
    throw new ConfigError(`TROVE_HEAP_GROWTH_PERCENT must be 0-1000, got ${heapGrowthPercent}`);
  const uidDefault = isRoot ? 64000 : (process.getuid?.() ?? 0);
  const gidDefault = isRoot ? 64000 : (process.getgid?.() ?? 0);
  return {
    host: str('TROVE_HOST') ?? '127.0.0.1',
    port,
    dataDir: resolve(str('TROVE_DATA_DIR') ?? './.trove'),
    databaseUrl,
    sqliteSynchronous,
    bootstrapAdminKey: str('TROVE_BOOTSTRAP_ADMIN_KEY'),
    bootstrapRuntimeKey: str('TROVE_BOOTSTRAP_RUNTIME_KEY'),
    allowSignup: bool('TROVE_ALLOW_SIGNUP'),
    webhookAllowPrivate: bool('TROVE_WEBHOOK_ALLOW_PRIVATE'),
    logLevel: str('TROVE_LOG_LEVEL') ?? 'info',
    publicUrl: str('TROVE_PUBLIC_URL'),
    files: {
      maxUploadBytes: int('TROVE_MAX_UPLOAD_BYTES', 5 * 1024 ** 3),
      maxReadBytes: int('TROVE_MAX_READ_BYTES', 100 * 1024 ** 2),
      quotaBytes: int('TROVE_QUOTA_BYTES', DEFAULT_QUOTA_BYTES),
      minFreeBytes: str('TROVE_MIN_FREE_BYTES') === null ? null : int('TROVE_MIN_FREE_BYTES', 0),
      quotaFiles: int('TROVE_QUOTA_FILES', 0),
      usageCacheMs: int('TROVE_QUOTA_CACHE_MS', databaseUrl ? 2_000 : 30_000),
    },
    exec: {
      timeoutMs: int('TROVE_EXEC_TIMEOUT_MS', 30_000),
      network: bool('TROVE_EXEC_NETWORK'),
      insecure: bool('TROVE_EXEC_INSECURE'),
      hostPath: env.PATH || undefined,
      uid: int('TROVE_EXEC_UID', uidDefault),
      gid: int('TROVE_EXEC_GID', gidDefault),
      maxOutputBytes: int('TROVE_EXEC_MAX_OUTPUT_BYTES', 10 * 1024 ** 2),
      cpuSeconds: int('TROVE_EXEC_CPU_SECONDS', 60),
      memoryBytes: int('TROVE_EXEC_MEMORY_BYTES', 1024 ** 3),
      maxProcs: int('TROVE_EXEC_MAX_PROCS', 128),
      maxFileBytes: int('TROVE_EXEC_MAX_FILE_BYTES', 1024 ** 3),
      maxOpenFiles: 1024,
      perNamespaceConcurrency: Math.max(1, int('TROVE_EXEC_NS_CONCURRENCY', 4)),
      perWorkspaceConcurrency: Math.max(
        1,
        int('TROVE_EXEC_WORKSPACE_CONCURRENCY', Math.ceil(int('TROVE_EXEC_CONCURRENCY', 16) / 2)),
      ),
      globalConcurrency: Math.max(1, int('TROVE_EXEC_CONCURRENCY', 16)),
      // A queued exec may wait as long as it may run: a burst drains slowly on a small machine (limiter.ts).
      queueTimeoutMs: int('TROVE_EXEC_QUEUE_TIMEOUT_MS', int('TROVE_EXEC_TIMEOUT_MS', 30_000)),
      warmIdleMs: Math.max(1000, int('TROVE_EXEC_WARM_IDLE_MS', 5 * 60_000)),
      warmMax: Math.max(1, int('TROVE_EXEC_WARM_MAX', 256)),
      poolSize: Math.max(0, int('TROVE_EXEC_POOL_SIZE', 8)),
      nsMemoryBytes: int('TROVE_NS_MEMORY_BYTES', 2 * 1024 ** 3),
      nsMaxProcs: int('TROVE_NS_MAX_PROCS', 256),
      nsCpuWeight,
      execCpuWeight,
      cgroupParent,
      backgroundProcesses: processes.maxTotal,
    },
    changes,
    processes,
    webhooks: {
      attemptTimeoutMs: int('TROVE_WEBHOOK_TIMEOUT_MS', 10_000),
      concurrency: Math.max(1, int('TROVE_WEBHOOK_CONCURRENCY', 16)),
      retryScheduleMs: schedule,
      maxAgeMs: int('TROVE_WEBHOOK_MAX_AGE_MS', 26 * 3600_000),
      disableAfterFailures: int('TROVE_WEBHOOK_DISABLE_AFTER', 50),
      leaseMarginMs: int('TROVE_WEBHOOK_LEASE_MARGIN_MS', 30_000),
    },
    snapshots: {
      retentionDays: int('TROVE_SNAPSHOT_RETENTION_DAYS', 30),
      maxPerNamespace: int('TROVE_SNAPSHOT_MAX_PER_NAMESPACE', 100),
      sweepIntervalMs: 10 * 60_000,
    },
    rateLimit: { perKeyPerMinute: int('TROVE_RATE_LIMIT_PER_MINUTE', 0) },
    http: { sendfile: bool('TROVE_NATIVE_IO', true), dashboardDir: str('TROVE_DASHBOARD_DIR') ?? null },
    heapGrowthPercent,
    timeouts,
  };
}
