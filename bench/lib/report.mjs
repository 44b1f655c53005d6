/**
 * Rows, the printed table, the results file and the final JSON line.
 *
 * Convention for every bench/*.mjs (run.mjs relies on it):
 *   - accepts `--quick` (CI-sized run) and ignores flags it does not know;
 *   - prints progress and its own table on stdout/stderr as it likes;
 *   - prints, as its LAST stdout line, one JSON object
 *       {"bench": "<name>", "rows": [Row, ...], "machine": {...}, "results": "<path or null>"}
 *     where Row = {metric, unit, ours, baseline, ratio, target, pass, note?}:
 *       ours/baseline: numbers in `unit` (baseline null when there is none),
 *       ratio: ours/baseline oriented so that higher is better for the server
 *              (throughput: ours/baseline; time: baseline/ours), or null,
 *       target: human text ("≥ 0.70×", "= 0"), pass: true | false | null (informational);
 *   - exits 0 when it ran (even if a target failed), non-zero when it could not run.
 */
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './server.mjs';
import { gitRevision } from './tools.mjs';
import { fmtNum } from './stats.mjs';

/** A snapshot of how busy the machine is (other work shares these cores). */
export function machineLoad() {
  const [l1, l5] = loadavg();
  let running = null;
  try {
    running = Number(/procs_running (\d+)/.exec(readFileSync('/proc/stat', 'utf8'))[1]);
  } catch {
    /* not Linux */
  }
  return { loadavg1: Number(l1.toFixed(2)), loadavg5: Number(l5.toFixed(2)), procsRunning: running };
}

export function machineInfo() {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? null,
    memGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    git: gitRevision(repoRoot),
    database: process.env.TROVE_BENCH_DATABASE_URL ? 'postgres' : 'sqlite',
  };
}

/** One line about load, printed before and after a run so readers can judge the noise. */
export function loadLine(label = 'load') {
  const l = machineLoad();
  const n = cpus().length;
  const busy = l.loadavg1 > n ? `  — busy machine (${n} cpus): compare ratios, not absolute numbers` : '';
  return `${label}: loadavg ${l.loadavg1} (1 min) ${l.loadavg5} (5 min), ${l.procsRunning ?? '?'} runnable${busy}`;
}

export function row({ metric, unit, ours, baseline = null, ratio = undefined, target = null, pass = null, note }) {
  const r = ratio !== undefined ? ratio : baseline ? ours / baseline : null;
  return { metric, unit, ours, baseline, ratio: r, target, pass, ...(note ? { note } : {}) };
}

/** `≥ x×` check on a ratio. */
export function atLeast(ratio, min) {
  return { target: `≥ ${min.toFixed(2)}×`, pass: ratio !== null && Number.isFinite(ratio) && ratio >= min };
}

const mark = (pass) => (pass === true ? 'PASS' : pass === false ? 'FAIL' : '·');

export function formatTable(rows, { bench = true } = {}) {
  const head = [...(bench ? ['bench'] : []), 'metric', 'ours', 'baseline', 'ratio', 'target', ''];
  const body = rows.map((r) => [
    ...(bench ? [r.bench ?? ''] : []),
    r.metric,
    r.ours === null || r.ours === undefined ? '—' : `${fmtNum(r.ours)} ${r.unit ?? ''}`.trim(),
    r.baseline === null || r.baseline === undefined ? '—' : `${fmtNum(r.baseline)} ${r.unit ?? ''}`.trim(),
    r.ratio === null || r.ratio === undefined ? '—' : `${r.ratio.toFixed(2)}×`,
    r.target ?? '—',
    mark(r.pass),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cells) =>
    cells
      .map((c, i) => String(c).padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export function stamp(d = new Date()) {
  return d
    .toISOString()
    .replace(/[:]/g, '-')
    .replace(/\.\d+Z$/, 'Z');
}

/** Writes bench/results/<name>-<timestamp>.json and returns its path. */
export function writeResults(name, data) {
  const dir = process.env.TROVE_BENCH_RESULTS_DIR ?? join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}-${stamp()}.json`);
  writeFileSync(path, JSON.stringify(data, null, 2) + '\n');
  return path;
}

/**
 * Ends a bench script: prints its table, writes the results file, and prints
 * the final JSON line of the convention above.
 */
export function finish(name, rows, extra = {}) {
  const machine = { ...machineInfo(), loadEnd: machineLoad(), ...(extra.machine ?? {}) };
  const data = { bench: name, at: new Date().toISOString(), rows, ...extra, machine };
  console.log('');
  console.log(formatTable(rows, { bench: false }));
  console.log(loadLine('load at end'));
  const results = writeResults(name, data);
  console.log(`results: ${results}`);
  console.log(JSON.stringify({ bench: name, rows, machine, results }));
}
