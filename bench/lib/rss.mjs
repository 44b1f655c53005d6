/** Resident set size and open descriptors of a process from /proc/<pid>, and a periodic sampler. */
import { readFileSync, readdirSync } from 'node:fs';

export function readRss(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null; // exited, or not Linux
  }
}

/** Open file descriptors (files, sockets, pipes) of a process, or null. */
export function openFds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Samples every `intervalMs`; `stop()` returns {samples: [{t, rss, fds}], peak}. */
export function sampleRss(pid, intervalMs = 500) {
  const t0 = Date.now();
  const samples = [];
  const take = () => {
    const rss = readRss(pid);
    if (rss !== null) samples.push({ t: Date.now() - t0, rss, fds: openFds(pid) });
  };
  take();
  const timer = setInterval(take, intervalMs);
  timer.unref();
  return {
    samples,
    now: () => readRss(pid),
    stop() {
      clearInterval(timer);
      take();
      return { samples, peak: samples.reduce((m, s) => Math.max(m, s.rss), 0) };
    },
  };
}
