/**
 * Background processes: commands that outlive the request that started them.
 * docs/exec.md, "Background processes", is the user's view.
 *
 * A process runs in the exec sandbox (SandboxRunner.startProcess) on the node
 * that started it; the launcher writes its output to ring files on the data
 * volume (sandbox/ring-writer.ts) and this service keeps its record in the
 * `processes` table, so any node can list it, read its output and stream it.
 * Only the owning node can write its stdin or signal it; other nodes pass
 * signals, stdin writes and closes, and namespace stops on through the
 * cluster's control channel (control.ts; a stdin write's bytes travel as a
 * file on the shared volume) and answer as the owning node would.
 *
 * A process does not hold its namespace's lock while it runs (it may run for
 * hours; snapshots would wait for it); it takes the shared side only to start.
 * Restore and namespace deletion take the exclusive side and stop the
 * namespace's processes first (stopNamespace).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { constants as osc } from 'node:os';
import type { Config } from '../config.js';
import type { Logger } from '../context.js';
import type { Db } from '../db/index.js';
import { AppError } from '../errors.js';
import { utf8Head } from '../events/data-size.js';
import type { EventService } from '../events/service.js';
import { isoMs } from '../ids.js';
import type { SandboxRunner, ProcessOutcome } from '../sandbox/runner.js';
import type { SignalName } from '../sandbox/launch.js';
import type { RingTotals } from '../sandbox/launcher.js';
import type { StreamName } from '../sandbox/ring-writer.js';
import type { FileService } from '../files/service.js';
import type { NsContext } from '../namespaces/service.js';
import type { NamespaceLocks } from '../locks/namespace-locks.js';
import type { NamespaceService } from '../namespaces/service.js';
import type { ProcessControl, StdinOutcome } from './control.js';
import { outputDir, readOutput, removeOutput, streamRange, type OutputSlice } from './output-store.js';
import { ProcessRepository, type EndFields, type ProcessRow } from './repository.js';
import { pidAlive } from '../sandbox/pids.js';
import { linkedAbort } from '../abort.js';

export type ProcessState = 'running' | 'exited';
export type ProcessExitReason = 'exited' | 'signaled' | 'oom' | 'timeout' | 'killed' | 'server_restart' | 'node_lost';

/** The process object of the wire (docs/exec.md). */
export interface ProcessView {
  process_id: string;
  namespace: string;
  command: string;
  command_bytes: number;
  command_truncated: boolean;
  state: ProcessState;
  exit_code: number | null;
  exit_reason: ProcessExitReason | null;
  signal: string | null;
  started_at: string;
  ended_at: string | null;
  timeout_ms: number | null;
  stdin_open: boolean;
  stdout_bytes: number;
  stderr_bytes: number;
  stdout_dropped_bytes: number;
  stderr_dropped_bytes: number;
}

export interface StartInput {
  command: string;
  stdin?: string | null;
  close_stdin?: boolean;
  timeout_ms?: number | null;
  env?: Record<string, string> | null;
}

export interface ProcessDeps {
  db: Db;
  /** PostgreSQL: several nodes share the table. */
  cluster: boolean;
  dataDir: string;
  events: EventService;
  sandbox: SandboxRunner;
  namespaces: NamespaceService;
  files: FileService;
  locks: NamespaceLocks;
  config: Pick<Config, 'processes'>;
  logger: Logger;
  control: ProcessControl;
}

/** The first 4 KiB of a command are kept in its record and events. */
export const COMMAND_HEAD_BYTES = 4096;
const MAX_STDIN_BYTES = 1024 * 1024;
const MAX_ENV_VARS = 128;
/**
 * The variables travel in the sandbox shell's script (sandbox/script.ts exportLine), one argv string that
 * Linux caps at 128 KiB together with an inline command of up to 64 KiB: their quoted form stays under 48 KiB.
 */
const MAX_ENV_BYTES = 48 * 1024;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
/** Variables the sandbox sets about itself: a process cannot claim to be another workspace or namespace. */
const RESERVED_ENV = new Set(['TROVE_WORKSPACE_ID', 'TROVE_NAMESPACE']);
/** Cluster: a node vouches for its running processes this often (or a quarter of the node-lost window, if shorter). */
const HEARTBEAT_MS = 10_000;
const SWEEP_MS = 10 * 60_000;
/** How often the namespaces of running processes are queued for a quota measure (the files service's own tick). */
const QUOTA_MEASURE_MS = 30_000;
/** close(): how long stopped processes get to be recorded before shutdown goes on. */
const CLOSE_WAIT_MS = 5_000;
/** Cluster: how long a restore or deletion waits for another node to stop the namespace's processes. */
const REMOTE_STOP_MS = 15_000;
const RETRY_BUSY_S = 1;

