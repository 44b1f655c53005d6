/**
 * CPU time (user + system, all threads) a process has used, from
 * /proc/<pid>/stat. On a shared machine, CPU per request is far steadier
 * than requests per second, because it does not count time spent waiting
 * for a core that other work holds.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ is 100 on every Linux we run on

function ownCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime
  } catch {
    return 0;
  }
}

function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Kernels without CONFIG_PROC_CHILDREN: scan for the parent pid.
    const out = [];
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const s = readFileSync(`/proc/${d}/stat`, 'utf8');
        if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
      } catch {
        /* gone */
      }
    }
    return out;
  }
}

/** CPU ms of `pid`, plus its live child processes when `children` (nginx workers). */
export function cpuTimeMs(pid, { children = false } = {}) {
  let ms = ownCpuMs(pid);
  if (children) for (const c of childrenOf(pid)) ms += ownCpuMs(c);
  return ms;
}
