/**
 * Cleans up after a server that dies without running close() (SIGKILL, OOM
 * kill, power loss of the process): a tiny detached shell waits for the
 * server's pid to go away, then removes the exec cgroups (left behind they
 * would keep the parent cgroup, e.g. a systemd unit's, from being removed) and
 * the runtime directory. The sandboxes themselves die with the server through
 * bwrap's --die-with-parent; this only removes what they leave on disk.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SCRIPT = `
pid=$1; shift
tail --pid="$pid" -f /dev/null 2>/dev/null || while kill -0 "$pid" 2>/dev/null; do sleep 1; done
i=0
while [ $i -lt 20 ]; do
  left=0
  for p in "$@"; do
    case "$p" in
      cg:*) d=\${p#cg:}
            for s in "$d"/*/*/ "$d"/*/; do [ -d "$s" ] && { rmdir "$s" 2>/dev/null || left=1; }; done
            [ -d "$d" ] && { rmdir "$d" 2>/dev/null || left=1; } ;;
      rm:*) rm -rf -- "\${p#rm:}" ;;
    esac
  done
  [ $left = 0 ] && exit 0
  i=$((i+1)); sleep 0.5
done
`;

export interface Leftovers {
  /** cgroup directories `<parent>/trove-<pid>-<n>` (their namespace and slot groups are removed first). */
  cgroups: string[];
  /** Directories removed recursively. */
  trees: string[];
}

export class Reaper {
  private child: ChildProcess | null = null;

  /** (Re)starts the watcher for this set of leftovers, to act once `pid` (the server) is gone. */
  watch(left: Leftovers, pid: number = process.pid): void {
    this.stop();
    if (left.cgroups.length === 0 && left.trees.length === 0) return;
    const args = [...left.cgroups.map((d) => `cg:${d}`), ...left.trees.map((d) => `rm:${d}`)];
    try {
      this.child = spawn('/bin/sh', ['-c', SCRIPT, 'trove-exec-reaper', String(pid), ...args], {
        detached: true,
        stdio: 'ignore',
        env: { PATH: '/usr/bin:/bin' },
      });
      this.child.on('error', () => {
        this.child = null;
      });
      // Never keeps the server alive.
      this.child.unref();
    } catch {
      this.child = null;
    }
  }

  /** The server is cleaning up itself (close()): the watcher is not needed. */
  stop(): void {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
    this.child = null;
  }
}

/**
 * Removes runtime directories (`<tmp>/trove-exec-<pid>-*`) of servers that are
 * no longer running, when a watcher could not (it was killed too, or the
 * machine rebooted without a tmpfs /tmp).
 */
export function removeStaleRuntimeDirs(tmp: string): void {
  let names: string[];
  try {
    names = readdirSync(tmp);
  } catch {
    return;
  }
  const me = process.getuid?.();
  for (const name of names) {
    const m = /^trove-exec-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    const dir = join(tmp, name);
    try {
      process.kill(Number(m[1]), 0);
      continue; // still running
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') continue; // alive, someone else's
    }
    try {
      // Only our own: another user's files in a shared /tmp are not ours to delete.
      if (statSync(dir).uid !== me || !existsSync(join(dir, 'passwd'))) continue;
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* raced with its owner */
    }
  }
}