export const newProcessId = () => 'proc-' + randomBytes(12).toString('hex');

const SIGNAL_NAMES = new Map<number, string>(Object.entries(osc.signals).map(([name, n]) => [n, name]));

function signalName(n: number): string {
  return SIGNAL_NAMES.get(n) ?? `SIG${n}`;
}

function notFound(id: string): AppError {
  return new AppError('process_not_found', `Process not found: ${id}`);
}

interface Live {
  row: ProcessRow;
  dir: string;
  /** Set once its sandbox is up. */
  proc: import('../sandbox/runner.js').BackgroundProcess | null;
  totals: RingTotals;
  stdinOpen: boolean;
  /** Signal numbers a client delivered: an end by one of them is `killed`, not `signaled`. */
  signals: Set<number>;
  /** Why Trove itself stopped it. */
  stopReason: 'killed' | 'server_restart' | null;
  listeners: Set<() => void>;
  /** Settles once process.started is emitted: process.exited must follow it. */
  startedEvent: Promise<void>;
  markStarted(): void;
  /** Settles once its end is recorded. */
  ended: Promise<void>;
}

export class ProcessService {
  /** This node's id in the records (a new one per start: a restarted node does not own its old processes). */
  readonly node = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  readonly repo: ProcessRepository;
  private readonly live = new Map<string, Live>();
  /** Starts in progress, per `workspace\0namespace`, counted against the limits. */
  private readonly starting = new Map<string, number>();
  private startingTotal = 0;
  private closing = false;
  private readonly closed = new AbortController();
  private timers: NodeJS.Timeout[] = [];
  private sweeping: Promise<void> | null = null;

  constructor(private readonly deps: ProcessDeps) {
    this.repo = new ProcessRepository(deps.db);
    deps.control.bind(this.node);
    deps.control.serve({
      signal: (workspaceId, id, signal) => this.signalLocal(workspaceId, id, signal),
      stdin: (workspaceId, id, take, close) => this.stdinFromNode(workspaceId, id, take, close),
      stopNamespace: (workspaceId, namespace) => this.stopLocal(workspaceId, namespace),
    });
  }

  /** Aborted when the server closes: long-polls and streams end. */
  get closingSignal(): AbortSignal {
    return this.closed.signal;
  }

  // ---------------------------------------------------------------- start

  async start(ctx: NsContext, input: StartInput): Promise<ProcessView> {
    const { config, files, namespaces, locks, events } = this.deps;
    const limits = config.processes;
    if (this.closing)
      throw new AppError('sandbox_unavailable', 'The server is shutting down; retry shortly.', { retryAfter: 5 });
    const command = input.command;
    const stdin = input.stdin ?? undefined;
    if (stdin !== undefined && Buffer.byteLength(stdin, 'utf8') > MAX_STDIN_BYTES) {
      throw new AppError('validation_failed', 'stdin is larger than 1 MiB');
    }
    const env = validateEnv(input.env ?? undefined);
    let timeoutMs = input.timeout_ms ?? null;
    if (timeoutMs !== null && limits.maxTimeoutMs > 0) timeoutMs = Math.min(timeoutMs, limits.maxTimeoutMs);
    const closeStdin = input.close_stdin === true;

    const key = `${ctx.workspaceId}\0${ctx.namespace}`;
    // Reserved before anything awaits, so concurrent starts on this node count each other; handed over to
    // the live entry once there is one.
    this.starting.set(key, (this.starting.get(key) ?? 0) + 1);
    this.startingTotal++;
    let reserved = true;
    const unreserve = () => {
      if (!reserved) return;
      reserved = false;
      const n = (this.starting.get(key) ?? 1) - 1;
      if (n <= 0) this.starting.delete(key);
      else this.starting.set(key, n);
      this.startingTotal--;
    };
    try {
      this.checkLimits(ctx, key);
      if (this.deps.cluster) {
        const elsewhere = await this.repo.countRunningElsewhere(ctx.workspaceId, ctx.namespace, this.node);
        if (elsewhere + this.localCount(key) > limits.maxPerNamespace) throw this.namespaceBusy();
      }
      // 507 while the volume is below its reserve or the namespace over its quota, as for exec.
      await files.quota.assertCanGrow(ctx);
      const nsRoot = await namespaces.ensure(ctx.workspaceId, ctx.namespace);
      // The shared lock only while it starts: a restore waits for starts, then stops what runs.
      const live = await locks.shared(ctx.workspaceId, ctx.namespace, () =>
        this.launch(ctx, { command, stdin, closeStdin, timeoutMs, env, nsRoot }, unreserve),
      );
      void namespaces.touch(ctx.workspaceId, ctx.namespace).catch(() => {});
      const view = await this.viewOf(live.row, this.live.get(live.row.id));
      await events
        .emit({
          workspaceId: ctx.workspaceId,
          namespace: ctx.namespace,
          type: 'process.started',
          data: { process_id: live.row.id, command: live.row.command, command_bytes: live.row.command_bytes },
        })
        .catch((err: unknown) =>
          this.deps.logger.error({ err, process_id: live.row.id }, 'process.started event failed'),
        )
        .finally(() => live.markStarted());
      return view;
    } finally {
      unreserve();
    }
  }

