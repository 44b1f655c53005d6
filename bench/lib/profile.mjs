/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and lists where the time
 * went: self time per function (file:line) and the share spent in our own
 * code, dependencies and Node internals.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './server.mjs';

export function latestProfile(dir) {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: worker threads (the SQLite checkpointer) write their own;
  // the main thread's (thread 0) is the server's request path.
  const main = files.filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  const pick = main.length ? main : files;
  return pick.length ? join(dir, pick[pick.length - 1]) : null;
}

function where(cf) {
  let url = cf.url || '';
  url = url.replace(/^file:\/\//, '').replace(repoRoot + '/', '');
  const fn = cf.functionName || '(anonymous)';
  if (!url) return fn;
  return `${fn} ${url}:${cf.lineNumber + 1}`;
}

function bucket(cf) {
  const url = (cf.url || '').replace(/^file:\/\//, '');
  if (!url) return cf.functionName.startsWith('(') ? cf.functionName : 'native';
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/node_modules/')) return 'node_modules/' + url.split('/node_modules/').pop().split('/')[0];
  if (url.includes('/packages/server/')) return 'trove server';
  return 'other';
}

/**
 * Self time per function, per origin, and "by server function": each sample
 * charged to the nearest frame of packages/server in its stack (else the
 * nearest dependency frame), which shows which of our functions cause the
 * native and library work. `skipMs` drops the first part (startup).
 */
export function summarizeProfile(path, { topN = 25, skipMs = 0 } = {}) {
  const prof = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byWhere = new Map();
  const byBucket = new Map();
  const byServer = new Map();
  const add = (m, k, us) => m.set(k, (m.get(k) ?? 0) + us);
  let total = 0;
  let idle = 0;
  let t = 0;
  const dt = prof.timeDeltas;
  for (let i = 0; i < prof.samples.length; i++) {
    t += dt[i] ?? 0;
    if (t < skipMs * 1000) continue;
    const us = dt[i + 1] ?? 0; // a sample's weight is the gap to the next one
    const id = prof.samples[i];
    const cf = byId.get(id).callFrame;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    add(byWhere, where(cf), us);
    add(byBucket, bucket(cf), us);
    let cur = id;
    let dep = null;
    let owner = null;
    while (cur !== undefined) {
      const f = byId.get(cur).callFrame;
      if (f.url.includes('/packages/server/')) {
        owner = where(f);
        break;
      }
      if (!dep && f.url.includes('/node_modules/')) dep = where(f);
      cur = parent.get(cur);
    }
    add(byServer, owner ?? dep ?? `${where(cf)} (no server frame)`, us);
  }
  const pct = (us) => Number(((100 * us) / total).toFixed(1));
  const top = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([w, us]) => ({ where: w, selfMs: Math.round(us / 1000), pct: pct(us) }));
  return {
    busyMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    top: top(byWhere),
    byServerFunction: top(byServer),
    buckets: [...byBucket].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, pct: pct(us) })),
  };
}

export function printProfile(summary, log = console.log) {
  log(`cpu profile: ${summary.busyMs} ms busy, ${summary.idleMs} ms idle`);
  log(
    '  by origin: ' +
      summary.buckets
        .slice(0, 10)
        .map((b) => `${b.name} ${b.pct}%`)
        .join(', '),
  );
  log('  top self time:');
  for (const t of summary.top) log(`    ${String(t.pct).padStart(5)}%  ${t.where}`);
  log('  charged to the nearest server function:');
  for (const t of summary.byServerFunction) log(`    ${String(t.pct).padStart(5)}%  ${t.where}`);
}

/** After a `--profile` run: prints the server's profile summary and returns it for the results file. */
export function reportProfile(dir, { skipMs = 2000 } = {}) {
  const p = latestProfile(dir);
  if (!p) {
    console.log(`no .cpuprofile in ${dir} (did the server exit cleanly?)`);
    return null;
  }
  console.log(`\nserver CPU profile: ${p} (open in Chrome DevTools › Performance, or speedscope)`);
  const summary = summarizeProfile(p, { skipMs });
  printProfile(summary);
  return { path: p, ...summary };
}

// `node bench/lib/profile.mjs <file.cpuprofile> [skipMs]`: print a summary.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  printProfile(summarizeProfile(process.argv[2], { skipMs: Number(process.argv[3] ?? 0), topN: 30 }));
}
