/**
 * Starts one exec's process tree and watches it to the end: the descriptor
 * layout bwrap expects, stdin, capped stdout/stderr, the cgroup hand-off, the
 * wall-clock timeout and the kill discipline. It runs inside the launcher
 * process (launcher-main.ts), never in the server: see launcher.ts for why.
 *
 * Everything a LaunchSpec holds is plain data, so it crosses the launcher's
 * channel as is; the outcome does too (outputs as snapshots).
 *
 * Beyond collecting output for the outcome, a launch can hand output to a
 * sink as it arrives (live exec, background processes); a sink that returns a
 * promise pauses that stream until it settles, so a slow consumer slows the
 * command (its pipe fills) instead of growing memory. A background process
 * also keeps its stdin open for later writes and takes signals.
 */
import { closeSync, constants as fsc, openSync, readFileSync, readdirSync } from 'node:fs';
import { constants as osc } from 'node:os';
import type { Readable } from 'node:stream';
import { FD } from './bwrap.js';
import {
  cgroupsEmpty,
  cgroupPids,
  killCgroups,
  memoryCounters,
  peakReachedLimit,
  type MemoryCounters,
} from './cgroups.js';
import { spawnNative, type ChildFd, type NativeChild } from './native-child.js';
import { procStat } from './pids.js';
import { CappedOutput, type OutputSnapshot } from './output.js';
import type { StreamName } from './ring-writer.js';

/** Exit code reported for a command killed by the wall-clock limit (as timeout(1) does). */
export const TIMEOUT_EXIT_CODE = 124;
const KILL_GRACE_MS = 3_000;

export interface LaunchSpec {
  file: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
  /** UTF-8 text for stdin; absent = /dev/null (unless keepStdinOpen). */
  stdin?: string;
  /** stdin stays an open pipe after `stdin` for later writes (write/closeStdin); background processes. */
  keepStdinOpen?: boolean;
  /** enter mode: a command too long for argv, for trove-enter's FD.command (it becomes a read-only file). */
  commandData?: Uint8Array;
  /**
   * NUL-separated options on FD.args (kept out of the cmdline the sandbox can read): bwrap's `--args`, or
   * trove-enter's sandbox options.
   */
  argsData?: Uint8Array;
  /** enter mode: trove-enter's command options (environment, `--`, argv) for FD.go. */
  goData?: Uint8Array;
  /** Wall clock; null = none (background processes without a limit). */
  timeoutMs: number | null;
  /** Output collected into the outcome, per stream (the rest is counted). */
  maxOutputBytes: number;
  /**
   * Hand output to the sink as it arrives, at most maxBytes per stream (null = all; the rest is only
   * counted). stopOnKill: once killed, nothing more is handed over and paused streams are drained
   * (a live consumer that stopped reading must not keep a killed command's pipes full).
   */
  forward?: { maxBytes: number | null; stopOnKill: boolean };
  /** bwrap mode: read --info-fd (the sandbox's pid 1 and namespaces). */
  bwrap: boolean;
  /**
   * `file` is trove-enter (a command in a namespace's warm sandbox): it reports its supervisor's pid on
   * FD.info and joins the cgroup itself; when it exits, whatever is left in the cgroup is killed.
   */
  enter?: boolean;
  /** argv[0] the process shows (trove-enter's cmdline is readable inside the sandbox: no host path). */
  argv0?: string;
  /** The exec's cgroup; null = no per-exec cgroups. */
  cgroup: LaunchCgroup | null;
  seccompPath: string | null;
  /** Insecure mode: own process group, killed as a group. */
  detached: boolean;
}

export interface LaunchCgroup {
  /** Its directories: one per v1 hierarchy, one in v2. */
  dirs: string[];
  /** The one whose OOM counters belong to this exec; null without the memory controller. */
  memoryDir: string | null;
  /** cgroup v2: killed with cgroup.kill, emptiness from cgroup.events. */
  v2: boolean;
}

export interface LaunchOutcome {
  exitCode: number;
  stdout: OutputSnapshot;
  stderr: OutputSnapshot;
  durationMs: number;
  timedOut: boolean;
  /** The sandbox's shell came up (limits set) before the command ran. */
  ready: boolean;
  /** Killed by kill('shutdown') (server shutdown). */
  shutdown: boolean;
  /** Killed by kill('stop') (a caller ended it: namespace restore or delete, a SIGKILL sent by a client). */
  stopped: boolean;
  /** Processes of this exec the OOM killer killed (its own memory limit, its namespace's, or the host's). */
  oomKills: number;
  /** The exec's own memory limit was reached during it (so an OOM kill is most likely its own doing). */
  execMemoryLimitHit: boolean;
  /** The exec's cgroups held no process any more when it ended (the slot can be reused as is). */
  cgroupsEmpty: boolean;
}