  private localCount(key: string): number {
    let n = this.starting.get(key) ?? 0;
    for (const l of this.live.values()) if (`${l.row.workspace_id}\0${l.row.namespace}` === key) n++;
    return n;
  }

  private namespaceBusy(): AppError {
    return new AppError(
      'exec_busy',
      `This namespace already runs ${this.deps.config.processes.maxPerNamespace} background processes (TROVE_PROCESS_MAX_PER_NAMESPACE); wait for one to end or stop one.`,
      { retryAfter: RETRY_BUSY_S },
    );
  }

  /** The per-namespace and per-server limits, counting this start (already reserved). */
  private checkLimits(_ctx: NsContext, key: string): void {
    const limits = this.deps.config.processes;
    if (this.localCount(key) > limits.maxPerNamespace) throw this.namespaceBusy();
    if (this.live.size + this.startingTotal > limits.maxTotal) {
      throw new AppError('exec_busy', 'Too many background processes are running on this server; retry shortly.', {
        retryAfter: RETRY_BUSY_S,
      });
    }
  }

  private async launch(
    ctx: NsContext,
    o: {
      command: string;
      stdin?: string;
      closeStdin: boolean;
      timeoutMs: number | null;
      env?: Record<string, string>;
      nsRoot: string;
    },
    unreserve: () => void,
  ): Promise<Live> {
    const { sandbox, config } = this.deps;
    const id = newProcessId();
    const dir = outputDir(this.deps.dataDir, ctx.workspaceId, id);
    const now = Date.now();
    const bytes = Buffer.byteLength(o.command, 'utf8');
    const row: ProcessRow = {
      id,
      workspace_id: ctx.workspaceId,
      namespace: ctx.namespace,
      command: utf8Head(o.command, COMMAND_HEAD_BYTES),
      command_bytes: bytes,
      command_truncated: bytes > COMMAND_HEAD_BYTES ? 1 : 0,
      state: 'running',
      exit_code: null,
      exit_reason: null,
      signal: null,
      started_at: isoMs(now),
      started_ms: now,
      ended_at: null,
      ended_ms: null,
      timeout_ms: o.timeoutMs,
      stdin_open: o.closeStdin ? 0 : 1,
      stdout_bytes: 0,
      stderr_bytes: 0,
      stdout_dropped_bytes: 0,
      stderr_dropped_bytes: 0,
      node: this.node,
      heartbeat_ms: now,
    };
    await this.repo.insert(row);
    let markStarted!: () => void;
    const live: Live = {
      row,
      dir,
      proc: null,
      totals: { stdoutBytes: 0, stderrBytes: 0, stdoutDropped: 0, stderrDropped: 0 },
      stdinOpen: !o.closeStdin,
      signals: new Set(),
      stopReason: null,
      listeners: new Set(),
      startedEvent: new Promise<void>((r) => (markStarted = r)),
      markStarted: () => markStarted(),
      ended: Promise.resolve(),
    };
    this.live.set(id, live);
    unreserve();
    try {
      live.proc = await sandbox.startProcess(
        {
          workspaceId: ctx.workspaceId,
          namespace: ctx.namespace,
          nsRoot: o.nsRoot,
          command: o.command,
          stdin: o.stdin,
          sourceInit: true,
          timeoutMs: o.timeoutMs,
          env: o.env,
          keepStdinOpen: !o.closeStdin,
          output: { dir, capBytes: config.processes.outputBytes },
          cpuSeconds: config.processes.cpuSeconds,
          // Change tracking: its file events name this id.
          processId: id,
        },
        {
          progress: (totals) => {
            live.totals = totals;
            this.notify(live);
          },
        },
      );
    } catch (err) {
      this.live.delete(id);
      await this.repo.remove(ctx.workspaceId, id).catch(() => {});
      await removeOutput(dir).catch(() => {});
      throw err;
    }
    live.ended = live.proc.done.then(
      (outcome) => this.finish(live, outcome),
      (err: unknown) => {
        this.deps.logger.error({ err, process_id: id }, 'background process failed');
        return this.finish(live, null);
      },
    );
    return live;
  }

