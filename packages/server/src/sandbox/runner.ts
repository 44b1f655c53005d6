/**
 * Runs agents' shell commands in a bubblewrap sandbox over their namespace
 * tree. docs/exec.md describes the isolation model and its limits.
 *
 * Each namespace has one warm sandbox (warm.ts): a bwrap process tree holding
 * its namespaces and mounts, made on first use, stopped when idle. Each exec
 * enters it with trove-enter (native/trove_enter.c): the exec's own cgroup,
 * a private /tmp, /dev/shm and HOME, and a supervisor that kills whatever the
 * command leaves behind. The server never forks anything itself: the launcher
 * process does (launcher.ts), and bwrap's --die-with-parent takes the
 * sandboxes down if that process dies.
 */
import {
  accessSync,
  constants as fsConstants,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statfsSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { AppError } from '../errors.js';
import { fileURLToPath } from 'node:url';
import {
  SANDBOX_COMMAND_FILE,
  SANDBOX_HOME,
  SANDBOX_PATH,
  SANDBOX_USER,
  SANDBOX_WORKSPACE,
  SandboxLayout,
  etcSignature,
  prepareEtc,
} from './bwrap.js';
import { CgroupPool, nsGroupName, peakFiles, type CgroupSlot, type CgroupStatus } from './cgroups.js';
import { TIMEOUT_EXIT_CODE, type EnterSpawn, type LaunchSpec, type SandboxInfo, type SignalName } from './launch.js';
import {
  Launcher,
  LauncherGoneError,
  type ControlResult,
  type LaunchHandle,
  type LaunchHooks,
  type Launched,
  type RingOutput,
  type RingTotals,
} from './launcher.js';
import type { StreamName } from './ring-writer.js';
import { Reaper, removeStaleRuntimeDirs } from './reaper.js';
import { ExecLimiter, LimiterBusyError, type Release } from './limiter.js';
import { CappedOutput } from './output.js';
import { MAX_INLINE_COMMAND_BYTES, buildScript, type ScriptLimits } from './script.js';
import { buildSeccompFilter } from './seccomp.js';
import { WarmSandboxes, type WarmHandle, type WarmLease } from './warm.js';
import type { ChangeHooks, ChangeTrackingStatus, ChangeUnit } from '../changes/tracker.js';
import { newExecId } from '../ids.js';

export interface ExecOptions {
  /** Wall clock per exec (TROVE_EXEC_TIMEOUT_MS, default 30000). */
  timeoutMs: number;
  /** Share the host network (TROVE_EXEC_NETWORK=1); default: an empty network namespace. */
  network: boolean;
  /** No sandbox at all: a plain `sh -c` as the server user (TROVE_EXEC_INSECURE=1, development only). */
  insecure: boolean;
  /**
   * The server's own PATH: where bwrap is looked for after the system directories, the sandbox launcher's
   * PATH and an insecure exec's. Default: the sandbox's PATH (SANDBOX_PATH).
   */
  hostPath?: string;
  /** Unprivileged ids commands run as when the server is root (default 64000/64000). */
  uid: number;
  gid: number;
  /** Cap per output stream (default 10 MiB); the rest is drained and the text marked. */
  maxOutputBytes: number;
  cpuSeconds: number;
  memoryBytes: number;
  maxProcs: number;
  maxFileBytes: number;
  maxOpenFiles: number;
  perNamespaceConcurrency: number;
  /** Running execs per workspace (default: half the global slots, rounded up): no tenant takes every slot. */
  perWorkspaceConcurrency: number;
  globalConcurrency: number;
  queueTimeoutMs: number;
  /**
   * Limits of a namespace's cgroup, shared by all its running execs (TROVE_NS_MEMORY_BYTES,
   * TROVE_NS_MAX_PROCS, TROVE_NS_CPU_WEIGHT); 0 or absent = none of its own (only the per-exec caps).
   */
  nsMemoryBytes?: number;
  nsMaxProcs?: number;
  /** CPU weight of each namespace against the others (cgroup v2 scale 1–10000, 100 = even). */
  nsCpuWeight?: number;
  /** CPU weight of all sandboxes together against the server's own processes (TROVE_EXEC_CPU_WEIGHT). */
  execCpuWeight?: number;
  /**
   * A delegated cgroup v2 group to make exec groups under (TROVE_CGROUP_PARENT); absent: cgroup v1
   * when mounted, else the server's own v2 group.
   */
  cgroupParent?: string | null;
  /** An idle warm sandbox is stopped after this long (TROVE_EXEC_WARM_IDLE_MS, default 5 min). */
  warmIdleMs?: number;
  /** Idle warm sandboxes kept at most, least recently used stopped first (TROVE_EXEC_WARM_MAX, default 256). */
  warmMax?: number;
  /**
   * Pre-made generic sandboxes kept ready for namespaces' first commands (TROVE_EXEC_POOL_SIZE, default
   * DEFAULT_POOL_SIZE; 0 disables). Root only: a non-root server makes every sandbox on its first call's path.
   */
  poolSize?: number;
  /**
   * Background processes the server may run at once (TROVE_PROCESS_MAX_TOTAL): part of the shared
   * RLIMIT_NPROC backstop of the exec uid, which counts their processes too.
   */
  backgroundProcesses?: number;
}

export interface ExecRequest {
  workspaceId: string;
  namespace: string;
  /** Host directory of the namespace tree (may be a symlink; it is realpath'd). Created if missing. */
  nsRoot: string;
  command: string;
  /** UTF-8 text for the command's stdin; absent = /dev/null. */
  stdin?: string;
  /** Source workspace/.trove/init.sh first when it exists. */
  sourceInit: boolean;
  /** Overrides ExecOptions.timeoutMs for this call. */
  timeoutMs?: number;
  /** Change tracking: told the command's cgroup slot before the command runs in it (set by run/startProcess). */
  onSlot?: (slot: CgroupSlot | null) => void;
}

/**
 * Why a command ended: `exited` (on its own), `signaled` (exit code 128+N: a
 * shell's report of a process killed by signal N), `oom` (the kernel's OOM
 * killer killed one of its processes: its memory limit or its namespace's was
 * reached), `timeout` (the wall clock).
 */
export type ExitReason = 'exited' | 'signaled' | 'oom' | 'timeout';

/** Live exec: output as the command produces it (POST /v1/exec with streaming). */
export interface ExecLive {
  /** The sandbox came up: the command runs (a refusal such as exec_busy can no longer happen). */
  ready(): void;
  /**
   * A piece of output, in order within its stream, at most maxOutputBytes per stream in all (the rest is
   * counted: ExecResult.*Truncated). A returned promise holds the command's output until it settles.
   */
  output(stream: StreamName, data: Buffer): Promise<void> | void;
  /** Aborted when the consumer goes away: the command runs on, its output is no longer passed on. */
  signal?: AbortSignal;
}

/** A background process to start (ProcessService). */
export interface ProcessRequest extends Omit<ExecRequest, 'timeoutMs'> {
  /** Wall clock; null = none. */
  timeoutMs: number | null;
  /** Added to the sandbox environment (names checked by the caller). */
  env?: Record<string, string>;
  /** stdin stays open after `stdin` for later writes. */
  keepStdinOpen: boolean;
  /** Where the launcher writes the output (ring files). */
  output: RingOutput;
  /** RLIMIT_CPU per process (0 = none). */
  cpuSeconds: number;
  /** The process's id: what its change events name (process_id). */
  processId?: string;
}

/**
 * Why a background process ended, beyond ExitReason: `killed` (stopped by a client's SIGKILL, a namespace
 * restore or delete, or the launcher's death), `server_restart` (the server shut down).
 */
export type ProcessEndReason = ExitReason | 'killed' | 'server_restart';

export interface ProcessOutcome {
  exitCode: number;
  /** exited, signaled, oom or timeout as for exec; the caller refines signaled/killed with what it sent. */
  exitReason: ExitReason;
  durationMs: number;
  timedOut: boolean;
  /** Killed by SandboxRunner.close() (server shutdown). */
  shutdown: boolean;
  /** Killed by stop() or a SIGKILL signal. */
  stopped: boolean;
  /** The launcher died (its sandboxes with it); ring totals are then unknown here. */
  launcherGone: boolean;
  ring: RingTotals | null;
  /** The output could not be written (the process was stopped then). */
  outputError?: string;
}

/** A running background process. */
export interface BackgroundProcess {
  done: Promise<ProcessOutcome>;
  /** Queues stdin bytes (null: none) and closes stdin after them when `close`. */
  stdin(data: Buffer | null, close: boolean): Promise<ControlResult>;
  signal(signal: SignalName): Promise<ControlResult>;
  /** SIGKILLs the whole tree (restore, delete); done settles once it is gone. */
  stop(): void;
}

export interface ExecResult {
  /** What the command's change events name (exec_id). */
  execId: string;
  /** The shell's exit code; 128+N when killed by signal N; 124 after a timeout. */
  exitCode: number;
  exitReason: ExitReason;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

export interface SandboxStatus {
  available: boolean;
  mode: 'bubblewrap' | 'insecure' | 'unavailable';
  /** Why exec is unavailable (operator-facing). */
  reason?: string;
  /** How to fix it (operator-facing). */
  fix?: string;
  /** The exec cgroups: v1, v2 or none, and what is missing (for the admin health view). */
  cgroups: CgroupStatus;
  /** Warm namespace sandboxes: how many run, how many hold no command, and the pool's bounds. */
  warm: { running: number; idle: number; max: number; idleMs: number };
  /**
   * Pre-made sandboxes (root only): the configured size (0 when off or not root), how many are ready or
   * being made, how many namespaces claimed one, and how many claims failed (each such sandbox was stopped).
   */
  pool: { size: number; ready: number; making: number; claimed: number; failed: number };
  /** Change tracking of commands (src/changes/); null when the tracker is not wired. */
  changes: ChangeTrackingStatus | null;
}

export interface ExecLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export { TIMEOUT_EXIT_CODE };
const RETRY_UNAVAILABLE_S = 30;
const RETRY_BUSY_S = 1;
const BUSY_WHERE = {
  namespace: 'in this namespace',
  workspace: 'in this workspace',
  global: 'on this server',
} as const;
const REPROBE_MS = 30_000;
const PROBE_TIMEOUT_MS = 15_000;
const MIN_TMPFS_BYTES = 16 * 1024 * 1024;
const DEFAULT_WARM_IDLE_MS = 5 * 60_000;
/** How often the host's /etc entries are compared with the sandboxes' copy. */
const ETC_CHECK_MS = 60_000;
const DEFAULT_WARM_MAX = 256;
/** Pre-made sandboxes kept ready by default (root only): ~0.7 MiB and six small processes each. */
export const DEFAULT_POOL_SIZE = 8;
/** Pool sandboxes made at once while refilling (each is ~20 ms of CPU: a refill must not starve the calls). */
const POOL_MAKING_MAX = 2;
/** A refill starts this long after the last claim (a burst's claims first, its refills after). */
const POOL_REFILL_DELAY_MS = 50;
/** After a pool sandbox failed to start, the next attempt waits this long. */
const POOL_RETRY_MS = 5_000;
/** Claims failing in a row before the pool is turned off (the mount API missing, e.g. Linux before 5.12). */
const POOL_MAX_FAILURES = 3;
/** A claim (clone the tree, attach it) that takes longer than this has failed. */
const CLAIM_TIMEOUT_MS = 10_000;
/** Processes of trove-enter itself in an exec's cgroup (it and the supervisor), on top of the command's own. */
const ENTER_PROCS = 2;
/** Spares kept per warm namespace at most (as many as it runs commands at once). */
const MAX_SPARES = 2;
/** How far into a command its namespace's next spare starts, unless the command has ended before. */
const SPARE_DELAY_MS = 15;
/** close(): how long killed execs get to report before the launcher itself is stopped. */
const CLOSE_WAIT_MS = 5_000;

/** The 408 the exec routes answer when ExecResult.timedOut is true (docs/protocol.md wording). */
export function execTimeoutError(timeoutMs: number): AppError {
  const s = timeoutMs / 1000;
  return new AppError('exec_timeout', `Command timed out after ${Number.isInteger(s) ? s : s.toFixed(1)}s.`);
}

/** A LaunchOutcome with its outputs rebuilt on this side of the launcher's channel. */
type Raw = Omit<Launched, 'stdout' | 'stderr'> & { stdout: CappedOutput; stderr: CappedOutput };

interface Running {
  kill(): void;
  done: Promise<unknown>;
}

/** A pre-made generic sandbox of the pool (makePoolSandbox), until a namespace claims it. */
interface PoolSandbox {
  /** `pool-<n>`: its cgroup group (its spare's slot) and its spares' key until claimed. */
  name: string;
  handle: WarmHandle;
  /** Set once it is up. */
  info: SandboxInfo | null;
  /** The /etc it was made with (a newer one retires it). */
  etcDir: string;
  /** The prespawned claim process (trove-enter claim mode), once started; null once used or gone. */
  claimer: number | null;
}

/** Which sandbox trove-enter enters: bwrap's process, the sandbox's pid 1 and its mount namespace. */
function sandboxOptions(info: SandboxInfo): string[] {
  return [`bwrap=${info.bwrapPid}`, `target=${info.pid1}`, `mnt=${info.mntNs}`];
}

/** Live exec: what the launcher keeps of the output for the outcome (the client got all of it already). */
const LIVE_KEEP_BYTES = 64 * 1024;

export class SandboxRunner {
  private current: Omit<SandboxStatus, 'cgroups' | 'warm' | 'pool' | 'changes'> = {
    available: false,
    mode: 'unavailable',
    reason: 'exec not initialised yet',
  };
  private cgroups: CgroupStatus = {
    mode: 'none',
    parent: null,
    controllers: [],
    missing: ['exec not initialised yet'],
  };
  /** The last cgroup warning logged, so a re-probe does not repeat it. */
  private cgroupWarning = '';
  private layout: SandboxLayout | null = null;
  private pool: CgroupPool | null = null;
  private runtimeDir: string | null = null;
  private seccompPath: string | null = null;
  /** The sandboxes' /etc: its directory, the host's entries it copies (etcSignature), when last compared. */
  private etc: { dir: string; signature: string; checkedAt: number } | null = null;
  /** trove-enter, built with the native addon. */
  private enterPath: string | null = null;
  /** Per warm namespace (its group name), its next commands' prespawned trove-enter processes (makeSpare). */
  private readonly spares = new Map<string, Array<{ id: number; slot: CgroupSlot | null; pid1: number }>>();
  /** Per namespace, its commands and background processes starting or running in the sandbox now. */
  private readonly entering = new Map<string, number>();
  private readonly warm: WarmSandboxes;
  private readonly limiter: ExecLimiter;
  private readonly running = new Set<Running>();
  /** Starts every process tree (see launcher.ts); its process is forked by the first probe or run. */
  private readonly launcher: Launcher;
  private readonly reaper = new Reaper();
  private readonly isRoot = process.getuid?.() === 0;
  private closing = false;
  /** Change tracking (src/changes/, wired by subsystems.ts); null: none. */
  private changes: ChangeHooks | null = null;
  private lastProbe = 0;
  private probing: Promise<SandboxStatus> | null = null;
  /** Pre-made sandboxes not claimed yet (being made, or ready: `poolReady`, oldest first). */
  private readonly poolAll = new Set<PoolSandbox>();
  private readonly poolReady: PoolSandbox[] = [];
  private poolNext = 0;
  private poolStats = { claimed: 0, failed: 0 };
  /** Claims failed in a row (POOL_MAX_FAILURES turns the pool off). */
  private poolFailures = 0;
  private poolOff = false;
  private poolTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: ExecOptions,
    private readonly log: ExecLogger,
  ) {
    this.launcher = new Launcher(log, opts.hostPath ?? SANDBOX_PATH);
    this.warm = new WarmSandboxes(
      { idleMs: opts.warmIdleMs ?? DEFAULT_WARM_IDLE_MS, max: this.warmMax() },
      (key, nsRoot) => this.makeWarm(key, nsRoot),
    );
    this.limiter = new ExecLimiter({
      global: Math.max(1, opts.globalConcurrency),
      perWorkspace: Math.max(1, opts.perWorkspaceConcurrency),
      perNamespace: Math.max(1, opts.perNamespaceConcurrency),
      queueTimeoutMs: opts.queueTimeoutMs,
    });
  }

  /** Probes the sandbox by actually running one; logs how to fix it when that fails. */
  init(): Promise<SandboxStatus> {
    this.probing ??= this.probe().finally(() => {
      this.probing = null;
    });
    return this.probing;
  }

  /** Change tracking: told about every command (its id, its cgroup slot, its end). */
  setChangeTracker(hooks: ChangeHooks | null): void {
    this.changes = hooks;
  }

  status(): SandboxStatus {
    const { warm, idle } = this.warm.stats();
    return {
      ...this.current,
      changes: this.changes?.status() ?? null,
      cgroups: { ...this.cgroups, controllers: [...this.cgroups.controllers], missing: [...this.cgroups.missing] },
      warm: {
        running: warm,
        idle,
        max: this.warmMax(),
        idleMs: this.opts.warmIdleMs ?? DEFAULT_WARM_IDLE_MS,
      },
      pool: {
        size: this.poolSize(),
        ready: this.poolReady.length,
        making: this.poolAll.size - this.poolReady.length,
        ...this.poolStats,
      },
    };
  }

  /**
   * Stops the namespace's warm sandbox and everything in it (namespace restore and delete, under the
   * namespace's exclusive lock: no command of it runs; its background processes were stopped first).
   */
  async stopSandbox(workspaceId: string, namespace: string): Promise<void> {
    await this.warm.stop(nsGroupName(workspaceId, namespace));
  }

  /** Pid of the launcher process that starts the sandboxes, while one runs (diagnostics, tests). */
  launcherPid(): number | undefined {
    return this.launcher.pid;
  }

  /** Runs one command to its end; with `live`, its output is also passed on as it comes. */
  async run(req: ExecRequest, live?: ExecLive): Promise<ExecResult> {
    const release = await this.admit(req);
    try {
      const nsRoot = await this.prepareRoot(req.nsRoot);
      const timeoutMs = req.timeoutMs ?? this.opts.timeoutMs;
      // ---- change tracking: the command's changes are committed before run() returns (so before exec.completed).
      const execId = newExecId();
      const unit = await this.beginChanges({
        kind: 'exec',
        id: execId,
        workspaceId: req.workspaceId,
        namespace: req.namespace,
      });
      const tracked: ExecRequest = unit ? { ...req, onSlot: (slot) => unit.attach(slot) } : req;
      let result: Omit<ExecResult, 'execId'>;
      try {
        if (this.current.mode === 'insecure') result = await this.runInsecure(tracked, nsRoot, timeoutMs, live);
        else result = await this.runSandboxed(tracked, nsRoot, timeoutMs, live);
      } finally {
        await unit?.end();
      }
      return { ...result, execId };
    } finally {
      release();
    }
  }

  /** The tracking of one command (null without a tracker); `slots`: it will run in a cgroup slot. */
  private beginChanges(owner: Parameters<ChangeHooks['begin']>[0]): Promise<ChangeUnit> | null {
    if (!this.changes) return null;
    return this.changes.begin(owner, { slots: this.current.mode === 'bubblewrap' && this.pool !== null });
  }

  /**
   * Starts a background process: resolves once its sandbox is up (the command runs), with the handle to
   * write its stdin, signal and stop it. Its start takes an exec slot like a one-shot exec (429 exec_busy
   * when none frees up); once running it holds a cgroup slot in its namespace's group (so the namespace's
   * memory, process and CPU limits cover it with the namespace's execs) but no exec slot.
   */
  async startProcess(
    req: ProcessRequest,
    hooks: { progress?(totals: RingTotals): void } = {},
  ): Promise<BackgroundProcess> {
    const release = await this.admit(req);
    let unit: ChangeUnit | null = null;
    try {
      const nsRoot = await this.prepareRoot(req.nsRoot);
      // ---- change tracking: the process's changes go out while it runs; the last ones before `done` settles.
      unit = req.processId
        ? await this.beginChanges({
            kind: 'process',
            id: req.processId,
            workspaceId: req.workspaceId,
            namespace: req.namespace,
          })
        : null;
      const u = unit;
      const proc = await this.launchProcess(u ? { ...req, onSlot: (slot) => u.attach(slot) } : req, nsRoot, hooks);
      unit = null;
      if (!u) return proc;
      const done = proc.done.then(async (o) => {
        await u
          .end()
          .catch((err: unknown) =>
            this.log.error(
              { err, process_id: req.processId },
              'change events of a background process could not be recorded',
            ),
          );
        return o;
      });
      return { ...proc, done };
    } finally {
      if (unit) await unit.end().catch(() => {});
      release();
    }
  }

  /** The availability checks and an exec slot (429 exec_busy when none frees up in time). */
  private async admit(req: { workspaceId: string; namespace: string }): Promise<Release> {
    if (this.closing) {
      throw new AppError('sandbox_unavailable', 'The server is shutting down; retry shortly.', { retryAfter: 5 });
    }
    if (!this.current.available) {
      if (Date.now() - this.lastProbe > REPROBE_MS) await this.init();
      if (!this.current.available) {
        throw new AppError(
          'sandbox_unavailable',
          'Exec is unavailable: this server cannot create its command sandbox. The server log says how to fix it.',
          { retryAfter: RETRY_UNAVAILABLE_S },
        );
      }
    }
    try {
      return await this.limiter.acquire(req.workspaceId, req.namespace);
    } catch (err) {
      if (!(err instanceof LimiterBusyError)) throw err;
      throw new AppError('exec_busy', `Too many commands are running ${BUSY_WHERE[err.scope]}; retry shortly.`, {
        retryAfter: RETRY_BUSY_S,
      });
    }
  }

  /** Kills every running exec and waits for them; later runs get 503. */
  async close(): Promise<void> {
    this.closing = true;
    this.reaper.stop();
    const all = [...this.running];
    for (const r of all) r.kill();
    // The launcher answers each kill within its own grace; a launcher that does not is stopped anyway
    // (closing it rejects whatever it still owes, so nothing here waits forever).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...all.map((r) => r.done), this.warm.stopAll(), this.stopPool()]),
      new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    await this.launcher.close();
    await Promise.allSettled(all.map((r) => r.done));
    await this.pool?.close();
    this.pool = null;
    if (this.runtimeDir) rmSync(this.runtimeDir, { recursive: true, force: true });
    this.runtimeDir = null;
  }

  // ---------------------------------------------------------------- probing

  private async probe(): Promise<SandboxStatus> {
    this.lastProbe = Date.now();
    if (this.opts.insecure) {
      if (this.current.mode !== 'insecure') {
        this.log.warn(
          { user: process.getuid?.() },
          'TROVE_EXEC_INSECURE=1: exec runs commands WITHOUT ANY SANDBOX, as the server user, with full access to ' +
            'this machine, the data dir of every workspace and the network. Development only, never in production.',
        );
      }
      this.current = { available: true, mode: 'insecure' };
      this.cgroups = {
        mode: 'none',
        parent: null,
        controllers: [],
        missing: ['TROVE_EXEC_INSECURE=1: no sandbox, no cgroups'],
      };
      return this.status();
    }
    const failed = (reason: string, fix: string): SandboxStatus => {
      this.current = { available: false, mode: 'unavailable', reason, fix };
      this.log.error({ reason, fix }, `Exec sandbox unavailable: ${reason}. Fix: ${fix}`);
      return this.status();
    };
    if (process.platform !== 'linux') {
      return failed(
        'the exec sandbox (bubblewrap) needs Linux',
        'run the server on Linux (TROVE_EXEC_INSECURE=1 is for local development only)',
      );
    }
    // Security: never run commands as root.
    if (this.isRoot && (this.opts.uid === 0 || this.opts.gid === 0)) {
      return failed(
        'TROVE_EXEC_UID/TROVE_EXEC_GID is 0: commands would run as root',
        'set TROVE_EXEC_UID and TROVE_EXEC_GID to an unused unprivileged id such as 64000',
      );
    }
    const bwrap = findExecutable('bwrap', this.opts.hostPath ?? '');
    if (!bwrap)
      return failed('bubblewrap (bwrap) is not installed', 'apt-get install -y bubblewrap (or npm run setup:toolbox)');
    this.enterPath = enterBinary();
    if (!this.enterPath) {
      return failed(
        'trove-enter (built with the native addon) is missing',
        'rebuild trove-server: npm rebuild trove-server (needs make and a C compiler)',
      );
    }

    try {
      this.ensureRuntime();
    } catch (err) {
      return failed(
        `cannot prepare the sandbox runtime files: ${(err as Error).message}`,
        'make the temp directory writable (TMPDIR)',
      );
    }
    this.setUpCgroups();
    this.layout = new SandboxLayout({
      privileged: this.isRoot,
      uid: this.opts.uid,
      gid: this.opts.gid,
      network: this.opts.network,
      tmpfsBytes: Math.max(MIN_TMPFS_BYTES, this.opts.memoryBytes),
      etcDir: this.etc!.dir,
      bwrap,
      seccomp: this.seccompPath !== null,
    });

    try {
      // Forked now, while the server is small (see launcher.ts).
      this.launcher.warm();
    } catch (err) {
      return failed(
        `the exec launcher cannot start: ${(err as Error).message}`,
        'reinstall or rebuild trove-server (npm run build)',
      );
    }
    const probeRoot = join(this.runtimeDir!, 'probe');
    let raw: Raw;
    try {
      mkdirSync(probeRoot, { recursive: true, mode: 0o755 });
      raw = await this.launchSandbox(
        { workspaceId: 'probe', namespace: 'probe', nsRoot: probeRoot, command: 'id -u', sourceInit: false },
        await this.prepareRoot(probeRoot),
        PROBE_TIMEOUT_MS,
      );
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr;
      if (stderr) {
        const { reason, fix } = diagnose(stderr, this.isRoot);
        return failed(reason, fix);
      }
      return failed(`bubblewrap could not be started: ${(err as Error).message}`, 'apt-get install -y bubblewrap');
    } finally {
      await this.warm.stop(nsGroupName('probe', 'probe'));
    }
    const expectedUid = String(this.opts.uid);
    if (!raw.ready || raw.exitCode !== 0 || raw.stdout.text().trim() !== expectedUid) {
      const stderr = raw.stderr.text().trim();
      const { reason, fix } = diagnose(
        stderr || `exit ${raw.exitCode}, output ${JSON.stringify(raw.stdout.text().trim())}`,
        this.isRoot,
      );
      return failed(reason, fix);
    }
    this.current = { available: true, mode: 'bubblewrap' };
    this.log.info(
      {
        privileged: this.isRoot,
        uid: this.opts.uid,
        gid: this.opts.gid,
        network: this.opts.network,
        cgroups: { mode: this.cgroups.mode, controllers: this.cgroups.controllers },
        seccomp: this.seccompPath !== null,
      },
      'exec sandbox ready (bubblewrap)',
    );
    this.fillPool();
    return this.status();
  }

  /**
   * The exec cgroups (cgroups.ts): v1 or v2, or none, said at start in a
   * warning line (and in status()) whenever something is missing, never silently.
   */
  private setUpCgroups(): void {
    if (this.pool) return;
    const o = this.opts;
    const fallback =
      'memory and process caps are per-process rlimits only and namespaces have no limits of their own (docs/exec.md, "Limits")';
    if (!this.isRoot) {
      this.cgroups = { mode: 'none', parent: null, controllers: [], missing: ['the server does not run as root'] };
      this.warnCgroups({}, `exec runs without cgroups: the server does not run as root; ${fallback}`);
      return;
    }
    const { pool, status } = CgroupPool.create(
      {
        memoryBytes: o.memoryBytes,
        maxProcs: o.maxProcs + ENTER_PROCS,
        nsMemoryBytes: o.nsMemoryBytes ?? 0,
        // The namespace's spares (its next commands' trove-enter, started ahead: two processes each) are not the tenant's.
        nsMaxProcs: o.nsMaxProcs ? o.nsMaxProcs + MAX_SPARES * ENTER_PROCS : 0,
        nsCpuWeight: o.nsCpuWeight ?? 0,
        execCpuWeight: o.execCpuWeight ?? 0,
      },
      this.log,
      // A group per namespace whose sandbox may be warm (a claimed pool sandbox's included) stays for its next call.
      { parent: o.cgroupParent ?? null, keepIdle: this.warmMax() + this.poolSize() },
    );
    this.pool = pool;
    this.cgroups = status;
    if (!pool) {
      const where = status.parent ? ` (${status.parent})` : '';
      this.warnCgroups(
        { missing: status.missing },
        `exec runs without cgroups: ${status.missing.join('; ')}${where}; ${fallback}`,
      );
    } else if (status.missing.length > 0) {
      this.warnCgroups(
        { mode: status.mode, parent: status.parent, controllers: status.controllers, missing: status.missing },
        `exec cgroups (${status.mode}, ${status.parent}) are incomplete: ${status.missing.join('; ')}`,
      );
    } else {
      this.log.info(
        { mode: status.mode, parent: status.parent, controllers: status.controllers },
        'exec cgroups enabled',
      );
    }
    this.watchLeftovers();
  }

  private warnCgroups(obj: object, msg: string): void {
    if (msg === this.cgroupWarning) return;
    this.cgroupWarning = msg;
    this.log.warn(obj, msg);
  }

  /**
   * The sandbox's /etc (bwrap.ts prepareEtc) and the seccomp filter, in a private temp dir; recreated if a
   * tmp cleaner removed it. A new /etc is made when the host's entries changed (checked at most once a
   * minute, when a sandbox is made): each namespace's sandbox is then made again at its next use.
   */
  private ensureRuntime(): void {
    if (
      this.runtimeDir &&
      this.etc &&
      existsSync(join(this.etc.dir, 'passwd')) &&
      (this.seccompPath === null || existsSync(this.seccompPath))
    ) {
      if (Date.now() - this.etc.checkedAt < ETC_CHECK_MS) return;
      this.etc.checkedAt = Date.now();
      const signature = etcSignature();
      if (signature === this.etc.signature) return;
      this.etc = { dir: prepareEtc(this.runtimeDir, this.opts), signature, checkedAt: Date.now() };
      if (this.layout) this.layout = new SandboxLayout({ ...this.layout.opts, etcDir: this.etc.dir });
      return;
    }
    const base = runtimeBase();
    if (!this.runtimeDir) removeStaleRuntimeDirs(base);
    // The pid in the name lets a later server remove it if this one dies without cleaning up.
    const dir = mkdtempSync(join(base, `trove-exec-${process.pid}-`));
    const signature = etcSignature();
    this.etc = { dir: prepareEtc(dir, this.opts), signature, checkedAt: Date.now() };
    const filter = buildSeccompFilter();
    if (filter) {
      writeFileSync(join(dir, 'seccomp.bpf'), filter, { mode: 0o600 });
      this.seccompPath = join(dir, 'seccomp.bpf');
    } else {
      this.seccompPath = null;
      this.log.warn({ arch: process.arch }, 'no seccomp filter for this CPU architecture; exec runs without it');
    }
    const old = this.runtimeDir;
    this.runtimeDir = dir;
    if (this.layout) this.layout = new SandboxLayout({ ...this.layout.opts, etcDir: this.etc.dir });
    if (old) rmSync(old, { recursive: true, force: true });
    this.watchLeftovers();
  }

  /** Arms the reaper with what a SIGKILLed server would leave behind. */
  private watchLeftovers(): void {
    if (this.closing) return;
    this.reaper.watch({ cgroups: this.pool?.baseDirs ?? [], trees: this.runtimeDir ? [this.runtimeDir] : [] });
  }

  /**
   * Creates the namespace root if needed and hands it to the exec uid (so
   * commands can write there); returns its realpath.
   */
  private async prepareRoot(nsRoot: string): Promise<string> {
    // Synchronous on purpose: a few metadata syscalls cost less than as many thread-pool round trips.
    let real: string;
    try {
      real = realpathSync.native(nsRoot);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(nsRoot, { recursive: true, mode: 0o755 });
      real = realpathSync.native(nsRoot);
    }
    const st = statSync(real);
    if (!st.isDirectory()) throw new Error(`namespace root is not a directory: ${real}`);
    if (this.isRoot && !this.opts.insecure && (st.uid !== this.opts.uid || st.gid !== this.opts.gid)) {
      chownSync(real, this.opts.uid, this.opts.gid);
    }
    if ((st.mode & 0o700) !== 0o700) chmodSync(real, (st.mode & 0o7777) | 0o700);
    return real;
  }

  // ---------------------------------------------------------------- running

  private env(req: Pick<ExecRequest, 'workspaceId' | 'namespace'>, home: string, path: string): Record<string, string> {
    return {
      PATH: path,
      HOME: home,
      USER: SANDBOX_USER,
      LOGNAME: SANDBOX_USER,
      SHELL: '/bin/sh',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      TERM: 'dumb',
      TMPDIR: '/tmp',
      TROVE_WORKSPACE_ID: req.workspaceId,
      TROVE_NAMESPACE: req.namespace,
    };
  }

  private limits(cpuSeconds = this.opts.cpuSeconds): ScriptLimits {
    const o = this.opts;
    // RLIMIT_NPROC counts every process of the uid. Without a user namespace
    // (root mode) all sandboxes share uid 64000, so when the pids cgroup caps
    // each exec the rlimit is only a global backstop; in the userns mode the
    // kernel counts per user namespace, i.e. per exec.
    const pidsCgroup = this.pool?.controllers.includes('pids') ?? false;
    // Background processes run beside the execs, so they get their share of the backstop too.
    const slots = Math.max(1, o.globalConcurrency) + Math.max(0, o.backgroundProcesses ?? 0);
    const nproc = this.isRoot && pidsCgroup ? o.maxProcs * slots : o.maxProcs;
    return {
      cpuSeconds,
      maxFileBytes: o.maxFileBytes,
      maxOpenFiles: o.maxOpenFiles,
      maxProcs: nproc,
      // RLIMIT_DATA, not RLIMIT_AS: node/V8 reserve >8 GiB of address space for WebAssembly.
      dataBytes: o.memoryBytes,
    };
  }

  private async runSandboxed(
    req: ExecRequest,
    nsRoot: string,
    timeoutMs: number,
    live?: ExecLive,
  ): Promise<Omit<ExecResult, 'execId'>> {
    const raw = await this.launchSandbox(req, nsRoot, timeoutMs, live);
    if (!raw.ready && !raw.timedOut && !raw.shutdown) this.notStarted(req, raw.exitCode, raw.stderr.text());
    return finish(raw, live ? this.opts.maxOutputBytes : null);
  }

  /** A sandbox whose shell never came up: 429 when the namespace's processes are all taken, else a failure. */
  private notStarted(req: { namespace: string }, exitCode: number, stderr: string): never {
    const detail = stderr.trim().slice(0, 2000);
    // dash's words, or trove-enter's when even the exec's supervisor could not be forked.
    if (
      this.nsProcessLimited() &&
      /(Can't fork|^trove-enter: fork:).*Resource temporarily unavailable/im.test(detail)
    ) {
      // The namespace's other commands hold every process it may have: the tenant's own doing, not a broken sandbox.
      throw new AppError(
        'exec_busy',
        `This namespace's running commands hold all of its ${this.opts.nsMaxProcs} processes; retry when some have ended.`,
        { retryAfter: RETRY_BUSY_S },
      );
    }
    this.log.error({ namespace: req.namespace, exitCode, stderr: detail }, 'exec sandbox failed to start');
    // Something changed under us (bwrap removed, sysctl flipped): re-probe so later calls get a clear 503.
    this.lastProbe = 0;
    void this.init();
    throw new Error(`exec sandbox failed to start: ${detail}`);
  }

  /**
   * A namespace's warm sandbox (warm.ts): bwrap over its tree holding the namespaces and mounts. It stays
   * in the launcher's cgroup: its two processes (bwrap's pid 1 and the holder) run no tenant code, and each
   * command that enters it joins its own cgroup in the namespace's group (no cgroup move here, so none of
   * the kernel's cgroup v1 migration waits either).
   */
  private makeWarm(key: string, nsRoot: string): WarmHandle {
    return this.claimPooled(key, nsRoot) ?? this.makeSandbox(key, nsRoot);
  }

  /**
   * bwrap over `nsRoot` holding the namespaces and mounts (makeWarm); `nsRoot` null: a pool sandbox with a
   * bare workspace, whose first spare makes its private mounts only once its command arrives (after the claim).
   */
  private makeSandbox(key: string, nsRoot: string | null): WarmHandle {
    this.ensureRuntime();
    const layout = this.layout!;
    let info: SandboxInfo | null = null;
    let up = false;
    let resolveReady!: (info: SandboxInfo) => void;
    let rejectReady!: (err: Error) => void;
    const ready = new Promise<SandboxInfo>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    void ready.catch(() => {});
    const settle = () => {
      if (up && info) resolveReady(info);
    };
    // Security: options (host paths) on a descriptor, not in the cmdline the sandbox's /proc shows.
    const { argv, argsData } = layout.holderArgsViaFd(nsRoot);
    const handle = this.launcher.run(
      {
        file: layout.opts.bwrap,
        args: argv,
        argsData,
        // Security: bwrap (root) gets an empty environment: no LD_PRELOAD or similar from the server's.
        env: {},
        timeoutMs: null,
        maxOutputBytes: 16 * 1024,
        bwrap: true,
        cgroup: null,
        seccompPath: this.seccompPath,
        detached: false,
      },
      {
        ready: () => {
          up = true;
          settle();
        },
        sandbox: (i) => {
          info = i;
          // The first command's trove-enter starts now, while bwrap builds the sandbox (it waits for it).
          this.makeSpare(key, i, nsRoot === null);
          settle();
        },
      },
    );
    const done = handle.done.then(
      (o) => {
        const stderr =
          CappedOutput.restore('stderr', 16 * 1024, o.stderr)
            .text()
            .trim() || `exit ${o.exitCode}`;
        rejectReady(Object.assign(new Error(`the sandbox did not start: ${stderr}`), { stderr }));
      },
      (err: Error) => rejectReady(err),
    );
    return { ready, done, stop: () => handle.kill('stop') };
  }

  // ---------------------------------------------------------------- the pool of pre-made sandboxes

  /** The pool's size in effect: 0 when off (configured so, not root, no sandbox, claims failing). */
  /** Warm sandboxes kept at most (LRU beyond). */
  private warmMax(): number {
    return this.opts.warmMax ?? DEFAULT_WARM_MAX;
  }

  private poolSize(): number {
    if (!this.isRoot || this.poolOff || this.current.mode !== 'bubblewrap') return 0;
    return Math.max(0, this.opts.poolSize ?? DEFAULT_POOL_SIZE);
  }

  /** Makes pool sandboxes until the pool is full, POOL_MAKING_MAX at a time, in the background and while no call waits. */
  private fillPool(): void {
    if (this.closing || this.poolTimer) return;
    // Not while calls wait for a slot (a burst): each pool sandbox costs ~20 ms of CPU that they would wait for.
    if (this.limiter.queued > 0) return this.refillLater(POOL_REFILL_DELAY_MS);
    const size = this.poolSize();
    let making = this.poolAll.size - this.poolReady.length;
    while (this.poolAll.size < size && making < POOL_MAKING_MAX) {
      try {
        this.makePoolSandbox();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'cannot make a pool sandbox');
        this.refillLater(POOL_RETRY_MS);
        return;
      }
      making++;
    }
  }

  /** Refills in `ms`; `restart`: from now on, even when a refill was due sooner. */
  private refillLater(ms: number, restart = false): void {
    if (restart && this.poolTimer) {
      clearTimeout(this.poolTimer);
      this.poolTimer = null;
    }
    if (this.closing || this.poolTimer) return;
    this.poolTimer = setTimeout(() => {
      this.poolTimer = null;
      this.fillPool();
    }, ms);
    this.poolTimer.unref();
  }

  /**
   * One generic sandbox (no namespace's tree: a bare workspace directory), its spare (late mounts, in the
   * cgroup group `pool-<n>`) and, once it is up, its claim process waiting for a namespace's directory.
   */
  private makePoolSandbox(): void {
    const name = `pool-${this.poolNext++}`;
    const handle = this.makeSandbox(name, null);
    const p: PoolSandbox = { name, handle, info: null, etcDir: this.etc!.dir, claimer: null };
    this.poolAll.add(p);
    handle.ready.then(
      (info) => {
        if (!this.poolAll.has(p) || this.closing) return;
        p.info = info;
        p.claimer = this.launcher.prespawn(this.claimSpawn(info), (message) => {
          if (p.claimer === null) return; // taken by a claim
          p.claimer = null;
          // Without its claim process it cannot be handed out: stopped, and another made.
          if (this.poolAll.has(p)) {
            this.log.warn({ message }, 'a pool sandbox lost its claim process; stopping it');
            handle.stop();
          }
        });
        this.poolReady.push(p);
        this.fillPool();
      },
      (err: Error) => {
        if (!this.poolAll.has(p) || this.closing) return;
        this.log.warn({ err: err.message }, 'a pool sandbox did not start');
        this.poolAll.delete(p);
        this.refillLater(POOL_RETRY_MS);
      },
    );
    void handle.done.then(
      () => this.poolGone(p),
      () => this.poolGone(p),
    );
  }

  /** A pool sandbox ended before a namespace claimed it (stopped, or its holder died). */
  private poolGone(p: PoolSandbox): void {
    if (!this.poolAll.delete(p)) return;
    const at = this.poolReady.indexOf(p);
    if (at >= 0) this.poolReady.splice(at, 1);
    if (p.claimer !== null) this.launcher.dropSpare(p.claimer);
    p.claimer = null;
    this.fillPool();
  }

  /** trove-enter in claim mode for the pool sandbox `info` (no cgroup, no command, no seccomp filter). */
  private claimSpawn(info: SandboxInfo): EnterSpawn {
    this.ensureRuntime();
    return this.enterProcess(
      [
        ...sandboxOptions(info),
        'privileged=1',
        `home=${SANDBOX_HOME}`,
        `workspace=${SANDBOX_WORKSPACE}`,
        `cwd=${SANDBOX_HOME}`,
        'claim=1',
      ],
      null,
    );
  }

  /**
   * A pool sandbox for the namespace `key`, when one is ready: taken from the pool at once (so no other
   * namespace can have it), its cgroup group renamed to the namespace's (v1; else its spare is dropped), and
   * the namespace's tree attached at its workspace by its claim process. A claim that fails stops that
   * sandbox (it never goes back to the pool) and the namespace gets a sandbox made for it as usual.
   */
  private claimPooled(key: string, nsRoot: string): WarmHandle | null {
    if (this.poolSize() === 0) return null;
    this.ensureRuntime();
    let p: PoolSandbox | undefined;
    while ((p = this.poolReady.shift())) {
      this.poolAll.delete(p);
      if (p.etcDir === this.etc!.dir && p.claimer !== null && p.info) break;
      // Made with an older /etc, or it lost its claim process: not handed out.
      if (p.claimer !== null) this.launcher.dropSpare(p.claimer);
      p.claimer = null;
      p.handle.stop();
    }
    // Refilled once the claims have stopped for a moment: a burst's first calls take the CPU before its refills.
    this.refillLater(POOL_REFILL_DELAY_MS, true);
    if (!p) return null;
    const pooled = p;
    const info = p.info!;
    const claimer = p.claimer!;
    p.claimer = null;
    // Its spare (already in the sandbox, in a slot of `pool-<n>`) becomes the namespace's first command's.
    const spares = this.spares.get(p.name);
    this.spares.delete(p.name);
    if (spares && !this.spares.get(key)?.length && this.pool?.adopt(p.name, key)) this.spares.set(key, spares);
    else for (const s of spares ?? []) this.launcher.dropSpare(s.id);

    let current: WarmHandle = p.handle;
    let stopped = false;
    const claimed = this.claim(info, claimer, nsRoot).then(
      () => {
        this.poolFailures = 0;
        this.poolStats.claimed++;
        return info;
      },
      (err: Error) => {
        // Security: a sandbox whose claim failed is stopped, never handed out or put back.
        pooled.handle.stop();
        for (const s of this.spares.get(key) ?? []) if (s.pid1 === info.pid1) this.launcher.dropSpare(s.id);
        this.poolStats.failed++;
        if (++this.poolFailures >= POOL_MAX_FAILURES && !this.poolOff) {
          this.poolOff = true;
          this.stopPool().catch(() => {});
          this.log.warn(
            { err: err.message },
            `the sandbox pool is off: ${POOL_MAX_FAILURES} claims failed in a row; sandboxes are made on each namespace's first call`,
          );
        } else this.log.warn({ err: err.message }, 'a pool sandbox could not be claimed; it was stopped');
        if (stopped || this.closing) throw err;
        current = this.makeSandbox(key, nsRoot);
        return current.ready;
      },
    );
    void claimed.catch(() => {});
    return {
      ready: claimed,
      done: claimed.then(
        () => current.done,
        () => current.done,
      ),
      stop: () => {
        stopped = true;
        current.stop();
      },
    };
  }

  /** Runs the claim process of a pool sandbox with the namespace directory `nsRoot`; rejects unless it exits 0. */
  private async claim(info: SandboxInfo, claimer: number, nsRoot: string): Promise<void> {
    // Security: a NUL would end the option early: refuse (the path is the server's realpath, never a tenant's text).
    if (nsRoot.includes('\0')) throw new Error('the namespace directory holds a NUL byte');
    const spawn = this.claimSpawn(info);
    const run = this.launcher.run(
      {
        ...spawn,
        args: [],
        goData: Buffer.from(`source=${nsRoot}\0`, 'utf8'),
        bwrap: false,
        enter: true,
        cgroup: null,
        detached: false,
        timeoutMs: CLAIM_TIMEOUT_MS,
        maxOutputBytes: 4096,
      },
      {},
      claimer,
    );
    const o = await run.done;
    if (o.exitCode !== 0 || o.timedOut) {
      const stderr = CappedOutput.restore('stderr', 4096, o.stderr).text().trim();
      throw new Error(`claim failed: ${o.timedOut ? 'timed out' : stderr || `exit ${o.exitCode}`}`);
    }
  }

  /** Stops every pool sandbox not claimed (shutdown); resolves once they are gone. */
  private async stopPool(): Promise<void> {
    if (this.poolTimer) clearTimeout(this.poolTimer);
    this.poolTimer = null;
    const all = [...this.poolAll];
    for (const p of all) p.handle.stop();
    await Promise.allSettled(all.map((p) => p.handle.done));
  }

  /** The namespace's warm sandbox, made (or made again, for a tree that was replaced) when needed. */
  private async warmLease(req: Pick<ExecRequest, 'workspaceId' | 'namespace'>, nsRoot: string): Promise<WarmLease> {
    if (this.closing)
      throw new AppError('sandbox_unavailable', 'The server is shutting down; retry shortly.', { retryAfter: 5 });
    const st = statSync(nsRoot);
    this.ensureRuntime();
    // A sandbox made with an older /etc (or over a tree since replaced) is made again.
    return this.warm.acquire(
      nsGroupName(req.workspaceId, req.namespace),
      nsRoot,
      `${st.dev}:${st.ino}:${nsRoot}:${this.etc!.dir}`,
    );
  }

  /**
   * The namespace's warm sandbox (made if needed), a cgroup slot for one command in it, and the spare
   * (trove-enter already in that slot and sandbox, waiting for its command) when there is one. The caller
   * releases lease and slot.
   */
  private async enterTarget(
    req: Pick<ExecRequest, 'workspaceId' | 'namespace'>,
    nsRoot: string,
  ): Promise<{ lease: WarmLease; slot: CgroupSlot | null; spare?: number }> {
    const key = nsGroupName(req.workspaceId, req.namespace);
    // Counted from here until the lease is released (an exec's end, a background process's end): makeSpare's measure.
    this.entering.set(key, (this.entering.get(key) ?? 0) + 1);
    const leave = () => {
      const n = (this.entering.get(key) ?? 1) - 1;
      if (n > 0) this.entering.set(key, n);
      else this.entering.delete(key);
    };
    const counted = (lease: WarmLease): WarmLease => {
      let released = false;
      return {
        ...lease,
        release: () => {
          if (released) return;
          released = true;
          lease.release();
          leave();
        },
      };
    };
    const leasing = this.warmLease(req, nsRoot);
    try {
      // A new sandbox starts its first spare as soon as bwrap says where it is (makeWarm).
      const lease = await leasing;
      const spare = this.takeSpare(key, lease.info);
      if (spare) return { lease: counted(lease), slot: spare.slot, spare: spare.id };
      return { lease: counted(lease), slot: this.pool ? this.pool.acquire(key) : null };
    } catch (err) {
      leave();
      void leasing.then(
        (l) => l.release(),
        () => {},
      );
      throw err;
    }
  }

  /**
   * Starts the next commands' trove-enter for the namespace `key` ahead of them: a command then skips
   * spawning it, the cgroup move and entering the sandbox. As many as the namespace runs commands at once,
   * at most MAX_SPARES; they end with their sandbox.
   */
  private makeSpare(key: string, info: SandboxInfo, late = false): void {
    const list = this.spares.get(key) ?? [];
    const want = Math.min(MAX_SPARES, Math.max(1, this.entering.get(key) ?? 0));
    while (!this.closing && list.length < want) {
      let slot: CgroupSlot | null;
      try {
        slot = this.pool ? this.pool.acquire(key) : null;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'cannot make a cgroup for a spare command process');
        break;
      }
      const entry = { id: 0, slot, pid1: info.pid1 };
      list.push(entry);
      this.spares.set(key, list);
      entry.id = this.launcher.prespawn(this.enterSpawn(info, slot, late), () => {
        const at = list.indexOf(entry);
        if (at >= 0) list.splice(at, 1);
        if (list.length === 0 && this.spares.get(key) === list) this.spares.delete(key);
        if (slot) void this.pool?.release(slot);
      });
    }
  }

  /** A spare of the namespace that entered the sandbox `info` (those of an older sandbox are dropped). */
  private takeSpare(key: string, info: SandboxInfo): { id: number; slot: CgroupSlot | null } | null {
    const list = this.spares.get(key);
    while (list && list.length > 0) {
      const s = list.shift()!;
      if (s.pid1 === info.pid1) return s;
      // Its end (reported by the launcher) releases its slot.
      this.launcher.dropSpare(s.id);
    }
    return null;
  }

  /**
   * What trove-enter needs before its command: the sandbox `info` to enter, the cgroup `slot` to join;
   * `late`: its private mounts once its command arrives (a pool sandbox's spare, made before the claim).
   */
  private enterSpawn(info: SandboxInfo, slot: CgroupSlot | null, late = false): EnterSpawn {
    this.ensureRuntime();
    const options = [
      ...sandboxOptions(info),
      `privileged=${this.isRoot ? 1 : 0}`,
      `uid=${this.opts.uid}`,
      `gid=${this.opts.gid}`,
      `tmpfs=${this.layout!.opts.tmpfsBytes}`,
      `home=${SANDBOX_HOME}`,
      `workspace=${SANDBOX_WORKSPACE}`,
      // The privileged tmpfs belongs to root: sticky world-writable lets the exec uid use it.
      `home_mode=${this.isRoot ? '1777' : '0700'}`,
      `cwd=${SANDBOX_HOME}`,
      `seccomp=${this.seccompPath ? 1 : 0}`,
      ...(late ? ['late=1'] : []),
      ...(slot ? slot.dirs.map((d) => `cgroup=${d}`) : []),
      ...(slot && !slot.v2 && slot.memoryDir ? peakFiles(slot.memoryDir).map((f) => `peak=${f}`) : []),
    ];
    return this.enterProcess(options, this.seccompPath);
  }

  /** trove-enter with `options` (NUL-separated on its options descriptor) and the seccomp filter it loads (after ensureRuntime()). */
  private enterProcess(options: string[], seccompPath: string | null): EnterSpawn {
    return {
      file: this.enterPath!,
      argv0: 'trove-enter',
      // Security: trove-enter (root) gets an empty environment; the command's comes in its options.
      env: {},
      argsData: Buffer.from(options.map((o) => `${o}\0`).join(''), 'utf8'),
      seccompPath,
    };
  }

  /** trove-enter running `req` in the warm sandbox `info`, in the cgroup `slot`. */
  private sandboxSpec(
    req: Pick<ExecRequest, 'workspaceId' | 'namespace' | 'command' | 'sourceInit' | 'stdin'> & {
      env?: Record<string, string>;
      keepStdinOpen?: boolean;
    },
    info: SandboxInfo,
    limits: ScriptLimits,
    slot: CgroupSlot | null,
  ): Omit<LaunchSpec, 'timeoutMs' | 'maxOutputBytes'> {
    // A command too long for argv, or one holding a NUL (which would split the option stream), goes in a file.
    const long = Buffer.byteLength(req.command, 'utf8') > MAX_INLINE_COMMAND_BYTES || req.command.includes('\0');
    const script = buildScript(
      req.command,
      limits,
      req.sourceInit,
      long ? SANDBOX_COMMAND_FILE : undefined,
      userEnv(req.env),
    );
    const env = this.env(req, SANDBOX_HOME, SANDBOX_PATH);
    const command = [
      ...Object.entries(env).map(([k, v]) => `env=${k}=${v}`),
      ...(long ? [`command_file=${SANDBOX_COMMAND_FILE}`] : []),
      // No input: /dev/null, as a program that checks its stdin expects (the pipe is ended anyway).
      ...(req.stdin === undefined && !req.keepStdinOpen ? ['stdin_null=1'] : []),
      '--',
      '/bin/sh',
      '-c',
      script,
      'sh',
    ];
    // Security: a NUL would split one option in two and shift the stream: refuse.
    if (command.some((o) => o.includes('\0')))
      throw new AppError('bad_request', 'The command or its environment holds a NUL byte.');
    return {
      ...this.enterSpawn(info, slot),
      args: [],
      goData: Buffer.from(command.map((o) => `${o}\0`).join(''), 'utf8'),
      commandData: long ? Buffer.from(req.command, 'utf8') : undefined,
      bwrap: false,
      enter: true,
      cgroup: slot ? { dirs: slot.dirs, memoryDir: slot.memoryDir, v2: slot.v2 } : null,
      detached: false,
    };
  }

  private async launchSandbox(
    req: ExecRequest,
    nsRoot: string,
    timeoutMs: number,
    live?: ExecLive,
    retry = true,
  ): Promise<Raw> {
    const { lease, slot, spare } = await this.enterTarget(req, nsRoot);
    req.onSlot?.(slot);
    let raw: Raw;
    try {
      const running = this.launch(
        { ...this.sandboxSpec(req, lease.info, this.limits(), slot), stdin: req.stdin, timeoutMs },
        live,
        spare,
      );
      // The next command's spare is started once this one has ended, or SPARE_DELAY_MS into it if it runs
      // longer, not beside its start: spawning blocks the launcher's event loop until the new process has
      // exec'd (1-3 ms on 2 busy cores), which delays a short command's own end, and competes with it for
      // the CPU; a longer command hides it, and the spare is then ready for a next command that comes at
      // once (sequential calls on a busy machine). After a short command, the answer goes out first: a new
      // spare may need a new cgroup slot (directories and limits written here). A command of the namespace
      // arriving before its spare starts trove-enter itself (the same path, only later).
      const key = nsGroupName(req.workspaceId, req.namespace);
      let spareStarted = false;
      const startSpare = () => {
        if (spareStarted) return;
        spareStarted = true;
        clearTimeout(spareTimer);
        // Not for a sandbox stopped meanwhile (a restore or delete may run once this command has ended).
        if (!lease.alive()) return;
        // Nor while other namespaces' calls wait for a slot (a burst): the CPU goes to them, and a later command
        // of this namespace starts its trove-enter on its own path.
        if (this.limiter.queued > 0 && !this.limiter.waitsFor(req.workspaceId, req.namespace)) return;
        try {
          this.makeSpare(key, lease.info);
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'cannot start a spare command process');
        }
      };
      const spareTimer = setTimeout(startSpare, SPARE_DELAY_MS);
      try {
        raw = await running;
      } finally {
        clearTimeout(spareTimer);
        setImmediate(startSpare);
      }
    } catch (err) {
      if (slot) void this.pool!.release(slot);
      throw err;
    } finally {
      lease.release();
    }
    // 137 before the shell came up: the supervisor was SIGKILLed, which only its sandbox's end does (a stop would say so).
    const gone = sandboxGone(raw.stderr.text()) || !lease.alive() || (raw.exitCode === 137 && !raw.stopped);
    if (!raw.ready && retry && !raw.timedOut && !raw.shutdown && gone) {
      // Its sandbox ended between the lease and the entry (stopped while idle, or its holder died): a new one.
      if (slot) await this.pool!.release(slot, { knownEmpty: raw.cgroupsEmpty });
      await this.warm.stop(nsGroupName(req.workspaceId, req.namespace));
      return this.launchSandbox(req, nsRoot, timeoutMs, live, false);
    }
    if (slot) {
      if (raw.oomKills > 0) {
        const text = `\n[trove: a process was killed: ${this.oomCause(raw)}]\n`;
        raw.stderr.push(Buffer.from(text));
        if (live && !live.signal?.aborted) await live.output('stderr', Buffer.from(text));
      }
      // After a timeout the caller is promised that nothing survives: wait for the cgroup to empty.
      const release = this.pool!.release(slot, { knownEmpty: raw.cgroupsEmpty });
      if (raw.timedOut) await release;
      else void release;
    }
    return raw;
  }

  private nsProcessLimited(): boolean {
    return Boolean(this.opts.nsMaxProcs) && (this.pool?.controllers.includes('pids') ?? false);
  }

  /** Which limit an OOM kill of this exec most likely came from (the exec's own when it was reached). */
  private oomCause(raw: Pick<Raw, 'execMemoryLimitHit'>): string {
    const o = this.opts;
    if (raw.execMemoryLimitHit) return `the exec memory limit (${o.memoryBytes} bytes) was exceeded`;
    if (o.nsMemoryBytes && this.pool?.controllers.includes('memory')) {
      return `the namespace memory limit (${o.nsMemoryBytes} bytes, all its running commands together) was exceeded`;
    }
    return 'the machine or the server ran out of memory';
  }

  /** Insecure mode: a temp dir whose `workspace` links to the tree, and the plain `sh -c` launch. */
  private insecureSpec(
    req: Pick<ExecRequest, 'workspaceId' | 'namespace' | 'command' | 'sourceInit'> & { env?: Record<string, string> },
    nsRoot: string,
    limits: ScriptLimits,
  ): { spec: Omit<LaunchSpec, 'timeoutMs' | 'maxOutputBytes'>; dir: string } {
    this.log.warn(
      { workspaceId: req.workspaceId, namespace: req.namespace },
      'exec ran WITHOUT a sandbox (TROVE_EXEC_INSECURE=1)',
    );
    const dir = mkdtempSync(join(tmpdir(), 'trove-insecure-'));
    try {
      symlinkSync(nsRoot, join(dir, 'workspace'));
      let commandFile: string | undefined;
      if (Buffer.byteLength(req.command, 'utf8') > MAX_INLINE_COMMAND_BYTES) {
        commandFile = join(dir, '.trove-command.sh');
        writeFileSync(commandFile, req.command, { mode: 0o600 });
      }
      // No RLIMIT_NPROC: without a sandbox's user namespace it counts every process of the server user (the
      // server, its other commands, the rest of that user's session), so a busy user's commands could not fork;
      // as root it is not enforced at all.
      const script = buildScript(
        req.command,
        { ...limits, maxProcs: 0 },
        req.sourceInit,
        commandFile,
        userEnv(req.env),
      );
      return {
        spec: {
          file: '/bin/sh',
          args: ['-c', script, 'sh'],
          cwd: dir,
          env: this.env(req, dir, this.opts.hostPath ?? SANDBOX_PATH),
          bwrap: false,
          cgroup: null,
          seccompPath: null,
          detached: true,
        },
        dir,
      };
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private async runInsecure(
    req: ExecRequest,
    nsRoot: string,
    timeoutMs: number,
    live?: ExecLive,
  ): Promise<Omit<ExecResult, 'execId'>> {
    const { spec, dir } = this.insecureSpec(req, nsRoot, this.limits());
    try {
      const raw = await this.launch({ ...spec, stdin: req.stdin, timeoutMs }, live);
      if (!raw.ready && !raw.timedOut && !raw.shutdown) {
        throw new Error(`exec shell failed to start: ${raw.stderr.text().trim().slice(0, 2000)}`);
      }
      return finish(raw, live ? this.opts.maxOutputBytes : null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * Starts one process tree in the launcher (giving its command to the prespawned trove-enter `spare`, if
   * any) and tracks it until it is gone (close() kills what runs).
   */
  private async launch(spec: Omit<LaunchSpec, 'maxOutputBytes'>, live?: ExecLive, spare?: number): Promise<Raw> {
    const cap = this.opts.maxOutputBytes;
    let hooks: LaunchHooks = {};
    let full: LaunchSpec = { ...spec, maxOutputBytes: cap };
    if (live) {
      // The client gets the output as it comes; the outcome keeps only a head (the event's stdout excerpt).
      full = { ...spec, maxOutputBytes: Math.min(cap, LIVE_KEEP_BYTES), forward: { maxBytes: cap, stopOnKill: true } };
      hooks = {
        ready: () => live.ready(),
        chunk: (stream, data) => {
          if (live.signal?.aborted) return;
          const passed = live.output(stream, data);
          if (passed)
            void passed.then(
              () => run.ack(data.length),
              () => run.unforward(),
            );
          else run.ack(data.length);
        },
      };
    }
    const run = this.launcher.run(full, hooks, spare);
    const onAbort = () => run.unforward();
    live?.signal?.addEventListener('abort', onAbort, { once: true });
    const entry: Running = { kill: () => run.kill(), done: run.done.catch(() => {}) };
    this.running.add(entry);
    try {
      let o: Launched;
      try {
        o = await run.done;
      } catch (err) {
        if (!(err instanceof LauncherGoneError)) throw err;
        throw new AppError(
          'sandbox_unavailable',
          'The exec launcher stopped while the command ran; the command may have run in part. Retry shortly.',
          {
            retryAfter: RETRY_BUSY_S,
          },
        );
      }
      return {
        ...o,
        stdout: CappedOutput.restore('stdout', cap, o.stdout),
        stderr: CappedOutput.restore('stderr', cap, o.stderr),
      };
    } finally {
      live?.signal?.removeEventListener('abort', onAbort);
      this.running.delete(entry);
    }
  }

  // ---------------------------------------------------------------- background processes

  private async launchProcess(
    req: ProcessRequest,
    nsRoot: string,
    hooks: { progress?(totals: RingTotals): void },
    retry = true,
  ): Promise<BackgroundProcess> {
    if (this.closing)
      throw new AppError('sandbox_unavailable', 'The server is shutting down; retry shortly.', { retryAfter: 5 });
    const limits = this.limits(req.cpuSeconds);
    const insecure = this.current.mode === 'insecure';
    // The process holds its namespace's warm sandbox for as long as it runs.
    const target = insecure ? null : await this.enterTarget(req, nsRoot);
    const lease = target?.lease ?? null;
    const slot = target?.slot ?? null;
    const spare = target?.spare;
    if (target) req.onSlot?.(slot);
    let built: { spec: Omit<LaunchSpec, 'timeoutMs' | 'maxOutputBytes'>; dir?: string };
    try {
      built = lease
        ? { spec: this.sandboxSpec(req, lease.info, limits, slot) }
        : this.insecureSpec(req, nsRoot, limits);
    } catch (err) {
      lease?.release();
      if (slot) void this.pool!.release(slot);
      throw err;
    }
    const tmp = built.dir ?? null;
    let markReady!: () => void;
    const ready = new Promise<void>((r) => (markReady = r));
    let handle: LaunchHandle;
    try {
      handle = this.launcher.startBackground(
        {
          ...built.spec,
          stdin: req.stdin,
          keepStdinOpen: req.keepStdinOpen,
          timeoutMs: req.timeoutMs,
          // Only a head is collected (why a sandbox did not come up); the output itself goes to the ring files.
          maxOutputBytes: 64 * 1024,
          forward: { maxBytes: null, stopOnKill: false },
        },
        req.output,
        { ready: markReady, progress: hooks.progress },
        spare,
      );
      if (lease) this.makeSpare(nsGroupName(req.workspaceId, req.namespace), lease.info);
    } catch (err) {
      if (slot) void this.pool!.release(slot);
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      lease?.release();
      throw err;
    }
    const started = performance.now();
    const outcome: Promise<ProcessOutcome & { ready: boolean; stderrHead: string }> = handle.done.then(
      async (o) => {
        if (slot) await this.pool!.release(slot, { knownEmpty: o.cgroupsEmpty });
        return {
          exitCode: o.exitCode,
          exitReason: exitReason(o),
          durationMs: o.durationMs,
          timedOut: o.timedOut,
          shutdown: o.shutdown,
          stopped: o.stopped,
          launcherGone: false,
          ring: o.ring ?? null,
          outputError: o.outputError,
          ready: o.ready,
          stderrHead: CappedOutput.restore('stderr', 64 * 1024, o.stderr).text(),
        };
      },
      async (err: unknown) => {
        if (slot) await this.pool!.release(slot);
        if (!(err instanceof LauncherGoneError)) throw err;
        // Its sandbox died with the launcher (bwrap --die-with-parent): SIGKILLed.
        return {
          exitCode: 137,
          exitReason: 'signaled' as const,
          durationMs: Math.round(performance.now() - started),
          timedOut: false,
          shutdown: false,
          stopped: true,
          launcherGone: true,
          ring: null,
          ready: true,
          stderrHead: '',
        };
      },
    );
    const settled = outcome.finally(() => {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      lease?.release();
    });
    const entry: Running = { kill: () => handle.kill('shutdown'), done: settled.catch(() => {}) };
    this.running.add(entry);
    void settled.catch(() => {}).finally(() => this.running.delete(entry));

    const first = await Promise.race([ready.then(() => null), settled]);
    if (first !== null) {
      const failed = !first.ready && !first.timedOut && !first.shutdown && !first.stopped;
      if (failed && retry && lease && (sandboxGone(first.stderrHead) || !lease.alive() || first.exitCode === 137)) {
        // Its sandbox ended between the lease and the entry (see launchSandbox): once more, in a new one.
        await this.warm.stop(nsGroupName(req.workspaceId, req.namespace));
        return this.launchProcess(req, nsRoot, hooks, false);
      }
      // Ended before its shell came up: refused (exec_busy) or a broken sandbox, as for exec.
      if (failed) this.notStarted(req, first.exitCode, first.stderrHead);
      if (first.shutdown)
        throw new AppError('sandbox_unavailable', 'The server is shutting down; retry shortly.', { retryAfter: 5 });
    }
    return {
      done: settled.then(({ ready: _r, stderrHead: _h, ...o }) => o),
      stdin: (data, close) => handle.stdin(data, close),
      signal: (signal) => handle.signal(signal),
      stop: () => handle.kill('stop'),
    };
  }
}

/**
 * A background process's own variables, minus the sandbox's identity (TROVE_WORKSPACE_ID and
 * TROVE_NAMESPACE say which tenant it is: not the caller's to claim).
 */
function userEnv(env: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!env) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k !== 'TROVE_WORKSPACE_ID' && k !== 'TROVE_NAMESPACE') out[k] = v;
  return out;
}

function exitReason(raw: Pick<Launched, 'timedOut' | 'oomKills' | 'shutdown' | 'exitCode'>): ExitReason {
  if (raw.timedOut) return 'timeout';
  if (raw.oomKills > 0) return 'oom';
  // Shell convention: 128+N reports a process ended by signal N (1-64 on Linux).
  if (raw.shutdown || (raw.exitCode > 128 && raw.exitCode <= 128 + 64)) return 'signaled';
  return 'exited';
}

/** The result of a run; `liveCap`: the output went out live, and was truncated only past that cap. */
function finish(raw: Raw, liveCap: number | null = null): Omit<ExecResult, 'execId'> {
  return {
    exitCode: raw.exitCode,
    exitReason: exitReason(raw),
    stdout: raw.stdout.text(),
    stderr: raw.stderr.text(),
    durationMs: raw.durationMs,
    timedOut: raw.timedOut,
    stdoutTruncated: liveCap === null ? raw.stdout.truncated : raw.stdout.total > liveCap,
    stderrTruncated: liveCap === null ? raw.stderr.truncated : raw.stderr.total > liveCap,
  };
}

/**
 * Where the runtime dir goes: /dev/shm when it is a writable tmpfs (the sandboxes' /etc copy is ~850 small
 * files and links: a second on some disks, 25 ms in memory), else the temp dir.
 */
export function runtimeBase(): string {
  try {
    const st = statfsSync('/dev/shm');
    // TMPFS_MAGIC
    if (st.type === 0x01021994) {
      accessSync('/dev/shm', fsConstants.W_OK);
      return '/dev/shm';
    }
  } catch {
    /* not there, or not writable */
  }
  return tmpdir();
}

/** trove-enter's message when the sandbox it was to enter is gone (trove_enter.c). */
function sandboxGone(stderr: string): boolean {
  return /^trove-enter: (the sandbox \(pid \d+\) is gone|pid \d+ is not the sandbox any more|open the sandbox's|join the sandbox's)/m.test(
    stderr,
  );
}

/** build/Release/trove-enter of this package (from src/sandbox or dist/sandbox), when it was built. */
function enterBinary(): string | null {
  const p = fileURLToPath(new URL('../../build/Release/trove-enter', import.meta.url));
  try {
    const st = statSync(p);
    return st.isFile() && st.mode & 0o111 ? p : null;
  } catch {
    return null;
  }
}

/**
 * Absolute path of an executable: the system directories first (a root
 * server must not run a `bwrap` planted in some PATH entry), then PATH.
 */
function findExecutable(name: string, hostPath: string): string | null {
  // Security: system directories first.
  const dirs = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin', ...hostPath.split(delimiter)];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      const st = statSync(p);
      if (st.isFile() && st.mode & 0o111) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

function readSysctl(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

function inContainer(): boolean {
  if (existsSync('/.dockerenv') || existsSync('/run/.containerenv')) return true;
  const c = readSysctl('/proc/1/cgroup') ?? '';
  return /docker|kubepods|containerd|libpod|lxc/.test(c);
}

/** Turns bwrap's complaint into an operator-facing reason and the exact fix. */
export function diagnose(stderr: string, privileged: boolean): { reason: string; fix: string } {
  const firstLine = stderr.split('\n').find((l) => l.trim()) ?? stderr;
  const reason = `the sandbox probe failed: ${firstLine.slice(0, 300)}`;
  const container = privileged
    ? 'run the container with --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined (see docs/exec.md)'
    : 'run the container with --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined (see docs/exec.md)';
  if (/Can't mount proc/i.test(stderr)) {
    return {
      reason,
      fix: inContainer() ? container : 'allow mounting a new /proc (the host masks /proc paths); see docs/exec.md',
    };
  }
  if (/namespace|uid map|Operation not permitted|Permission denied|No permissions/i.test(stderr)) {
    if (!privileged) {
      if (readSysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0') {
        return {
          reason,
          fix: 'sysctl -w kernel.unprivileged_userns_clone=1 (and persist it in /etc/sysctl.d/), or run the server as root',
        };
      }
      if (readSysctl('/proc/sys/user/max_user_namespaces') === '0') {
        return {
          reason,
          fix: 'sysctl -w user.max_user_namespaces=15000 (and persist it in /etc/sysctl.d/), or run the server as root',
        };
      }
      if (readSysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1') {
        return {
          reason,
          fix: 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or install an AppArmor profile that lets /usr/bin/bwrap create user namespaces, or run the server as root',
        };
      }
    }
    if (inContainer()) return { reason, fix: container };
    return {
      reason,
      fix: privileged
        ? 'the server needs CAP_SYS_ADMIN to create namespaces; see docs/exec.md'
        : 'enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0) or run the server as root; see docs/exec.md',
    };
  }
  return {
    reason,
    fix: 'run `bwrap --unshare-all --ro-bind /usr /usr --proc /proc --dev /dev /usr/bin/true` as the server user to see the error; see docs/exec.md',
  };
}
