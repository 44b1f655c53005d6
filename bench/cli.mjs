#!/usr/bin/env node
/**
 * CLI start-up: `trove --help` (issue 8: under 150 ms) next to a bare
 * `node -e ''` start in the same rounds, so the row shows both what the CLI
 * costs and what any Node program costs on this machine.
 *
 *   node bench/cli.mjs [--quick] [--rounds N]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from './lib/args.mjs';
import { finish, loadLine, row } from './lib/report.mjs';
import { repoRoot } from './lib/server.mjs';
import { median, percentile } from './lib/stats.mjs';

const args = parseArgs();
const rounds = args.num('rounds', args.has('quick') ? 10 : 30);
const cli = join(repoRoot, 'packages/cli/bin/trove.js');

function timeOnce(argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

console.log(loadLine('load at start'));
const help = [];
const bare = [];
timeOnce([cli, '--help']); // warm the file cache
for (let i = 0; i < rounds; i++) {
  // Alternate which side goes first so load spikes hit both alike.
  if (i % 2) {
    help.push(timeOnce([cli, '--help']));
    bare.push(timeOnce(['-e', '']));
  } else {
    bare.push(timeOnce(['-e', '']));
    help.push(timeOnce([cli, '--help']));
  }
}
console.log(loadLine('load at end'));

const p50 = median(help);
const rows = [
  row({
    metric: '`trove --help` wall time p50',
    unit: 'ms',
    ours: Number(p50.toFixed(1)),
    target: '< 150 ms',
    pass: p50 < 150,
    note: 'absolute budget from issue 8',
  }),
  row({
    metric: '`trove --help` p50 vs bare `node -e ""`',
    unit: 'ms',
    ours: Number(p50.toFixed(1)),
    baseline: Number(median(bare).toFixed(1)),
    ratio: median(bare) / p50,
  }),
  row({ metric: '`trove --help` wall time p90', unit: 'ms', ours: Number(percentile(help, 90).toFixed(1)) }),
];
finish('cli', rows, { params: { rounds }, detail: { help, bare } });