  // ---------------------------------------------------------------- end

  private endReason(live: Live, o: ProcessOutcome | null): { reason: ProcessExitReason; signal: string | null } {
    if (live.stopReason === 'server_restart' || o?.shutdown) return { reason: 'server_restart', signal: null };
    if (!o) return { reason: 'killed', signal: 'SIGKILL' };
    if (o.timedOut) return { reason: 'timeout', signal: null };
    if (o.exitReason === 'oom') return { reason: 'oom', signal: null };
    // SIGKILLed by a client, by a restore or deletion, or with the launcher.
    if (o.stopped) return { reason: 'killed', signal: 'SIGKILL' };
    const n = o.exitCode - 128;
    if (n >= 1 && n <= 64) return { reason: live.signals.has(n) ? 'killed' : 'signaled', signal: signalName(n) };
    return { reason: 'exited', signal: null };
  }

  private async finish(live: Live, o: ProcessOutcome | null): Promise<void> {
    const { row } = live;
    await live.startedEvent;
    if (o?.outputError)
      this.deps.logger.error(
        { process_id: row.id, err: o.outputError },
        'process output could not be written; the process was stopped',
      );
    const { reason, signal } = this.endReason(live, o);
    const totals = o?.ring ?? (await this.totalsFromFiles(live.dir));
    const endMs = Date.now();
    const fields: EndFields = {
      exit_code: o ? o.exitCode : 137,
      exit_reason: reason,
      signal,
      ended_at: isoMs(endMs),
      ended_ms: endMs,
      stdout_bytes: totals.stdoutBytes,
      stderr_bytes: totals.stderrBytes,
      stdout_dropped_bytes: totals.stdoutDropped,
      stderr_dropped_bytes: totals.stderrDropped,
    };
    let recorded = false;
    for (let attempt = 0; ; attempt++) {
      try {
        recorded = await this.repo.end(row.workspace_id, row.id, fields);
        break;
      } catch (err) {
        // The database is away for a moment: the record must not stay "running" for ever.
        if (attempt >= 5) {
          this.deps.logger.error({ err, process_id: row.id }, 'cannot record the end of a background process');
          break;
        }
        await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
      }
    }
    Object.assign(row, fields, { state: 'exited', stdin_open: 0 });
    live.totals = totals;
    live.stdinOpen = false;
    this.live.delete(row.id);
    this.notify(live);
    this.deps.files.quota.execFinished({ workspaceId: row.workspace_id, namespace: row.namespace });
    if (!recorded) return;
    await this.deps.events
      .emit({
        workspaceId: row.workspace_id,
        namespace: row.namespace,
        type: 'process.exited',
        data: {
          process_id: row.id,
          exit_code: fields.exit_code,
          exit_reason: reason,
          signal,
          duration_ms: endMs - row.started_ms,
        },
      })
      .catch((err: unknown) => this.deps.logger.error({ err, process_id: row.id }, 'process.exited event failed'));
  }

  private async totalsFromFiles(dir: string): Promise<RingTotals> {
    const [out, err] = await Promise.all([streamRange(dir, 'stdout'), streamRange(dir, 'stderr')]).catch(() => [
      { start: 0, total: 0 },
      { start: 0, total: 0 },
    ]);
    return { stdoutBytes: out!.total, stderrBytes: err!.total, stdoutDropped: out!.start, stderrDropped: err!.start };
  }

  // ---------------------------------------------------------------- reading

  /** The row of a process of this namespace, or 404. */
  async find(ctx: NsContext, id: string): Promise<ProcessRow> {
    const local = this.live.get(id);
    if (local && local.row.workspace_id === ctx.workspaceId && local.row.namespace === ctx.namespace) return local.row;
    // Ids are opaque; a malformed one is simply not found.
    if (!/^proc-[0-9a-f]{24}$/.test(id)) throw notFound(id);
    const row = await this.repo.get(ctx.workspaceId, ctx.namespace, id);
    if (!row) throw notFound(id);
    return row;
  }

  async get(ctx: NsContext, id: string): Promise<ProcessView> {
    const row = await this.find(ctx, id);
    return this.viewOf(row, this.live.get(id));
  }

  async list(ctx: NsContext, state: ProcessState | null, limit: number): Promise<ProcessView[]> {
    const rows = await this.repo.list(ctx.workspaceId, ctx.namespace, state, limit);
    return Promise.all(rows.map((r) => this.viewOf(this.live.get(r.id)?.row ?? r, this.live.get(r.id))));
  }