/** bwrap's report of a sandbox it made (--info-fd): enough for trove-enter to find and check it. */
export interface SandboxInfo {
  /** The bwrap process (the launcher's child). */
  bwrapPid: number;
  /** The sandbox's pid 1, as the host sees it. */
  pid1: number;
  /** Its mount namespace's inode. */
  mntNs: number;
}

export interface LaunchSink {
  /** The sandbox's shell came up (limits set): what follows is the command's doing. */
  ready?(): void;
  /** bwrap mode: the sandbox exists (its pids and mount namespace). */
  sandbox?(info: SandboxInfo): void;
  /** Output as it arrives (see LaunchSpec.forward); a returned promise pauses the stream until it settles. */
  output?(stream: StreamName, chunk: Buffer): void | Promise<void>;
}

export type KillReason = 'shutdown' | 'stop';

/** Signals a client may send to a background process (and what POST /v1/processes/{id}/signal accepts). */
export const SIGNALS = [
  'SIGTERM',
  'SIGKILL',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
] as const;
export type SignalName = (typeof SIGNALS)[number];

export class StdinClosedError extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'StdinClosedError';
  }
}

export interface Launched {
  /** Settles when the process tree is gone; rejects only when it could not be started. */
  done: Promise<LaunchOutcome>;
  /** Kills the whole tree: 'shutdown' (the default) marks the outcome and appends a note to stderr; 'stop' marks it stopped. */
  kill(reason?: KillReason): void;
  /** Queues bytes for stdin (keepStdinOpen); returns the bytes still queued. Throws StdinClosedError. */
  write(data: Buffer): number;
  /** Ends stdin (the command reads EOF once it has read what was queued). */
  closeStdin(): void;
  readonly stdinOpen: boolean;
  /** Bytes written to stdin but not yet taken by the command's pipe. */
  readonly stdinQueued: number;
  /**
   * Sends `signal` to every process of the command (its cgroup, else every descendant of the sandbox's
   * pid 1; insecure mode: its process group); the sandbox's own pid 1 only gets SIGKILL. True when at least
   * one process received it.
   */
  signal(signal: SignalName): boolean;
  /** Stops handing output to the sink (its consumer went away); the streams flow on into the outcome only. */
  unforward(): void;
}

/** What a trove-enter process needs before its command is known (prespawn). */
export type EnterSpawn = Pick<LaunchSpec, 'file' | 'argv0' | 'env' | 'argsData' | 'seccompPath'>;

/**
 * Starts trove-enter ahead of its command: it joins its sandbox and cgroup and waits on FD.go. Its stdio,
 * info, command and go pipes are open; launch(spec, sink, child) gives it its command. Throws when it
 * cannot be spawned.
 */
export function prespawn(e: EnterSpawn): NativeChild {
  // Every descriptor not listed is closed in the child (native-child.ts), one this process inherited included.
  const stdio: ChildFd[] = ['in', 'out', 'out'];
  for (let i = 3; i <= FD.args; i++) stdio[i] = 'none';
  stdio[FD.info] = 'out';
  stdio[FD.ready] = 'out';
  for (const fd of [FD.go, FD.command, FD.args]) stdio[fd] = 'in';
  let seccompFd = -1;
  try {
    if (e.seccompPath) {
      seccompFd = openSync(e.seccompPath, fsc.O_RDONLY);
      stdio[FD.seccomp] = seccompFd;
    }
    const child = spawnNative({ file: e.file, argv: [e.argv0 ?? e.file], env: e.env, stdio });
    const pipes = child.stdio;
    for (const fd of [FD.args, FD.go, FD.command, 0]) pipes[fd]?.on('error', () => {});
    const args = e.argsData;
    if (args) pipes[FD.args]?.end(Buffer.from(args.buffer, args.byteOffset, args.byteLength));
    else pipes[FD.args]?.end();
    return child;
  } finally {
    if (seccompFd >= 0) closeSync(seccompFd);
  }
}

/**
 * Starts `l` (enter mode: gives the prespawned trove-enter `pre`, or one started now, its command) and
 * watches it to its end.
 */
