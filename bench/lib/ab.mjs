#!/usr/bin/env node
/**
 * A/B of two server builds (or two settings of one build) on one workload,
 * with rounds interleaved A, B, B, A, … so that load from the rest of the
 * machine hits both alike. Prints medians and the median of per-round B/A
 * ratios: on a shared 2-core VM, one run of each is noise; eight interleaved
 * rounds are a measurement. Not a bench row (run.mjs does not run lib/).
 *
 *   node bench/lib/ab.mjs --workload get --size 1048576 [--rounds 8] [--seconds 3]
 *   node bench/lib/ab.mjs --workload put [--size 1048576] [--connections 8]
 *     --a-bin <path to a bin/trove-server.cjs>   default: this tree's
 *     --b-bin <path>                             default: this tree's
 *     --a-env '{"TROVE_NATIVE_IO":"0"}'          extra environment for A (B: --b-env)
 *
 * A patched build: `cp -r packages/server packages/server-b`, edit
 * packages/server-b/dist, pass --b-bin packages/server-b/bin/trove-server.cjs
 * (dependencies still resolve from the repository root). Remove it afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from './args.mjs';
import { serverBin, startServer } from './server.mjs';
import { runWrk } from './wrk.mjs';
import { ensureTool } from './tools.mjs';
import { cpuTimeMs } from './cpu.mjs';
import { median } from './stats.mjs';

const args = parseArgs();
const workload = args.str('workload', 'get');
if (workload !== 'get' && workload !== 'put') throw new Error('--workload get|put');
const size = args.num('size', workload === 'put' ? 1024 * 1024 : 4096);
const rounds = args.num('rounds', 8);
const seconds = args.num('seconds', 3);
const connections = args.num('connections', workload === 'put' ? 8 : 32);
const wrkBin = ensureTool('wrk');
if (!wrkBin) throw new Error('wrk is needed');

const sides = {};
for (const name of ['a', 'b']) {
  const env = JSON.parse(args.str(`${name}-env`, '{}'));
  sides[name] = await startServer({ bin: args.str(`${name}-bin`, serverBin), env });
}
const dir = mkdtempSync(join(tmpdir(), 'trove-ab-'));
const bodyFile = join(dir, 'body.bin');
writeFileSync(bodyFile, randomBytes(size));
const paths = Array.from({ length: 64 }, (_, i) => `/files/ab/f${i}.bin`);

async function run(s, secs) {
  const headers = { authorization: `Bearer ${s.runtimeKey}`, 'x-namespace': 'ab' };
  const cpu = () => cpuTimeMs(s.pid);
  const r =
    workload === 'get'
      ? await runWrk(wrkBin, { url: `${s.baseUrl}${paths[0]}`, headers, connections, seconds: secs, cpu })
      : await runWrk(wrkBin, {
          url: s.baseUrl,
          headers,
          connections,
          threads: 1,
          seconds: secs,
          put: { paths, bodyFile },
          cpu,
        });
  if (r.errors + r.non2xx > 0) throw new Error(`${r.errors + r.non2xx} failed requests`);
  return { rps: r.rps, cpuMs: r.cpuMsPerReq };
}

try {
  if (workload === 'get') {
    for (const s of Object.values(sides)) {
      const res = await fetch(`${s.baseUrl}${paths[0]}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${s.runtimeKey}`, 'x-namespace': 'ab' },
        body: randomBytes(size),
      });
      if (res.status !== 200) throw new Error(`upload failed: ${res.status}`);
    }
  }
  for (const s of Object.values(sides)) await run(s, 2); // warm-up
  const got = { a: [], b: [] };
  for (let i = 0; i < rounds; i++) {
    for (const name of i % 2 === 0 ? ['a', 'b'] : ['b', 'a']) got[name].push(await run(sides[name], seconds));
  }
  const unit = workload === 'get' ? 'req/s' : 'PUT/s';
  for (const name of ['a', 'b']) {
    const g = got[name];
    console.log(
      `${name.toUpperCase()}: ${median(g.map((x) => x.rps)).toFixed(0)} ${unit} (rounds: ${g.map((x) => x.rps.toFixed(0)).join(' ')}), ` +
        `${median(g.map((x) => x.cpuMs)).toFixed(3)} server CPU ms per request`,
    );
  }
  const ratios = got.a.map((a, i) => got.b[i].rps / a.rps);
  console.log(
    `B/A: ${median(ratios).toFixed(3)} (median of per-round ratios; rounds: ${ratios.map((r) => r.toFixed(2)).join(' ')})`,
  );
} finally {
  for (const s of Object.values(sides)) await s.close();
  rmSync(dir, { recursive: true, force: true });
}
