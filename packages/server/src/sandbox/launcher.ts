/**
 * The exec launcher: a small long-lived child process that starts every
 * sandbox on the server's behalf (launcher-main.ts runs launch.ts there).
 *
 * Why: on Linux `child_process.spawn` forks the calling process, and fork
 * copies its page tables while the event loop waits. For a server of
 * 150–400 MiB that is 3–8 ms of stall per exec (more under load), paid by
 * every request in flight, not only the exec. The launcher stays at the size
 * of a bare Node process, so forking it is cheap, and its own short stalls
 * delay no HTTP request. Its event loop also answers bwrap's cgroup hand-off
 * (--info-fd / --block-fd) without queueing behind the server's work.
 *
 * Lifetime: started with the sandbox probe; if it dies, the execs it was
 * running fail (their sandboxes die with it: bwrap --die-with-parent) and the
 * next exec starts a new one. It exits, killing its sandboxes, as soon as its
 * channel to the server closes, which includes the server being SIGKILLed.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EnterSpawn, KillReason, LaunchOutcome, LaunchSpec, SandboxInfo, SignalName } from './launch.js';
import type { StreamName } from './ring-writer.js';

/** Where a background process's output goes: ring files in `dir` (ring-writer.ts), `capBytes` retained per stream. */
export interface RingOutput {
  dir: string;
  capBytes: number;
}

/** A background process's output so far: bytes written and bytes no longer retained, per stream. */
export interface RingTotals {
  stdoutBytes: number;
  stderrBytes: number;
  stdoutDropped: number;
  stderrDropped: number;
}

export type ToLauncher =
  /**
   * notify: send `ready` and `sandbox` (a warm sandbox's holder) even though the output is not live.
   * spare: the prespawned trove-enter to give the command to (enter mode), if it is still there.
   */
  | { t: 'run'; id: number; spec: LaunchSpec; live?: boolean; notify?: boolean; spare?: number }
  | { t: 'start'; id: number; spec: LaunchSpec; output: RingOutput; spare?: number }
  /** Starts trove-enter ahead of a command (a spare, see launch.ts prespawn). */
  | { t: 'prespawn'; spare: number; spawn: EnterSpawn }
  /** A spare nobody will use: it is told so (end of its go descriptor) and exits. */
  | { t: 'drop'; spare: number }
  | { t: 'kill'; id: number; reason?: KillReason }
  /** Live run: the server has passed on `bytes` more of its output (flow control). */
  | { t: 'ack'; id: number; bytes: number }
  /** Live run: its consumer went away; collect the rest without forwarding it. */
  | { t: 'unforward'; id: number }
  | { t: 'stdin'; id: number; req: number; data?: Uint8Array; close?: boolean }
  | { t: 'signal'; id: number; req: number; signal: SignalName };

export type FromLauncher =
  /** outputError: a background process's output could not be written (it was stopped then). */
  | { t: 'done'; id: number; outcome: LaunchOutcome; ring?: RingTotals; outputError?: string }
  | { t: 'failed'; id: number; message: string; code?: string }
  | { t: 'ready'; id: number }
  /** A spare ended before a command took it (its sandbox stopped, or it was dropped or failed). */
  | { t: 'spare-gone'; spare: number; message?: string }
  | { t: 'sandbox'; id: number; info: SandboxInfo }
  | { t: 'chunk'; id: number; stream: StreamName; data: Uint8Array }
  | { t: 'progress'; id: number; totals: RingTotals }
  | { t: 'reply'; id: number; req: number; result: ControlResult };

/** The answer to a stdin write or a signal. */
export interface ControlResult {
  ok: boolean;
  /** Why not (ok false): `closed` (stdin closed or process ended), `full` (too much queued), `gone`. */
  error?: 'closed' | 'full' | 'gone';
  /** stdin: bytes taken (all of them when ok). */
  written?: number;
  stdinOpen?: boolean;
  /** signal: at least one process received it. */
  delivered?: boolean;
}

/** What the server hears about one launch besides its outcome. */
export interface LaunchHooks {
  ready?(): void;
  /** bwrap mode: the sandbox exists (a warm sandbox's holder: what trove-enter needs to find it). */
  sandbox?(info: SandboxInfo): void;
  /** Live run: a piece of output; call ack(bytes) once it is passed on, or the command stalls at the window. */
  chunk?(stream: StreamName, data: Buffer): void;
  /** Background process: its ring totals after each write. */
  progress?(totals: RingTotals): void;
}

