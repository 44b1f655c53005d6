#!/usr/bin/env node
/**
 * `npm run bench`: builds (via the npm script), then runs every bench/*.mjs
 * as its own process, one after another, and prints one table of all their
 * rows with targets and PASS/FAIL marks. Writes bench/results/summary-<ts>.json.
 *
 *   npm run bench                      full run (several minutes)
 *   npm run bench -- --quick           CI-sized run
 *   npm run bench -- --only http,soak  a subset (names are the file names)
 *   npm run bench -- --skip cluster
 *   npm run bench -- --strict          exit 1 when a target fails (default: only when a bench crashes)
 *
 * Every other flag is passed to every script (e.g. --minutes 5 for soak,
 * --profile to record server CPU profiles). Script contract: see lib/report.mjs.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './lib/args.mjs';
import { formatTable, loadLine, machineInfo, machineLoad, writeResults } from './lib/report.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const args = parseArgs(argv);
const ORDER = ['http', 'scale', 'soak', 'exec', 'changes', 'snapshots', 'webhooks', 'cluster', 'cli'];

const available = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
  .map((f) => f.slice(0, -4));
const list = (s) =>
  s
    ? s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : null;
const only = list(args.str('only'));
const skip = new Set(list(args.str('skip')) ?? []);
for (const n of [...(only ?? []), ...skip]) {
  if (!available.includes(n)) {
    console.error(`unknown bench "${n}"; available: ${available.join(', ')}`);
    process.exit(2);
  }
}
const names = [
  ...ORDER.filter((n) => available.includes(n)),
  ...available.filter((n) => !ORDER.includes(n)).sort(),
].filter((n) => (!only || only.includes(n)) && !skip.has(n));

// run.mjs's own flags stay here; everything else goes to every script.
const passArgs = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const name = a.replace(/^--/, '').split('=')[0];
  if (['only', 'skip', 'strict'].includes(name)) {
    if (!a.includes('=') && name !== 'strict' && i + 1 < argv.length && !argv[i + 1].startsWith('--')) i++;
    continue;
  }
  passArgs.push(a);
}

/** The last stdout line that is a JSON object with `bench` and `rows` (the convention of lib/report.mjs). */
function resultLine(stdout) {
  const lines = stdout.trimEnd().split('\n');
  for (let i = lines.length - 1; i >= 0 && i >= lines.length - 50; i--) {
    const l = lines[i].trim();
    if (!l.startsWith('{')) continue;
    try {
      const j = JSON.parse(l);
      if (j && typeof j.bench === 'string' && Array.isArray(j.rows)) return j;
    } catch {
      /* not our line */
    }
  }
  return null;
}

function runScript(name) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [join(here, `${name}.mjs`), ...passArgs], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    let partial = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      stdout += d;
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop();
      // The result line is machine food; everything else is shown as it comes.
      for (const l of lines)
        if (!(l.startsWith('{"bench"') && l.includes('"rows"'))) process.stdout.write(`[${name}] ${l}\n`);
    });
    child.once('error', (err) => resolve({ code: -1, stdout, error: String(err), seconds: 0 }));
    child.once('exit', (code, signal) =>
      resolve({ code: code ?? -1, signal, stdout, seconds: (Date.now() - started) / 1000 }),
    );
  });
}

console.log(
  `bench: ${names.join(', ')}${args.has('quick') ? ' (quick)' : ''}${passArgs.length ? `; passing ${passArgs.join(' ')}` : ''}`,
);
console.log(loadLine('load at start'));
const summary = {
  at: new Date().toISOString(),
  argv,
  machine: { ...machineInfo(), loadStart: machineLoad() },
  benches: [],
};
const allRows = [];
let crashed = 0;
for (const name of names) {
  console.log(`\n=== ${name} ===`);
  const loadBefore = machineLoad();
  const r = await runScript(name);
  const parsed = resultLine(r.stdout);
  const entry = {
    name,
    exit: r.code,
    signal: r.signal ?? null,
    seconds: r.seconds,
    loadBefore,
    loadAfter: machineLoad(),
    results: parsed?.results ?? null,
  };
  if (parsed) {
    for (const row of parsed.rows) allRows.push({ bench: name, ...row });
    entry.rows = parsed.rows;
  } else {
    // A script that does not follow the convention (yet): its output above is the result.
    allRows.push({
      bench: name,
      metric: r.code === 0 ? '(no result line: see its output above)' : `(exited ${r.signal ?? r.code})`,
      unit: '',
      ours: null,
      baseline: null,
      ratio: null,
      target: null,
      pass: r.code === 0 ? null : false,
    });
  }
  if (r.code !== 0) {
    crashed++;
    if (parsed)
      allRows.push({
        bench: name,
        metric: `(exited ${r.signal ?? r.code})`,
        unit: '',
        ours: null,
        baseline: null,
        ratio: null,
        target: null,
        pass: false,
      });
  }
  summary.benches.push(entry);
}

const failed = allRows.filter((r) => r.pass === false).length;
const passed = allRows.filter((r) => r.pass === true).length;
console.log('\n' + formatTable(allRows));
console.log(`\n${passed} passed, ${failed} failed, ${allRows.length - passed - failed} informational`);
console.log(loadLine('load at end'));
summary.machine.loadEnd = machineLoad();
summary.rows = allRows;
console.log(`summary: ${writeResults('summary', summary)}`);
process.exit(crashed > 0 || (args.has('strict') && failed > 0) ? 1 : 0);