  /** The wire object; a running process's output totals come from its node's counters or from its files. */
  async viewOf(row: ProcessRow, live?: Live): Promise<ProcessView> {
    let totals: RingTotals = {
      stdoutBytes: Number(row.stdout_bytes),
      stderrBytes: Number(row.stderr_bytes),
      stdoutDropped: Number(row.stdout_dropped_bytes),
      stderrDropped: Number(row.stderr_dropped_bytes),
    };
    let stdinOpen = row.stdin_open === 1;
    if (row.state === 'running') {
      if (live) {
        totals = live.totals;
        stdinOpen = live.stdinOpen;
      } else {
        totals = await this.totalsFromFiles(outputDir(this.deps.dataDir, row.workspace_id, row.id));
      }
    }
    return {
      process_id: row.id,
      namespace: row.namespace,
      command: row.command,
      command_bytes: Number(row.command_bytes),
      command_truncated: row.command_truncated === 1,
      state: row.state,
      exit_code: row.exit_code === null ? null : Number(row.exit_code),
      exit_reason: row.exit_reason as ProcessExitReason | null,
      signal: row.signal,
      started_at: row.started_at,
      ended_at: row.ended_at,
      timeout_ms: row.timeout_ms === null ? null : Number(row.timeout_ms),
      stdin_open: row.state === 'running' && stdinOpen,
      stdout_bytes: totals.stdoutBytes,
      stderr_bytes: totals.stderrBytes,
      stdout_dropped_bytes: totals.stdoutDropped,
      stderr_dropped_bytes: totals.stderrDropped,
    };
  }

  /**
   * Up to `limit` bytes of a stream from `offset`. `exited`: the process had ended before the read, so
   * the slice reaches the final total when it asked for enough (eof is then exact).
   */
  async output(
    ctx: NsContext,
    id: string,
    stream: StreamName,
    offset: number,
    limit: number,
  ): Promise<{ slice: OutputSlice; exited: boolean }> {
    const row = await this.find(ctx, id);
    const exited = row.state === 'exited';
    const slice = await readOutput(outputDir(this.deps.dataDir, row.workspace_id, row.id), stream, offset, limit);
    return { slice, exited };
  }

  /** Output directory of a process (stream.ts reads it). */
  dirOf(row: ProcessRow): string {
    return outputDir(this.deps.dataDir, row.workspace_id, row.id);
  }

  /** True when this node runs the process (its output and end are announced here, no polling needed). */
  isLocal(id: string): boolean {
    return this.live.has(id);
  }

  /** Calls `fn` on new output and on the end of a process this node runs; returns the unsubscribe. */
  subscribe(id: string, fn: () => void): () => void {
    const live = this.live.get(id);
    if (!live) return () => {};
    live.listeners.add(fn);
    return () => live.listeners.delete(fn);
  }

  private notify(live: Live): void {
    for (const fn of [...live.listeners]) fn();
  }

