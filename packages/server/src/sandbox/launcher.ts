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
import type { LaunchOutcome, LaunchSpec } from './launch.js';

export type ToLauncher = { t: 'run'; id: number; spec: LaunchSpec } | { t: 'kill'; id: number };
export type FromLauncher =
  | { t: 'done'; id: number; outcome: LaunchOutcome }
  | { t: 'failed'; id: number; message: string; code?: string };

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
  resolve(outcome: LaunchOutcome): void;
  reject(err: Error): void;
}

const EXIT_GRACE_MS = 2_000;

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
  private nextId = 1;

  constructor(private readonly log: LauncherLogger) {}

  /** Starts the process now (normally it starts with the first run). */
  start(): void {
    this.ensure();
  }

  /** Pid of the current launcher process, if one runs (tests, diagnostics). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts `spec` in the launcher. `done` rejects when it cannot be started or the launcher dies. */
  run(spec: LaunchSpec): { done: Promise<LaunchOutcome>; kill(): void } {
    const child = this.ensure();
    const id = this.nextId++;
    const done = new Promise<LaunchOutcome>((resolve, reject) => {
      this.pending.set(id, { child, resolve, reject });
    });
    this.refresh();
    this.send(child, { t: 'run', id, spec });
    return {
      done,
      kill: () => {
        if (this.pending.has(id) && this.child === child) this.send(child, { t: 'kill', id });
      },
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
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.child = child;
    child.on('message', (m: FromLauncher) => this.onMessage(m));
    child.on('error', (err) => this.onGone(child, err.message));
    child.once('exit', (code, signal) => this.onGone(child, signal ? `killed by ${signal}` : `exited with code ${code}`));
    this.refresh();
    return child;
  }

  private onMessage(m: FromLauncher): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.refresh();
    if (m.t === 'done') p.resolve(m.outcome);
    else p.reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
  }

  private onGone(child: ChildProcess, why: string): void {
    if (this.child === child) {
      this.child = null;
      // A broken channel with the process still up: it must not keep running sandboxes nobody waits for.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const mine = [...this.pending].filter(([, p]) => p.child === child);
    if (mine.length === 0) return;
    this.log.error({ pid: child.pid, running: mine.length, why }, 'exec launcher died; its commands were killed');
    const err = new LauncherGoneError(why);
    for (const [id, p] of mine) {
      this.pending.delete(id);
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
