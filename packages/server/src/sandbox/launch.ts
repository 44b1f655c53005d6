/**
 * Starts one exec's process tree and watches it to the end: the descriptor
 * layout bwrap expects, stdin, capped stdout/stderr, the cgroup hand-off, the
 * wall-clock timeout and the kill discipline. It runs inside the launcher
 * process (launcher-main.ts), never in the server: see launcher.ts for why.
 *
 * Everything a LaunchSpec holds is plain data, so it crosses the launcher's
 * channel as is; the outcome does too (outputs as snapshots).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { constants as osc } from 'node:os';
import { FD } from './bwrap.js';
import { attachToCgroups, cgroupsEmpty, killCgroups, memoryCounters, peakReachedLimit, type MemoryCounters } from './cgroups.js';
import { inheritableFdsCached } from './fds.js';
import { CappedOutput, type OutputSnapshot } from './output.js';

/** Exit code reported for a command killed by the wall-clock limit (as timeout(1) does). */
export const TIMEOUT_EXIT_CODE = 124;
const KILL_GRACE_MS = 3_000;

export interface LaunchSpec {
  file: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
  /** UTF-8 text for stdin; absent = /dev/null. */
  stdin?: string;
  /** bwrap mode: the command text for --ro-bind-data on FD.command (too long for argv). */
  commandData?: Uint8Array;
  /** bwrap mode: NUL-separated options for `--args` on FD.args (kept out of the cmdline the sandbox can read). */
  argsData?: Uint8Array;
  timeoutMs: number;
  maxOutputBytes: number;
  /** bwrap mode: read --info-fd, and release --block-fd once the sandbox is in its cgroup. */
  bwrap: boolean;
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
  /** Processes of this exec the OOM killer killed (its own memory limit, its namespace's, or the host's). */
  oomKills: number;
  /** The exec's own memory limit was reached during it (so an OOM kill is most likely its own doing). */
  execMemoryLimitHit: boolean;
  /** The exec's cgroups held no process any more when it ended (the slot can be reused as is). */
  cgroupsEmpty: boolean;
}

export interface Launched {
  /** Settles when the process tree is gone; rejects only when it could not be started. */
  done: Promise<LaunchOutcome>;
  /** Kills the whole tree for a shutdown: marks the outcome and appends a note to stderr. */
  kill(): void;
}

