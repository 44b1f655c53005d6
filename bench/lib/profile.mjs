/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and lists where the time
 * went: self time per function (file:line) and the share spent in our own
 * code, dependencies and Node internals.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './server.mjs';

export function latestProfile(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  return files.length ? join(dir, files[files.length - 1]) : null;
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

/** @returns {{totalMs:number, top:{where:string, selfMs:number, pct:number}[], buckets:{name:string, pct:number}[]}} */
export function summarizeProfile(path, topN = 25) {
  const prof = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = prof.timeDeltas;
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0));
  }
  const byWhere = new Map();
  const byBucket = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const w = where(cf);
    byWhere.set(w, (byWhere.get(w) ?? 0) + us);
    const b = bucket(cf);
    byBucket.set(b, (byBucket.get(b) ?? 0) + us);
  }
  const pct = (us) => Number(((100 * us) / total).toFixed(1));
  return {
    busyMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    top: [...byWhere].sort((a, b) => b[1] - a[1]).slice(0, topN).map(([w, us]) => ({ where: w, selfMs: Math.round(us / 1000), pct: pct(us) })),
    buckets: [...byBucket].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, pct: pct(us) })),
  };
}

export function printProfile(summary, log = console.log) {
  log(`cpu profile: ${summary.busyMs} ms busy, ${summary.idleMs} ms idle`);
  log('  by origin: ' + summary.buckets.slice(0, 10).map((b) => `${b.name} ${b.pct}%`).join(', '));
  log('  top self time:');
  for (const t of summary.top) log(`    ${String(t.pct).padStart(5)}%  ${t.where}`);
}
