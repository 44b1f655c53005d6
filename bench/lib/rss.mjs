/** Resident set size of a process from /proc/<pid>/status, and a periodic sampler. */
import { readFileSync } from 'node:fs';

export function readRss(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null; // exited, or not Linux
  }
}

/** Samples every `intervalMs`; `stop()` returns {samples: [{t, rss}], peak}. */
export function sampleRss(pid, intervalMs = 500) {
  const t0 = Date.now();
  const samples = [];
  const take = () => {
    const rss = readRss(pid);
    if (rss !== null) samples.push({ t: Date.now() - t0, rss });
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