export function launch(l: LaunchSpec): Launched {
  const stdout = new CappedOutput('stdout', l.maxOutputBytes);
  const stderr = new CappedOutput('stderr', l.maxOutputBytes);
  const cg = l.bwrap && l.cgroup && l.cgroup.dirs.length > 0 ? l.cgroup : null;
  const cgroups = cg?.dirs ?? null;
  const v2 = cg?.v2 ?? false;
  const memory = cg?.memoryDir ?? null;
  const memAtStart = memory ? memoryCounters(memory, v2) : null;

  // Security: cover descriptors this process inherited without O_CLOEXEC; bwrap would pass them to the command.
  const leaked = inheritableFdsCached();
  const stdio: StdioOptions = [l.stdin !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'];
  const top = Math.max(FD.args, ...leaked);
  for (let i = 3; i <= top; i++) stdio[i] = 'ignore';
  let devNull = -1;
  let seccompFd = -1;
  let child: ChildProcess;
  const started = performance.now();
  try {
    if (leaked.length) {
      // Our own copy is close-on-exec (libuv opens everything so); the child gets it dup'ed onto each leaked number.
      devNull = openSync('/dev/null', fsc.O_RDWR);
      for (const fd of leaked) stdio[fd] = devNull;
    }
    if (l.bwrap) {
      stdio[FD.info] = 'pipe';
      if (cgroups) stdio[FD.block] = 'pipe';
      if (l.commandData) stdio[FD.command] = 'pipe';
      if (l.argsData) stdio[FD.args] = 'pipe';
      if (l.seccompPath) {
        // A fresh open per exec: bwrap reads the filter to EOF, a shared offset would leave the next one empty.
        seccompFd = openSync(l.seccompPath, fsc.O_RDONLY);
        stdio[FD.seccomp] = seccompFd;
      }
    }
    stdio[FD.ready] = 'pipe';
    child = spawn(l.file, l.args, { cwd: l.cwd, env: l.env, stdio, detached: l.detached, windowsHide: true });
  } catch (err) {
    return { done: Promise.reject(err), kill: () => {} };
  } finally {
    if (devNull >= 0) closeSync(devNull);
    if (seccompFd >= 0) closeSync(seccompFd);
  }

  let ready = false;
  let timedOut = false;
  let shutdown = false;
  let killed = false;
  let exited = false;
  let sandboxPid = 0;
  let fallback: NodeJS.Timeout | undefined;

  const kill = () => {
    if (killed) return;
    killed = true;
    if (cgroups) killCgroups(cgroups, v2);
    // Security: once bwrap has exited its child may be reaped and its pid reused: never signal pids after that.
    if (exited) return;
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
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, l.timeoutMs);


  child.stdout!.on('data', (c: Buffer) => stdout.push(c));
  child.stderr!.on('data', (c: Buffer) => stderr.push(c));
  if (child.stdin) {
    child.stdin.on('error', () => {
      /* the command did not read all of stdin: not an error of ours */
    });
    child.stdin.end(Buffer.from(l.stdin ?? '', 'utf8'));
  }
  const pipes = child.stdio as unknown as Array<(NodeJS.ReadableStream & NodeJS.WritableStream) | null | undefined>;
  const readyPipe = pipes[FD.ready];
  readyPipe?.on('data', () => {
    ready = true;
  });
  readyPipe?.on('error', () => {});
  // bwrap reads each to EOF before it sets the sandbox up; a write error means bwrap died, which `close` reports.
  for (const [fd, data] of [[FD.command, l.commandData], [FD.args, l.argsData]] as const) {
    if (!data) continue;
    const pipe = pipes[fd];
    pipe?.on('error', () => {});
    pipe?.end(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  if (l.bwrap) {
    const info = pipes[FD.info];
    const block = cgroups ? pipes[FD.block] : null;
    block?.on('error', () => {});
    let infoText = '';
    info?.on('error', () => {});
    info?.on('data', (c: Buffer) => {
      if (sandboxPid) return;
      infoText += c.toString('utf8');
      const m = /"child-pid"\s*:\s*(\d+)/.exec(infoText);
      if (!m) return;
      sandboxPid = Number(m[1]);
      if (killed) {
        // Killed before we knew the namespace's pid 1 (bwrap was still setting up): finish the job,
        // unless bwrap is gone already (then --die-with-parent has done it, and the pid may be reused).
        if (!exited) {
          try {
            process.kill(sandboxPid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        return;
      }
      if (block && cgroups) {
        try {
          // Security: the sandbox's pid 1 waits on --block-fd until it is in its cgroups, so no process escapes the caps.
          // Synchronous: a cgroup v1 migration may wait for an RCU grace period (docs/exec.md, Performance); that
          // pauses only this process, and a thread-pool hop would add latency to every exec for no one's benefit.
          attachToCgroups(cgroups, sandboxPid);
        } catch (err) {
          stderr.push(Buffer.from(`cannot move the sandbox into its cgroup: ${(err as Error).message}\n`));
          kill();
          return;
        }
        block.end('x');
      }
    });
  }

  const done = new Promise<LaunchOutcome>((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      clearTimeout(fallback);
      reject(err);
    });
    child.once('exit', () => {
      exited = true;
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(fallback);
      const exitCode = code ?? (signal ? 128 + ((osc.signals as Record<string, number>)[signal] ?? 0) : 1);
      if (shutdown && !timedOut) stderr.push(Buffer.from('\n[trove: the command was killed: the server is shutting down]\n'));
      resolve({
        exitCode: timedOut ? TIMEOUT_EXIT_CODE : exitCode,
        stdout: stdout.snapshot(),
        stderr: stderr.snapshot(),
        durationMs: Math.round(performance.now() - started),
        timedOut,
        ready,
        shutdown,
        ...memoryOutcome(memory, v2, memAtStart),
        cgroupsEmpty: cgroups ? cgroupsEmpty(cgroups, v2) : true,
      });
    });
  });
  return {
    done,
    kill: () => {
      shutdown = true;
      kill();
    },
  };
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