  /**
   * Waits up to `timeoutMs` for the process to end; returns it as it is then (still running after the
   * timeout, or when the client or the server goes away).
   */
  async wait(ctx: NsContext, id: string, timeoutMs: number, abort: AbortSignal): Promise<ProcessView> {
    let row = await this.find(ctx, id);
    // Aborted by the client or the server's end.
    const linked = linkedAbort([abort, this.closed.signal]);
    const signal = linked.controller.signal;
    const deadline = Date.now() + timeoutMs;
    const waiter = this.deps.events.waiter(ctx.workspaceId);
    try {
      while (row.state === 'running' && !signal.aborted) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        const live = this.live.get(id);
        if (live) {
          await sleepUntil(live.ended, left, signal);
        } else {
          // Another node runs it: its process.exited event wakes us (the event bus crosses nodes); a poll backs it up.
          await waiter.wait(Math.min(left, 1_000), signal);
          // The server is closing: answer with the process as it is (every later wait would return at once).
          if (waiter.ended) break;
        }
        row = await this.find(ctx, id);
      }
    } finally {
      linked.dispose();
      waiter.dispose();
    }
    return this.viewOf(row, this.live.get(id));
  }

  // ---------------------------------------------------------------- stdin and signals

  async writeStdin(
    ctx: NsContext,
    id: string,
    data: Buffer,
    close: boolean,
  ): Promise<{ process_id: string; written: number; stdin_open: boolean }> {
    if (data.length > MAX_STDIN_BYTES) throw new AppError('payload_too_large', 'A stdin write is at most 1 MiB.');
    const what = 'writing to its stdin';
    const r = await this.stdinAnywhere(ctx, id, data, close, what);
    if (r.ok) return { process_id: id, written: r.written, stdin_open: r.stdinOpen };
    switch (r.error) {
      case 'full':
        throw new AppError(
          'conflict',
          `Process ${id} is not reading its stdin: 1 MiB is already waiting for it. Retry once it has read some.`,
        );
      case 'gone':
        throw new AppError('conflict', `Process ${id} has exited.`);
      case 'closed':
        throw new AppError('conflict', `The stdin of process ${id} is closed.`);
      case 'not_found':
        return this.notRunning(ctx, id, what);
    }
  }

  async closeStdin(ctx: NsContext, id: string): Promise<{ process_id: string; stdin_open: false }> {
    const what = 'closing its stdin';
    const r = await this.stdinAnywhere(ctx, id, Buffer.alloc(0), true, what);
    if (!r.ok && r.error === 'not_found') return this.notRunning(ctx, id, what);
    // Closed now, or already: either way it is closed.
    return { process_id: id, stdin_open: false };
  }

  /** A stdin request for a running process of this namespace, on this node or passed on to the one that runs it. */
  private async stdinAnywhere(
    ctx: NsContext,
    id: string,
    data: Buffer,
    close: boolean,
    what: string,
  ): Promise<StdinOutcome> {
    const row = await this.find(ctx, id);
    if (row.state !== 'running')
      throw new AppError('conflict', `Process ${id} has exited; ${what} is no longer possible.`);
    if (this.live.has(id) || row.node === this.node) return this.stdinLocal(row.workspace_id, id, data, close);
    const r = await this.deps.control.stdin(row.node, row.workspace_id, id, this.dirOf(row), data, close);
    if (r === null) {
      throw new AppError('conflict', `Process ${id} runs on another node of the cluster, which did not answer; retry.`);
    }
    return r;
  }

  /** The node that should run it does not (yet, or any more): the answer a local request gives then. */
  private async notRunning(ctx: NsContext, id: string, what: string): Promise<never> {
    const row = await this.find(ctx, id);
    if (row.state !== 'running')
      throw new AppError('conflict', `Process ${id} has exited; ${what} is no longer possible.`);
    throw new AppError('conflict', `Process ${id} is still starting; retry shortly.`);
  }

  /**
   * Writes to (and with `close`, closes) the stdin of a process this node runs: a client's request, here
   * or from another node. `not_found` when this node does not run it (or not for that workspace).
   */
  private async stdinLocal(workspaceId: string, id: string, data: Buffer, close: boolean): Promise<StdinOutcome> {
    const live = this.live.get(id);
    if (!live?.proc || live.row.workspace_id !== workspaceId) return { ok: false, error: 'not_found' };
    if (!live.stdinOpen) return { ok: false, error: 'closed' };
    const r = await live.proc.stdin(data.length > 0 ? data : null, close);
    if (!r.ok) {
      // A close asked of a process that is ending is as good as done.
      if (r.error === 'closed' || (r.error === 'gone' && close)) await this.stdinClosed(live);
      return { ok: false, error: r.error === 'full' ? 'full' : r.error === 'gone' ? 'gone' : 'closed' };
    }
    if (r.stdinOpen === false) await this.stdinClosed(live);
    return { ok: true, written: r.written ?? 0, stdinOpen: live.stdinOpen };
  }

  /** A stdin request from another node: its bytes are read (take) only once the process is known to be ours. */
  private async stdinFromNode(
    workspaceId: string,
    id: string,
    take: (dir: string) => Promise<Buffer>,
    close: boolean,
  ): Promise<StdinOutcome> {
    const live = this.live.get(id);
    // Security: as signalLocal, a request names the workspace, and a process of another one is not there.
    if (!live?.proc || live.row.workspace_id !== workspaceId) return { ok: false, error: 'not_found' };
    return this.stdinLocal(workspaceId, id, await take(live.dir), close);
  }

  private async stdinClosed(live: Live): Promise<void> {
    if (!live.stdinOpen) return;
    live.stdinOpen = false;
    live.row.stdin_open = 0;
    await this.repo.setStdinOpen(live.row.workspace_id, live.row.id, false).catch(() => {});
  }

  async signal(
    ctx: NsContext,
    id: string,
    signal: SignalName,
  ): Promise<{ process_id: string; signal: SignalName; delivered: boolean }> {
    const row = await this.find(ctx, id);
    if (row.state !== 'running') return { process_id: id, signal, delivered: false };
    const local = this.live.get(id);
    if (!local) {
      if (row.node === this.node) throw new AppError('conflict', `Process ${id} is still starting; retry shortly.`);
      const r = await this.deps.control.signal(row.node, row.workspace_id, id, signal);
      if (r === null) {
        throw new AppError(
          'conflict',
          `Process ${id} runs on another node of the cluster, which did not answer; send the signal to that node or retry.`,
        );
      }
      return { process_id: id, signal, delivered: r };
    }
    return { process_id: id, signal, delivered: await this.signalLocal(row.workspace_id, id, signal) };
  }

  /** Signals a process this node runs (a client's request, here or from another node). */
  private async signalLocal(workspaceId: string, id: string, signal: SignalName): Promise<boolean> {
    const live = this.live.get(id);
    if (!live?.proc || live.row.workspace_id !== workspaceId) return false;
    const n = osc.signals[signal];
    const r = await live.proc.signal(signal);
    if (r.ok && r.delivered && n) live.signals.add(n);
    return r.ok === true && r.delivered === true;
  }

  // ---------------------------------------------------------------- namespace life and shutdown

  /**
   * Stops every running process of a namespace and waits until their ends are recorded (restore,
   * deletion: called under the namespace's exclusive lock, so no new one starts meanwhile). Processes
   * on other nodes are stopped through the control channel; 409 when one of them does not stop in time.
   */
  async stopNamespace(workspaceId: string, namespace: string): Promise<void> {
    await this.stopLocal(workspaceId, namespace);
    if (!this.deps.cluster) return;
    let rows = (await this.repo.running(workspaceId, namespace)).filter((r) => r.node !== this.node);
    if (rows.length === 0) return;
    for (const node of new Set(rows.map((r) => r.node))) this.deps.control.stopNamespace(node, workspaceId, namespace);
    const deadline = Date.now() + REMOTE_STOP_MS;
    while (rows.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      rows = (await this.repo.running(workspaceId, namespace)).filter((r) => r.node !== this.node);
    }
    if (rows.length > 0) {
      throw new AppError(
        'conflict',
        `Background processes of this namespace run on another node that did not stop them (${rows.map((r) => r.id).join(', ')}); retry shortly.`,
        { retryAfter: 5 },
      );
    }
  }

  private async stopLocal(workspaceId: string, namespace: string): Promise<void> {
    const mine = [...this.live.values()].filter(
      (l) => l.row.workspace_id === workspaceId && l.row.namespace === namespace,
    );
    for (const l of mine) {
      l.stopReason ??= 'killed';
      l.proc?.stop();
    }
    await Promise.all(mine.map((l) => l.ended));
  }

  /** Namespace deletion: its processes are stopped, then their records and output go. */
  async deleteNamespace(workspaceId: string, namespace: string): Promise<void> {
    await this.stopNamespace(workspaceId, namespace);
    for (const r of await this.repo.ofNamespace(workspaceId, namespace)) {
      await removeOutput(outputDir(this.deps.dataDir, workspaceId, r.id));
      await this.repo.remove(workspaceId, r.id);
    }
  }

  /**
   * At start: processes that were running when this server stopped are gone; their records say
   * `server_restart`, their output stays. SQLite: every running record (one node). A cluster: the
   * records of earlier servers on this host whose process is gone (a node id is host:pid:random); other
   * nodes' processes are left to the liveness check.
   */
  async recover(): Promise<void> {
    const host = `${hostname()}:`;
    let after = '';
    for (;;) {
      const rows = await this.repo.orphans(null, this.node, 200, after);
      if (rows.length === 0) return;
      after = rows[rows.length - 1]!.id;
      for (const r of rows) {
        if (this.deps.cluster) {
          if (!r.node.startsWith(host)) continue;
          const pid = Number(r.node.slice(host.length).split(':')[0]);
          if (!(pid > 0) || pidAlive(pid)) continue;
        }
        await this.endOrphan(r, 'server_restart');
      }
    }
  }

  private async endOrphan(r: ProcessRow, reason: 'server_restart' | 'node_lost'): Promise<void> {
    const totals = await this.totalsFromFiles(outputDir(this.deps.dataDir, r.workspace_id, r.id));
    // Its end time is unknown: the moment it was last known to run (its node's last heartbeat) is the best bound.
    const endMs = reason === 'node_lost' ? Number(r.heartbeat_ms) : Date.now();
    const ok = await this.repo.end(r.workspace_id, r.id, {
      exit_code: null,
      exit_reason: reason,
      signal: null,
      ended_at: isoMs(endMs),
      ended_ms: endMs,
      stdout_bytes: totals.stdoutBytes,
      stderr_bytes: totals.stderrBytes,
      stdout_dropped_bytes: totals.stdoutDropped,
      stderr_dropped_bytes: totals.stderrDropped,
    });
    if (!ok) return;
    await this.deps.events
      .emit({
        workspaceId: r.workspace_id,
        namespace: r.namespace,
        type: 'process.exited',
        data: {
          process_id: r.id,
          exit_code: null,
          exit_reason: reason,
          signal: null,
          duration_ms: Math.max(0, endMs - Number(r.started_ms)),
        },
      })
      .catch((err: unknown) => this.deps.logger.error({ err, process_id: r.id }, 'process.exited event failed'));
  }

  /** Retention sweep, and in a cluster the heartbeat and the node-lost check. */
  startWorkers(): void {
    const every = (ms: number, fn: () => Promise<void>) => {
      const t = setInterval(
        () =>
          void fn().catch((err: unknown) => this.deps.logger.warn({ err }, 'background process maintenance failed')),
        ms,
      );
      t.unref();
      this.timers.push(t);
    };
    every(SWEEP_MS, () => this.sweep());
    // What running processes write counts against the namespace quota: have their namespaces measured.
    every(QUOTA_MEASURE_MS, async () => {
      for (const l of this.live.values())
        this.deps.files.quota.execFinished({ workspaceId: l.row.workspace_id, namespace: l.row.namespace });
    });
    void this.sweep().catch((err: unknown) =>
      this.deps.logger.warn({ err }, 'background process retention sweep failed'),
    );
    if (this.deps.cluster) {
      // Another node marks them node_lost when this one has not vouched for them for processes.nodeLostMs.
      const lostMs = this.deps.config.processes.nodeLostMs;
      every(Math.min(HEARTBEAT_MS, Math.max(250, Math.floor(lostMs / 4))), async () => {
        if (this.live.size > 0) await this.repo.heartbeat(this.node, Date.now());
        for (const r of await this.repo.orphans(Date.now() - lostMs, this.node, 200))
          await this.endOrphan(r, 'node_lost');
      });
    }
  }

  /** Removes records and output whose retention has passed. */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      const before = Date.now() - this.deps.config.processes.retentionMs;
      for (;;) {
        const rows = await this.repo.expired(before, 500);
        for (const r of rows) {
          await removeOutput(outputDir(this.deps.dataDir, r.workspace_id, r.id));
          await this.repo.remove(r.workspace_id, r.id);
        }
        if (rows.length < 500) return;
      }
    })().finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  /** Ends long-polls and streams (before the HTTP server closes). */
  endWaits(): void {
    this.closed.abort();
  }

  /** Server shutdown: every running process is killed and recorded as server_restart. */
  async close(): Promise<void> {
    this.closing = true;
    this.closed.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const all = [...this.live.values()];
    for (const l of all) {
      l.stopReason = 'server_restart';
      l.proc?.stop();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(all.map((l) => l.ended)),
      new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    await this.sweeping?.catch(() => {});
    await this.deps.control.close();
  }
}