export function launch(l: LaunchSpec, sink: LaunchSink = {}, pre?: NativeChild): Launched {
  const stdout = new CappedOutput('stdout', l.maxOutputBytes);
  const stderr = new CappedOutput('stderr', l.maxOutputBytes);
  const cg = l.enter && l.cgroup && l.cgroup.dirs.length > 0 ? l.cgroup : null;
  const cgroups = cg?.dirs ?? null;
  const v2 = cg?.v2 ?? false;
  const memory = cg?.memoryDir ?? null;
  const memAtStart = memory ? memoryCounters(memory, v2) : null;

  // Security: every descriptor not listed is closed in the child (native-child.ts), one this process inherited
  // without O_CLOEXEC included: bwrap would pass it on to the command.
  const stdio: ChildFd[] = [l.stdin !== undefined || l.keepStdinOpen ? 'in' : 'none', 'out', 'out'];
  for (let i = 3; i <= FD.args; i++) stdio[i] = 'none';
  let seccompFd = -1;
  let child: NativeChild;
  const started = performance.now();
  try {
    if (l.enter) {
      child = pre ?? prespawn(l);
    } else {
      if (l.bwrap) {
        stdio[FD.info] = 'out';
        if (l.argsData) stdio[FD.args] = 'in';
        if (l.seccompPath) {
          // A fresh open per exec: bwrap reads the filter to EOF, a shared offset would leave the next one empty.
          seccompFd = openSync(l.seccompPath, fsc.O_RDONLY);
          stdio[FD.seccomp] = seccompFd;
        }
      }
      stdio[FD.ready] = 'out';
      child = spawnNative({
        file: l.file,
        argv: [l.argv0 ?? l.file, ...l.args],
        cwd: l.cwd,
        env: l.env,
        stdio,
        detached: l.detached,
      });
    }
  } catch (err) {
    return {
      done: Promise.reject(err),
      kill: () => {},
      write: () => {
        throw new StdinClosedError('the command did not start');
      },
      closeStdin: () => {},
      stdinOpen: false,
      stdinQueued: 0,
      signal: () => false,
      unforward: () => {},
    };
  } finally {
    if (seccompFd >= 0) closeSync(seccompFd);
  }

  let ready = false;
  let timedOut = false;
  let shutdown = false;
  let stopped = false;
  let killed = false;
  let exited = false;
  let sandboxPid = 0;
  let fallback: NodeJS.Timeout | undefined;

  const kill = () => {
    if (killed) return;
    killed = true;
    if (l.forward?.stopOnKill) unforward();
    if (cgroups) killCgroups(cgroups, v2);
    // Security: once bwrap has exited its child may be reaped and its pid reused: never signal pids after that.
    if (exited) return;
    // Without a cgroup, a warm sandbox's command tree is what hangs below its supervisor (a subreaper). Swept
    // again while anything is left: a process forked after a sweep listed its parent (a fork bomb) would
    // otherwise outlive the supervisor in the namespace's sandbox. Killed processes' children move up to the
    // supervisor, so the next sweep finds them; the kernel's process cap bounds each round.
    if (l.enter && !cgroups && sandboxPid) {
      for (let round = 0; round < KILL_SWEEPS; round++) {
        const left = descendants(sandboxPid).filter(isLive);
        if (left.length === 0) break;
        killPids(left);
      }
    }
    try {
      if (sandboxPid) process.kill(sandboxPid, 'SIGKILL');
      else if (l.detached && child.pid) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
    // bwrap exits once the namespace's pid 1 is reaped; if it somehow does not, take it down directly.
    fallback = setTimeout(() => {
      try {
        if (l.detached && child.pid) process.kill(-child.pid, 'SIGKILL');
        if (!exited) child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, KILL_GRACE_MS);
  };
  const timer =
    l.timeoutMs === null
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          kill();
        }, l.timeoutMs);

  // Output: always collected (up to maxOutputBytes) into the outcome; also handed to the sink when forwarding.
  let forwarding = Boolean(l.forward && sink.output);
  const forwarded = { stdout: 0, stderr: 0 };
  const paused = new Set<Readable>();
  /** Sink writes not settled yet: a background process's outcome waits for its output to be on disk. */
  const inflight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    const t = p.catch(() => {}).finally(() => inflight.delete(t));
    inflight.add(t);
    return t;
  };
  /** Notes of ours in stderr (e.g. the shutdown kill): kept like output and handed over like it. */
  const note = (text: string) => {
    const buf = Buffer.from(text);
    stderr.push(buf);
    if (forwarding) forward('stderr', buf);
  };
  const unforward = () => {
    forwarding = false;
    for (const s of paused) s.resume();
    paused.clear();
  };
  // Pieces go to the sink one at a time per stream, in order. pause() holds the pipe while the sink is
  // busy, but node resumes every stdio stream when the child exits (child_process flushStdio): what
  // arrives then (at most what the pipe held) waits in this chain instead.
  const chains: Record<StreamName, { tail: Promise<void>; queued: number; stream: Readable | null }> = {
    stdout: { tail: Promise.resolve(), queued: 0, stream: null },
    stderr: { tail: Promise.resolve(), queued: 0, stream: null },
  };
  const forward = (name: StreamName, part: Buffer) => {
    const chain = chains[name];
    let wait: Promise<void> | void;
    if (chain.queued === 0) {
      wait = sink.output!(name, part);
      if (!wait) return;
    } else {
      wait = chain.tail.then(() => (forwarding ? sink.output!(name, part) : undefined));
    }
    chain.queued++;
    const tail = track(wait);
    chain.tail = tail;
    const stream = chain.stream;
    if (stream && !paused.has(stream)) {
      stream.pause();
      paused.add(stream);
    }
    void tail.then(() => {
      chain.queued--;
      if (chain.queued > 0 || !stream) return;
      if (!paused.delete(stream)) return; // unforward() resumed it already
      stream.resume();
    });
  };
  const collect = (name: StreamName, stream: Readable, out: CappedOutput) => {
    chains[name].stream = stream;
    stream.on('data', (c: Buffer) => {
      out.push(c);
      if (!forwarding) return;
      const max = l.forward!.maxBytes;
      const room = max === null ? c.length : max - forwarded[name];
      if (room <= 0) return;
      const part = c.length <= room ? c : c.subarray(0, room);
      forwarded[name] += part.length;
      forward(name, part);
    });
    // A prespawned trove-enter's streams were paused while it waited (launcher-main takeSpare).
    stream.resume();
  };
  collect('stdout', child.stdout!, stdout);
  collect('stderr', child.stderr!, stderr);

  let stdinOpen = Boolean(child.stdin);
  if (child.stdin) {
    child.stdin.on('error', () => {
      // The command did not read all of stdin (or closed it): not an error of ours, but nothing more goes in.
      stdinOpen = false;
    });
    if (l.stdin) child.stdin.write(Buffer.from(l.stdin, 'utf8'));
    if (!l.keepStdinOpen) {
      child.stdin.end();
      stdinOpen = false;
    }
  }
  const pipes = child.stdio as ReadonlyArray<(NodeJS.ReadableStream & NodeJS.WritableStream) | null | undefined>;
  const readyPipe = pipes[FD.ready];
  readyPipe?.on('data', () => {
    if (ready) return;
    ready = true;
    sink.ready?.();
  });
  readyPipe?.on('error', () => {});
  // Read to EOF (bwrap's options before it sets the sandbox up; trove-enter's command once it is in place);
  // a write error means the process died, which `close` reports. prespawn() wrote trove-enter's options.
  const feeds = l.enter
    ? ([
        [FD.command, l.commandData],
        [FD.go, l.goData],
      ] as const)
    : ([[FD.args, l.argsData]] as const);
  for (const [fd, data] of feeds) {
    const pipe = pipes[fd];
    pipe?.on('error', () => {});
    if (data) pipe?.end(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    else pipe?.end();
  }
  if (l.bwrap || l.enter) {
    const info = pipes[FD.info];
    let infoText = '';
    info?.on('error', () => {});
    info?.on('data', (c: Buffer) => {
      if (sandboxPid) return;
      infoText += c.toString('utf8');
      // bwrap writes one JSON object; its pid comes first, the namespaces after it.
      if (!infoText.includes('}')) return;
      const m = /"child-pid"\s*:\s*(\d+)/.exec(infoText);
      if (!m) return;
      sandboxPid = Number(m[1]);
      const mnt = /"mnt-namespace"\s*:\s*(\d+)/.exec(infoText);
      if (l.bwrap && child.pid)
        sink.sandbox?.({ bwrapPid: child.pid, pid1: sandboxPid, mntNs: mnt ? Number(mnt[1]) : 0 });
      // Killed before we knew the sandbox's pid 1 (still setting up): finish the job, unless the process we
      // spawned is gone already (then --die-with-parent has done it, and the pid may be reused).
      if (killed && !exited) {
        try {
          process.kill(sandboxPid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    });
  }

  const done = new Promise<LaunchOutcome>((resolve) => {
    child.once('exit', () => {
      exited = true;
      stdinOpen = false;
      // The command ended: what it left in its cgroup ends too (its supervisor has killed its own subtree).
      if (l.enter && cgroups) killCgroups(cgroups, v2);
    });
    child.once('close', async (code, signal) => {
      clearTimeout(timer);
      clearTimeout(fallback);
      const exitCode = code ?? (signal ? 128 + ((osc.signals as Record<string, number>)[signal] ?? 0) : 1);
      if (shutdown && !timedOut) note('\n[trove: the command was killed: the server is shutting down]\n');
      // Output still queued for the sink goes out before the outcome (the outcome ends the launch for the
      // server). The ring files always settle; a live consumer that stopped reading gets what is left of
      // the wall clock, then the rest is dropped (after a kill it is dropped at once).
      if (!l.forward?.stopOnKill) await Promise.all([...inflight]);
      else if (forwarding && inflight.size > 0) {
        const left = l.timeoutMs === null ? KILL_GRACE_MS : Math.max(0, l.timeoutMs - (performance.now() - started));
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all([...inflight]), new Promise((r) => (timer = setTimeout(r, left)))]);
        clearTimeout(timer);
        unforward();
      }
      resolve({
        exitCode: timedOut ? TIMEOUT_EXIT_CODE : exitCode,
        stdout: stdout.snapshot(),
        stderr: stderr.snapshot(),
        durationMs: Math.round(performance.now() - started),
        timedOut,
        ready,
        shutdown,
        stopped,
        ...memoryOutcome(memory, v2, memAtStart),
        cgroupsEmpty: cgroups ? cgroupsEmpty(cgroups, v2) : true,
      });
    });
  });
  // Security: a pid read from a cgroup or /proc is signalled only while the sandbox runs; once bwrap
  // exited its processes are gone and their pids may belong to someone else.
  const signal = (name: SignalName): boolean => {
    if (exited || killed) return false;
    if (name === 'SIGKILL') {
      stopped = true;
      kill();
      return true;
    }
    if (!l.bwrap && !l.enter) {
      if (!l.detached || !child.pid) return false;
      try {
        process.kill(-child.pid, name);
        return true;
      } catch {
        return false;
      }
    }
    if (!sandboxPid) return false;
    // The sandbox's pid 1 (bwrap's init, or trove-enter's supervisor) only reaps; the command and everything
    // it started are below it. trove-enter's own process (in the cgroup too) only waits.
    const pids = (cgroups ? cgroupPids(cgroups) : descendants(sandboxPid)).filter(
      (p) => p !== sandboxPid && p !== child.pid,
    );
    let delivered = false;
    for (const pid of pids) {
      try {
        process.kill(pid, name);
        delivered = true;
      } catch {
        /* exited meanwhile */
      }
    }
    return delivered;
  };

  return {
    done,
    kill: (reason: KillReason = 'shutdown') => {
      if (reason === 'shutdown') shutdown = true;
      else stopped = true;
      kill();
    },
    write: (data: Buffer) => {
      if (!child.stdin || !stdinOpen) throw new StdinClosedError(exited ? 'the process has exited' : 'stdin is closed');
      child.stdin.write(data);
      return child.stdin.writableLength;
    },
    closeStdin: () => {
      if (!child.stdin || !stdinOpen) return;
      stdinOpen = false;
      child.stdin.end();
    },
    get stdinOpen() {
      return stdinOpen;
    },
    get stdinQueued() {
      return child.stdin?.writableLength ?? 0;
    },
    signal,
    unforward,
  };
}

/** How many times kill() sweeps a warm sandbox's command tree without a cgroup, at most. */
const KILL_SWEEPS = 100;

/** The process exists and is not a zombie (killed, waiting for its parent to reap it). */
function isLive(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state !== undefined && state !== 'Z';
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Every descendant of `pid` (host pids), through /proc/<pid>/task/<tid>/children; at most 100,000. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  const seen = new Set<number>([pid]);
  while (queue.length > 0 && out.length < 100_000) {
    const p = queue.shift()!;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      let text: string;
      try {
        text = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const w of text.split(' ')) {
        const c = Number(w);
        if (!c || seen.has(c)) continue;
        seen.add(c);
        out.push(c);
        queue.push(c);
      }
    }
  }
  return out;
}

function memoryOutcome(
  dir: string | null,
  v2: boolean,
  atStart: MemoryCounters | null,
): Pick<LaunchOutcome, 'oomKills' | 'execMemoryLimitHit'> {
  if (!dir || !atStart) return { oomKills: 0, execMemoryLimitHit: false };
  const now = memoryCounters(dir, v2);
  const oomKills = now.oomKills - atStart.oomKills;
  if (oomKills <= 0) return { oomKills: 0, execMemoryLimitHit: false };
  return { oomKills, execMemoryLimitHit: v2 ? now.limitHits > atStart.limitHits : peakReachedLimit(dir) };
}
