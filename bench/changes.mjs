#!/usr/bin/env node
/**
 * Change tracking's cost on commands (docs/events.md, "Changes made by commands"), through the real
 * server (`POST /v1/exec`): the same commands on a server with TROVE_CHANGES=off and one with
 * TROVE_CHANGES=fanotify (the default for root), in alternating blocks (off, on, off, on…): a fanotify
 * mark is on the whole file system while its server runs, so the two never run at the same time. Many
 * short blocks rather than two long ones, so a burst of other work on the machine lands on both sides.
 *
 *   node bench/changes.mjs [--quick] [--rounds 5] [--iterations 60] [--copies 5]   (per block)
 *
 * 1. exec of `true` (nothing changes: the tracker's fixed cost, a marker before and after the command).
 * 2. `cp -r` of a 2,000-file tree (20 directories) inside exec: 2,021 paths changed, 1,000 recorded (the default cap)
 *    and one files.changed summary, all committed before the answer.
 * Target: tracking makes each at most 10 % slower (ratio ≥ 0.90×, p50 against p50); each row's note has the
 * ratio of every round (its two blocks' p50s), the spread to read it with.
 *
 * The servers' data dirs are made in the OS temp dir: `TMPDIR=/dev/shm` measures on tmpfs, where a copy is
 * fast and steady, instead of a disk file system whose own costs may swamp tracking's (bench/README.md,
 * "Change tracking rows").
 *
 * Needs root (fanotify), the built server and bubblewrap. Follows bench/lib/report.mjs's convention.
 */
import { parseArgs } from './lib/args.mjs';
import { startServer } from './lib/server.mjs';
import { makeClient, expectJson } from './lib/http-client.mjs';
import { atLeast, finish, loadLine, row } from './lib/report.mjs';

const args = parseArgs();
const quick = args.has('quick');
const rounds = args.num('rounds', quick ? 3 : 5);
const iterations = args.num('iterations', quick ? 30 : 60);
const copies = args.num('copies', quick ? 3 : 5);

if (process.getuid?.() !== 0) {
  console.error('bench/changes.mjs needs root: change tracking uses fanotify (CAP_SYS_ADMIN)');
  process.exit(1);
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const r2 = (x) => Number(x.toFixed(2));

/** One block on a fresh server: `iterations` execs of true and `copies` cp -r of 2,000 files. */
async function block(mode, round) {
  const server = await startServer({ env: { TROVE_CHANGES: mode } });
  const client = makeClient(server.baseUrl, { connections: 2 });
  const exec = async (command) => {
    const res = await client.request({
      method: 'POST',
      path: '/v1/exec',
      headers: { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': 'bench' },
      body: { command },
    });
    const body = await expectJson(res);
    if (body.exit_code !== 0) throw new Error(`${command}: exit ${body.exit_code}: ${body.stderr}`);
    return res.ms;
  };
  try {
    // The source tree: 20 directories of 100 small files (made once, not measured).
    await exec(
      'cd workspace && mkdir -p src && cd src && for d in $(seq 1 20); do mkdir d$d; for f in $(seq 1 100); do echo "$d $f" > d$d/f$f; done; done',
    );
    for (let i = 0; i < 20; i++) await exec('true'); // warm sandbox, spares, JIT
    const trueMs = [];
    for (let i = 0; i < iterations; i++) trueMs.push(await exec('true'));
    const cpMs = [];
    for (let i = 0; i < copies; i++) {
      cpMs.push(await exec(`cd workspace && cp -r src copy${i}`));
      await exec(`cd workspace && rm -rf copy${i}`); // not measured
    }
    if (mode === 'fanotify') {
      // The tracker really recorded the copies: each one's cap and summary.
      const res = await client.request({
        path: `/v1/workspaces/${server.workspaceId}/events?types=files.changed&limit=200`,
        headers: { authorization: `Bearer ${server.adminKey}` },
      });
      const { events } = await expectJson(res);
      const summaries = events.filter(
        (e) => e.data.total === 2021 && e.data.recorded === 1000 && e.data.written === 2000,
      );
      // Each copy's, and the source tree's own (it was made by a command too).
      if (summaries.length !== copies + 1)
        throw new Error(
          `expected ${copies} cp -r summaries of 2,021 paths, got ${summaries.length}: ${JSON.stringify(events.slice(0, 3).map((e) => e.data))}`,
        );
    }
    console.error(
      `  ${mode} block ${round}: true p50 ${r2(quantile(trueMs, 0.5))} ms, cp -r p50 ${r2(quantile(cpMs, 0.5))} ms`,
    );
    return { trueMs, cpMs };
  } finally {
    client.close();
    await server.close();
  }
}

console.error(loadLine('load at start'));
const off = { trueMs: [], cpMs: [] };
const on = { trueMs: [], cpMs: [] };
/** Per round: untracked p50 ÷ tracked p50 of its two blocks (how much the ratio moves with the machine). */
const perRound = { trueMs: [], cpMs: [] };
for (let round = 1; round <= rounds; round++) {
  const got = {};
  for (const [mode, into] of [
    ['off', off],
    ['fanotify', on],
  ]) {
    const r = (got[mode] = await block(mode, round));
    into.trueMs.push(...r.trueMs);
    into.cpMs.push(...r.cpMs);
  }
  for (const key of ['trueMs', 'cpMs']) {
    perRound[key].push(r2(quantile(got.off[key], 0.5) / quantile(got.fanotify[key], 0.5)));
  }
}

const rows = [];
for (const [metric, key] of [
  ['exec `true`, p50', 'trueMs'],
  ['exec `cp -r` of 2,000 files, p50', 'cpMs'],
]) {
  const ours = r2(quantile(on[key], 0.5));
  const baseline = r2(quantile(off[key], 0.5));
  const ratio = baseline / ours;
  rows.push(
    row({
      metric: `${metric}, tracked vs untracked`,
      unit: 'ms',
      ours,
      baseline,
      ratio,
      ...atLeast(ratio, 0.9),
      note: `per round ${perRound[key].map((x) => `${x.toFixed(2)}×`).join(', ')}`,
    }),
  );
  rows.push(
    row({
      metric: `${metric.replace('p50', 'p99')}, tracked vs untracked`,
      unit: 'ms',
      ours: r2(quantile(on[key], 0.99)),
      baseline: r2(quantile(off[key], 0.99)),
      ratio: quantile(off[key], 0.99) / quantile(on[key], 0.99),
      note: 'informational',
    }),
  );
}
finish('changes', rows, { params: { quick, rounds, iterations, copies }, raw: { off, on, perRound } });
