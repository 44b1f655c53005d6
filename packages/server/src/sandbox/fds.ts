/**
 * Descriptors this process inherited without close-on-exec. Node opens
 * everything with O_CLOEXEC, but a parent (process manager, test harness) may
 * hand the server descriptors that every child would inherit, and bubblewrap
 * passes unknown descriptors through to the command. The exec runner covers
 * each one with /dev/null in the child so nothing of the host leaks in.
 */
import { readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/** Reading fdinfo costs ~0.1 ms per descriptor: rescan at most this often. */
const RESCAN_MS = 2000;
let cache: { at: number; fds: number[] } | null = null;

/**
 * Cached inheritableFds(). What matters is what the parent handed us at
 * start (node and its addons open everything close-on-exec), so a short-lived
 * cache costs no safety; covering a number that was closed meanwhile with
 * /dev/null is harmless.
 */
export function inheritableFdsCached(now = Date.now()): number[] {
  if (!cache || now - cache.at > RESCAN_MS) cache = { at: now, fds: inheritableFds() };
  return cache.fds;
}

export function inheritableFds(): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!(fd > 2)) continue;
    try {
      const m = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m && (parseInt(m[1]!, 8) & O_CLOEXEC) === 0) out.push(fd);
    } catch {
      /* closed meanwhile (it was the readdir's own descriptor, or raced) */
    }
  }
  return out;
}