/** A launch's outcome with, for a background process, its ring totals at exit. */
export type Launched = LaunchOutcome & { ring?: RingTotals; outputError?: string };

/** A launched process tree as the server holds it. */
export interface LaunchHandle {
  done: Promise<Launched>;
  kill(reason?: KillReason): void;
  ack(bytes: number): void;
  unforward(): void;
  stdin(data: Buffer | null, close: boolean): Promise<ControlResult>;
  signal(signal: SignalName): Promise<ControlResult>;
}

export interface LauncherLogger {
  error(obj: object | string, msg?: string): void;
}

/** The launcher process died or its channel broke while a command ran: its sandbox is gone with it. */
export class LauncherGoneError extends Error {
  constructor(why: string) {
    super(`the exec launcher stopped (${why}) while the command ran`);
    this.name = 'LauncherGoneError';
  }
}

interface Pending {
  child: ChildProcess;
  hooks: LaunchHooks;
  resolve(outcome: Launched): void;
  reject(err: Error): void;
  /** stdin/signal requests waiting for their reply. */
  replies: Map<number, (r: ControlResult) => void>;
}

const EXIT_GRACE_MS = 2_000;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The built entry point: next to this module, or in dist/ when this module runs from its TypeScript source (tests). */
export function launcherScript(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = join(dirname(here), 'launcher-main.js');
  if (existsSync(sibling)) return sibling;
  const built = here.replace(/([/\\])src([/\\]sandbox[/\\])[^/\\]+$/, '$1dist$2launcher-main.js');
  if (built !== here && existsSync(built)) return built;
  throw new Error(`the exec launcher (launcher-main.js) is missing next to ${here}: build the server (npm run build)`);
}

export class Launcher {
  private child: ChildProcess | null = null;
  private readonly pending = new Map<number, Pending>();
  /** Spares of the current launcher process: called with `undefined` when one is taken, else when it ended. */
  private readonly spares = new Map<number, (message?: string) => void>();
  private nextId = 1;

  constructor(
    private readonly log: LauncherLogger,
    /** The launcher process's PATH (the server's own). */
    private readonly hostPath: string,
  ) {}

  /**
   * Starts trove-enter ahead of its command (launch.ts prespawn); `gone` is called once if it ends before a
   * run() or startBackground() takes it (its sandbox stopped, dropSpare(), a failure, the launcher's end).
   */
  prespawn(spawn: EnterSpawn, gone: (message?: string) => void): number {
    const child = this.ensure();
    const spare = this.nextId++;
    this.spares.set(spare, gone);
    this.send(child, { t: 'prespawn', spare, spawn });
    return spare;
  }

  /** Ends a spare nobody will use. */
  dropSpare(spare: number): void {
    if (!this.spares.has(spare) || !this.child) return;
    this.send(this.child, { t: 'drop', spare });
  }

  /** Starts the process now (normally it starts with the first run). */
  warm(): void {
    this.ensure();
  }

  /** Pid of the current launcher process, if one runs (tests, diagnostics). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts `spec` in the launcher. `done` rejects when it cannot be started or the launcher dies.
   * With hooks.chunk the output is forwarded as it comes (live exec, `spec.forward`).
   */
  run(spec: LaunchSpec, hooks: LaunchHooks = {}, spare?: number): LaunchHandle {
    return this.launch(
      {
        t: 'run',
        spec,
        live: Boolean(hooks.chunk),
        notify: Boolean(hooks.ready || hooks.sandbox),
        spare: this.take(spare),
      },
      hooks,
    );
  }

  /** Starts a background process whose output the launcher writes to ring files (see RingOutput). */
  startBackground(spec: LaunchSpec, output: RingOutput, hooks: LaunchHooks = {}, spare?: number): LaunchHandle {
    return this.launch({ t: 'start', spec, output, spare: this.take(spare) }, hooks);
  }

  /** The spare a command takes, if it is still known (else the launcher starts trove-enter for it). */
  private take(spare: number | undefined): number | undefined {
    if (spare === undefined || !this.spares.delete(spare)) return undefined;
    return spare;
  }

