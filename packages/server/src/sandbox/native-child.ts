/**
 * The launcher's child processes (trove-enter, bwrap, an insecure-mode shell), started by the addon's spawn:
 * a vfork-like clone that shares this process's memory and descriptor table until it has a small table of its
 * own (trove_native.c, "process spawning without fork"). Node's own spawn forks the launcher, so each start
 * copied its page tables and write-protected its memory, and the launcher then took a copy-on-write fault
 * for every page it touched next: 3-4 ms of CPU per command on a VM where page-table updates trap to the
 * hypervisor, more than the command itself. Here nothing of the launcher is copied.
 *
 * `NativeChild` has the part of node's ChildProcess that launch.ts uses: its pid, its stdio as sockets,
 * kill(), 'exit' and 'close' with the same meaning and arguments. Its end is seen through SIGCHLD: one
 * listener reaps, without blocking, every child started here (node reaps its own children by pid and never
 * takes one of these).
 */
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { constants as osc } from 'node:os';
import { native } from '../native.js';

/** One descriptor of the child: 'in' a pipe it reads (we write), 'out' one it writes, 'none', or ours to pass. */
export type ChildFd = 'in' | 'out' | 'none' | number;

export interface NativeSpawn {
  file: string;
  /** argv[0] (the name `ps` shows) and the arguments. */
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdio: ChildFd[];
  cwd?: string;
  /** A session (and process group) of its own. */
  detached?: boolean;
}

const SPAWN_PIPE = -2;
const SPAWN_NONE = -1;

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(osc.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);
const errnoNames = new Map<number, string>(Object.entries(osc.errno).map(([name, n]) => [n, name]));

/** Started here and not reaped yet, by pid. */
const live = new Map<number, NativeChild>();
let listening = false;
/**
 * Keeps the event loop alive while a child runs, as node's own child handles do: a SIGCHLD listener does not,
 * and a child's paused output socket may not either, so a script waiting only for a child would exit early.
 */
let keepAlive: NodeJS.Timeout | null = null;

function track(pid: number, child: NativeChild): void {
  live.set(pid, child);
  keepAlive ??= setInterval(() => {}, 2 ** 30);
}

function untrack(pid: number): void {
  live.delete(pid);
  if (live.size === 0 && keepAlive) {
    clearInterval(keepAlive);
    keepAlive = null;
  }
}

/** Reaps what ended: the ended children one by one (a SIGCHLD may stand for several), not every live one. */
function reap(): void {
  for (;;) {
    const pid = native().exitedChild();
    if (pid <= 0) return;
    const child = live.get(pid);
    // Not one of ours (a child node spawned, which node reaps by its pid): look at each of ours instead.
    if (!child) return reapEach();
    if (!reapOne(pid, child)) return;
  }
}

function reapEach(): void {
  for (const [pid, child] of live) reapOne(pid, child);
}

/** True once `pid` is reaped (its end reported). */
function reapOne(pid: number, child: NativeChild): boolean {
  const status = native().waitNoHang(pid);
  if (status === -1) return false;
  untrack(pid);
  child.ended(status);
  return true;
}

/** Starts `s`; throws (as node's spawn reports through 'error': `spawn <file> ENOENT`) when it cannot. */
export function spawnNative(s: NativeSpawn): NativeChild {
  if (!listening) {
    // Before the first child: its SIGCHLD must find the listener.
    process.on('SIGCHLD', reap);
    listening = true;
  }
  const env = Object.entries(s.env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const plan = s.stdio.map((d) => (d === 'in' || d === 'out' ? SPAWN_PIPE : d === 'none' ? SPAWN_NONE : d));
  const out = native().spawn(s.file, s.argv, env, plan, s.cwd ?? null, s.detached ?? false);
  const pid = out[0]!;
  if (pid < 0) {
    const code = errnoNames.get(-pid) ?? `errno ${-pid}`;
    const err = new Error(`spawn ${s.file} ${code}`) as NodeJS.ErrnoException;
    err.code = code;
    err.errno = pid;
    err.syscall = 'spawn';
    throw err;
  }
  const child = new NativeChild(pid, out.slice(1), s.stdio);
  track(pid, child);
  return child;
}

export class NativeChild extends EventEmitter {
  readonly stdio: Array<Socket | null>;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private readers = 0;
  private exited = false;
  private closed = false;

  constructor(
    readonly pid: number,
    fds: number[],
    kinds: ChildFd[],
  ) {
    super();
    this.stdio = kinds.map((kind, i) => {
      const fd = fds[i]!;
      if (fd < 0) return null;
      const socket = new Socket({ fd, readable: kind === 'out', writable: kind === 'in' });
      if (kind === 'out') {
        this.readers++;
        socket.once('close', () => {
          this.readers--;
          this.closeIfDone();
        });
      }
      return socket;
    });
  }

  get stdin(): Socket | null {
    return this.stdio[0] ?? null;
  }
  get stdout(): Socket | null {
    return this.stdio[1] ?? null;
  }
  get stderr(): Socket | null {
    return this.stdio[2] ?? null;
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    // Security: once reaped its pid may be someone else's.
    if (this.exited) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Its wait status (from reap()). */
  ended(status: number): void {
    if (status >= 0 && (status & 0x7f) === 0) this.exitCode = (status >> 8) & 0xff;
    else if (status >= 0) this.signalCode = signalNames.get(status & 0x7f) ?? 'SIGKILL';
    else this.exitCode = 1; // not our child: cannot happen (only reap() waits for these pids)
    this.exited = true;
    // As node does (child_process flushStdio): an output nobody reads is drained, so that it ends and closes.
    for (const s of this.stdio) {
      if (s?.readable && s.listenerCount('data') === 0 && s.listenerCount('readable') === 0) s.resume();
    }
    this.emit('exit', this.exitCode, this.signalCode);
    this.closeIfDone();
  }

  private closeIfDone(): void {
    if (!this.exited || this.readers > 0 || this.closed) return;
    this.closed = true;
    this.emit('close', this.exitCode, this.signalCode);
  }
}