function validateEnv(env: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!env) return undefined;
  const names = Object.keys(env);
  if (names.length > MAX_ENV_VARS) throw new AppError('validation_failed', `env: at most ${MAX_ENV_VARS} variables`);
  let bytes = 0;
  for (const name of names) {
    const value = env[name];
    if (!ENV_NAME.test(name))
      throw new AppError(
        'validation_failed',
        `env: invalid variable name "${name.slice(0, 100)}" (letters, digits and _, not starting with a digit)`,
      );
    if (RESERVED_ENV.has(name))
      throw new AppError('validation_failed', `env: ${name} is set by the sandbox and cannot be overridden`);
    if (typeof value !== 'string')
      throw new AppError('validation_failed', `env: the value of ${name} must be a string`);
    // An environment string ends at a NUL: such a value cannot be passed.
    if (value.includes('\0'))
      throw new AppError('validation_failed', `env: the value of ${name} contains a NUL character`);
    // As exportLine writes it: name='value' with each quote as '\'' and a separator.
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 3 * (value.split("'").length - 1) + 4;
  }
  if (bytes > MAX_ENV_BYTES)
    throw new AppError('validation_failed', `env: at most ${MAX_ENV_BYTES} bytes in all (names and quoted values)`);
  return { ...env };
}

/** Waits for `p`, at most `ms`, or until `signal` aborts. */
async function sleepUntil(p: Promise<unknown>, ms: number, signal: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  await Promise.race([
    p.catch(() => {}),
    new Promise<void>((r) => (timer = setTimeout(r, ms))),
    new Promise<void>((r) => {
      onAbort = () => r();
      signal.addEventListener('abort', onAbort, { once: true });
    }),
  ]);
  clearTimeout(timer);
  if (onAbort) signal.removeEventListener('abort', onAbort);
}