  private launch(
    m: DistributiveOmit<Extract<ToLauncher, { t: 'run' | 'start' }>, 'id'>,
    hooks: LaunchHooks,
  ): LaunchHandle {
    const child = this.ensure();
    const id = this.nextId++;
    const replies = new Map<number, (r: ControlResult) => void>();
    const done = new Promise<Launched>((resolve, reject) => {
      this.pending.set(id, { child, hooks, resolve, reject, replies });
    });
    this.refresh();
    this.send(child, { ...m, id } as ToLauncher);
    const live = () => this.pending.has(id) && this.child === child;
    const control = (msg: (req: number) => ToLauncher): Promise<ControlResult> => {
      if (!live()) return Promise.resolve({ ok: false, error: 'gone' });
      const req = this.nextId++;
      return new Promise((resolve) => {
        replies.set(req, resolve);
        this.send(child, msg(req));
      });
    };
    return {
      done,
      kill: (reason) => {
        if (live()) this.send(child, { t: 'kill', id, reason });
      },
      ack: (bytes) => {
        if (live()) this.send(child, { t: 'ack', id, bytes });
      },
      unforward: () => {
        if (live()) this.send(child, { t: 'unforward', id });
      },
      stdin: (data, close) =>
        control((req) => ({
          t: 'stdin',
          id,
          req,
          data: data ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : undefined,
          close,
        })),
      signal: (signal) => control((req) => ({ t: 'signal', id, req, signal })),
    };
  }

  /** Stops the launcher; its running sandboxes are killed (callers kill and await theirs first). */
  async close(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    const child = fork(launcherScript(), [], {
      // Not the server's flags (--cpu-prof, --inspect, heap sizes) nor its environment: the launcher needs neither.
      execArgv: [],
      env: { PATH: this.hostPath },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.child = child;
    child.on('message', (m: FromLauncher) => this.onMessage(m));
    child.on('error', (err) => this.onGone(child, err.message));
    child.once('exit', (code, signal) =>
      this.onGone(child, signal ? `killed by ${signal}` : `exited with code ${code}`),
    );
    this.refresh();
    return child;
  }

  private onMessage(m: FromLauncher): void {
    if (m.t === 'spare-gone') {
      const gone = this.spares.get(m.spare);
      this.spares.delete(m.spare);
      gone?.(m.message);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    switch (m.t) {
      case 'ready':
        p.hooks.ready?.();
        return;
      case 'sandbox':
        p.hooks.sandbox?.(m.info);
        return;
      case 'chunk':
        p.hooks.chunk?.(m.stream, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
        return;
      case 'progress':
        p.hooks.progress?.(m.totals);
        return;
      case 'reply': {
        const r = p.replies.get(m.req);
        p.replies.delete(m.req);
        r?.(m.result);
        return;
      }
    }
    this.pending.delete(m.id);
    this.refresh();
    for (const r of p.replies.values()) r({ ok: false, error: 'gone' });
    p.replies.clear();
    if (m.t === 'done') p.resolve(m.ring ? { ...m.outcome, ring: m.ring, outputError: m.outputError } : m.outcome);
    else p.reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
  }

  private onGone(child: ChildProcess, why: string): void {
    if (this.child === child) {
      this.child = null;
      // A broken channel with the process still up: it must not keep running sandboxes nobody waits for.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      // Its spares went with it.
      const spares = [...this.spares.values()];
      this.spares.clear();
      for (const gone of spares) gone(`the exec launcher stopped (${why})`);
    }
    const mine = [...this.pending].filter(([, p]) => p.child === child);
    if (mine.length === 0) return;
    this.log.error({ pid: child.pid, running: mine.length, why }, 'exec launcher died; its commands were killed');
    const err = new LauncherGoneError(why);
    for (const [id, p] of mine) {
      this.pending.delete(id);
      for (const r of p.replies.values()) r({ ok: false, error: 'gone' });
      p.reject(err);
    }
    this.refresh();
  }

  private send(child: ChildProcess, m: ToLauncher): void {
    if (!child.connected) return; // the exit handler rejects what is pending
    child.send(m, (err) => {
      if (err) this.onGone(child, `channel error: ${err.message}`);
    });
  }

  /** The channel keeps the process alive only while a command runs (an idle server can exit). */
  private refresh(): void {
    const child = this.child;
    if (!child) return;
    if (this.pending.size > 0) {
      child.ref();
      child.channel?.ref();
    } else {
      child.unref();
      child.channel?.unref();
    }
  }
}
