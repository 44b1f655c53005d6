#!/usr/bin/env node
/**
 * File API throughput against baselines measured in the same run:
 *
 *   GET /files/{path} 4 KiB and 1 MiB, 32 connections (wrk): 4 KiB against a
 *   bare node:http + fs server (lib/node-static.mjs, the floor for a Node file
 *   server), 1 MiB against a private nginx serving the very same file from the
 *   server's namespace directory; nginx is measured for both as the physical
 *   reference, the floor for both for scale;
 *   PUT /files/{path} 1 MiB durable writes vs node open+writeFile+fsync of the
 *   same files on the same filesystem (and, issue 20: ≥ 0.7× the same atomic
 *   sequence the server promises: temp file, fsync, rename, fsync dir);
 *   PUT 4 KiB durable writes, 16 at a time, vs that atomic sequence.
 *
 * Rounds alternate which side goes first and the reported ratio is the median
 * of per-round ratios, so load from other work on the machine hits both sides.
 *
 *   node bench/http.mjs [--quick] [--seconds 5] [--rounds 3] [--connections 32]
 *                       [--put-files 64] [--put-seconds 3] [--put-rounds 5] [--put-concurrency 8] [--put4k-concurrency 16]
 *                       [--only get4k,get1m,put,put4k]
 *                       [--profile] [--log-level info] [--nginx-workers 1]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, readdirSync, writeFileSync, promises as fsp, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs } from './lib/args.mjs';
import { startServer, repoRoot } from './lib/server.mjs';
import { startNginx } from './lib/nginx.mjs';
import { runWrk } from './lib/wrk.mjs';
import { ensureTool } from './lib/tools.mjs';
import { cpuTimeMs } from './lib/cpu.mjs';
import { makeClient, expectJson, closedLoop } from './lib/http-client.mjs';
import { median, MiB, fmtNum } from './lib/stats.mjs';
import { row, atLeast, finish, loadLine, stamp } from './lib/report.mjs';
import { reportProfile } from './lib/profile.mjs';

const args = parseArgs();
const quick = args.has('quick');
const seconds = args.num('seconds', quick ? 3 : 5);
const rounds = args.num('rounds', quick ? 1 : 3);
const connections = args.num('connections', 32);
const putFiles = args.num('put-files', quick ? 32 : 64);
const putSeconds = args.num('put-seconds', quick ? 1 : 3);
// Disk-bound rounds vary more than the GET rounds: more of them, shorter.
const putRounds = args.num('put-rounds', quick ? 1 : 5);
const putConcurrency = args.num('put-concurrency', 8);
const put4kConcurrency = args.num('put4k-concurrency', 16);
const only = new Set(args.str('only', 'get4k,get1m,put,put4k').split(','));
const profileDir = args.has('profile') ? join(repoRoot, 'bench', 'results', `profile-http-${stamp()}`) : null;
const nginxWorkers = args.str('nginx-workers', '1');
const ns = 'bench';

console.log(
  `http bench: ${quick ? 'quick' : 'full'} — ${rounds} round(s) × ${seconds} s per side, ${connections} connections`,
);
console.log(loadLine('load at start'));

const wrkBin = only.size ? ensureTool('wrk') : null;
const nginxBin = wrkBin && (only.has('get4k') || only.has('get1m')) ? ensureTool('nginx') : null;

const server = await startServer({ cpuProfDir: profileDir ?? undefined, logLevel: args.str('log-level') });
const client = makeClient(server.baseUrl, { connections: Math.max(putConcurrency, put4kConcurrency, 4) });
const auth = { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': ns };
const rows = [];
const detail = {};
let nginx = null;
let floor = null;

/** bench/lib/node-static.mjs in its own process; resolves {pid, baseUrl, close}. */
async function startNodeFloor(root) {
  const p = spawn(process.execPath, [join(repoRoot, 'bench', 'lib', 'node-static.mjs'), root], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    p.once('exit', (code) => reject(new Error(`node-static exited ${code}`)));
  });
  return {
    pid: p.pid,
    baseUrl: `http://127.0.0.1:${port}`,
    close: () => new Promise((r) => (p.exitCode !== null ? r() : (p.once('exit', r), p.kill()))),
  };
}

const put = (path, body) => client.request({ method: 'PUT', path: `/files/${path}`, headers: auth, body });

/** Finds a file's host path under the data dir (the server's layout is its own business). */
function findOnDisk(dir, name) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isFile() && e.name === name) return p;
    if (e.isDirectory()) {
      const found = findOnDisk(p, name);
      if (found) return found;
    }
  }
  return null;
}

try {
  // ---------- GET: the same file served by Trove and by nginx ----------
  // Each size's target is against one side: small files against the floor (what Node itself reaches: nginx's
  // request handling is out of reach of a Node server), large ones against nginx (sendfile: the kernel's work).
  const sizes = [
    { key: 'get4k', label: '4 KiB', bytes: 4096, vs: 'floor', min: 0.8 },
    { key: 'get1m', label: '1 MiB', bytes: MiB, vs: 'nginx', min: 0.8 },
  ].filter((s) => only.has(s.key));
  if (sizes.length && (!wrkBin || !nginxBin)) {
    for (const s of sizes)
      rows.push(
        row({ metric: `GET ${s.label}`, unit: 'req/s', ours: null, pass: null, note: 'wrk or nginx unavailable' }),
      );
  } else if (sizes.length) {
    const files = [];
    for (const s of sizes) {
      const name = `bench-${s.key}.bin`;
      const data = randomBytes(s.bytes);
      await expectJson(await put(name, data));
      const got = await client.request({ path: `/files/${name}`, headers: auth });
      if (got.status !== 200 || !got.body.equals(data))
        throw new Error(`GET /files/${name} did not return the uploaded bytes (${got.status})`);
      files.push({ ...s, name, data, host: findOnDisk(server.dataDir, name) });
    }
    const root = dirname(files[0].host);
    if (files.some((f) => dirname(f.host) !== root)) throw new Error('bench files ended up in different directories');
    nginx = await startNginx(nginxBin, root, {
      workers: nginxWorkers === 'auto' ? 'auto' : Number(nginxWorkers),
      accessLog: true,
    });
    for (const f of files) {
      const r = await fetch(`${nginx.baseUrl}/${f.name}`);
      if (r.status !== 200 || !Buffer.from(await r.arrayBuffer()).equals(f.data))
        throw new Error(`nginx does not serve ${f.name}`);
    }
    floor = await startNodeFloor(root);
    console.log(
      `nginx ${nginxWorkers} worker(s), sendfile on, access log on; server at its default log level${args.str('log-level') ? ` (${args.str('log-level')})` : ''}`,
    );
    console.log('floor: bare node:http + fs on the same file (no framework, auth or path checks)');

    for (const f of files) {
      const sides = {
        ours: { url: `${server.baseUrl}/files/${f.name}`, headers: auth, cpu: () => cpuTimeMs(server.pid) },
        nginx: {
          url: `${nginx.baseUrl}/${f.name}`,
          headers: auth,
          cpu: () => cpuTimeMs(nginx.pid, { children: true }),
        },
        floor: { url: `${floor.baseUrl}/${f.name}`, headers: auth, cpu: () => cpuTimeMs(floor.pid) },
      };
      const other = f.vs === 'floor' ? 'nginx' : 'floor';
      const wrk = (t, secs) =>
        runWrk(wrkBin, { url: t.url, headers: t.headers, connections, seconds: secs, cpu: t.cpu });
      // Warm-up: JIT, page cache, connection setup.
      await wrk(sides.ours, Math.min(2, seconds));
      await wrk(sides.nginx, 1);
      await wrk(sides.floor, 1);
      const perRound = [];
      for (let r = 0; r < rounds; r++) {
        // Ours and the side of its target run back to back, in alternating order; the third side before or after.
        const order = r % 2 === 0 ? ['ours', f.vs, other] : [other, f.vs, 'ours'];
        const res = {};
        for (const side of order) res[side] = await wrk(sides[side], seconds);
        perRound.push({ ...res, ratio: res.ours.rps / res[f.vs].rps });
        const o = res.ours;
        const b = res.nginx;
        const n = res.floor;
        console.log(
          `GET ${f.label} round ${r + 1}: trove ${fmtNum(o.rps)} req/s (${fmtNum(o.mibps)} MiB/s, p99 ${fmtNum(o.p99ms, 2)} ms, ${o.cpuMsPerReq.toFixed(3)} CPU ms/req)` +
            ` | floor ${fmtNum(n.rps)} req/s (${n.cpuMsPerReq.toFixed(3)} CPU ms/req) → ${(o.rps / n.rps).toFixed(2)}×` +
            ` | nginx ${fmtNum(b.rps)} req/s (${fmtNum(b.mibps)} MiB/s, p99 ${fmtNum(b.p99ms, 2)} ms, ${b.cpuMsPerReq.toFixed(3)} CPU ms/req) → ${(o.rps / b.rps).toFixed(2)}×`,
        );
      }
      detail[f.key] = perRound;
      const failed = (side) => perRound.reduce((n, p) => n + p[side].errors + p[side].non2xx, 0);
      const bad = failed('ours');
      const badBase = failed(f.vs);
      const ratio = median(perRound.map((p) => p.ratio));
      const chk = atLeast(ratio, f.min);
      const unit = f.bytes >= MiB ? 'MiB/s' : 'req/s';
      const pick = (p) => (f.bytes >= MiB ? p.mibps : p.rps);
      const med = (side) => median(perRound.map((p) => pick(p[side])));
      const vsName = f.vs === 'floor' ? 'floor (bare node:http+fs)' : 'nginx';
      rows.push(
        row({
          metric: `GET ${f.label} ×${connections} conns vs ${vsName}`,
          unit,
          ours: med('ours'),
          baseline: med(f.vs),
          ratio,
          ...chk,
          pass: chk.pass && bad === 0 && badBase === 0,
          note: bad || badBase ? `errors: trove ${bad}, ${f.vs} ${badBase}` : undefined,
        }),
      );
      if (f.vs !== 'nginx') {
        rows.push(
          row({
            metric: `GET ${f.label} vs nginx (physical reference)`,
            unit,
            ours: med('ours'),
            baseline: med('nginx'),
            ratio: median(perRound.map((p) => p.ours.rps / p.nginx.rps)),
          }),
        );
      }
      const p99o = median(perRound.map((p) => p.ours.p99ms));
      const p99b = median(perRound.map((p) => p.nginx.p99ms));
      rows.push(
        row({
          metric: `GET ${f.label} p99 latency vs nginx`,
          unit: 'ms',
          ours: p99o,
          baseline: p99b,
          ratio: p99b / p99o,
        }),
      );
      const cpuO = median(perRound.map((p) => p.ours.cpuMsPerReq));
      const cpuB = median(perRound.map((p) => p[f.vs].cpuMsPerReq));
      rows.push(
        row({
          metric: `GET ${f.label} CPU per request vs ${f.vs}`,
          unit: 'ms',
          ours: cpuO,
          baseline: cpuB,
          ratio: cpuB / cpuO,
        }),
      );
      rows.push(
        row({
          metric: `GET ${f.label} floor: bare node:http+fs vs nginx`,
          unit,
          ours: med('floor'),
          baseline: med('nginx'),
          ratio: median(perRound.map((p) => p.floor.rps / p.nginx.rps)),
          note: 'not Trove: what Node itself reaches on this machine, for scale',
        }),
      );
    }
  }

  // ---------- PUT: durable writes vs the filesystem itself ----------
  // Each side writes the same body over and over to the same `putFiles` names for `putSeconds`,
  // `concurrency` at a time. Trove's side is driven by wrk, like the GET rows: the node:http client
  // spends ~1 ms of CPU per 1 MiB PUT, as much as the baseline's whole write, on the same two cores.
  // 1 MiB ×8: against writeFile+fsync (and the atomic sequence the server promises: ≥ 0.7×, issue 20);
  // 4 KiB ×16 (agents mostly write small files): against that atomic sequence.
  const putBench = async ({ label, size, concurrency, warmUpSecs }) => {
    const body = randomBytes(size);
    const baseDir = mkdtempSync(join(tmpdir(), 'trove-bench-put-'));
    const bodyFile = join(baseDir, 'body.bin');
    writeFileSync(bodyFile, body);
    const dirName = `put-${size}`;
    const names = Array.from({ length: putFiles }, (_, i) => `put-${String(i).padStart(4, '0')}.bin`);
    const ours = async (secs) => {
      const r = await runWrk(wrkBin, {
        url: server.baseUrl,
        connections: concurrency,
        threads: 1,
        seconds: secs,
        headers: auth,
        put: { paths: names.map((n) => `/files/${dirName}/${n}`), bodyFile },
        cpu: () => cpuTimeMs(server.pid),
      });
      return { rate: r.rps, failures: r.errors + r.non2xx, cpuMs: r.cpuMsPerReq };
    };
    const loop = async (secs, op) => {
      let done = 0;
      const t = await closedLoop({
        concurrency,
        durationMs: secs * 1000,
        op: async (_w, i) => {
          await op(names[i % names.length]);
          done++;
        },
      });
      return { rate: done / t, failures: 0 };
    };
    // What the brief names as the baseline: open, write, fsync, close.
    const plain = (secs) =>
      loop(secs, async (name) => {
        const fh = await fsp.open(join(baseDir, name), 'w');
        try {
          await fh.writeFile(body);
          await fh.sync();
        } finally {
          await fh.close();
        }
      });
    // The server's own promise (atomic + durable), done with no HTTP and no bookkeeping.
    const atomic = (secs) =>
      loop(secs, async (name) => {
        const tmp = join(baseDir, `.tmp-${randomBytes(6).toString('hex')}`);
        const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
        try {
          await fh.writeFile(body);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fsp.rename(tmp, join(baseDir, name));
        const dir = await fsp.open(baseDir, constants.O_RDONLY | constants.O_DIRECTORY);
        await dir.sync();
        await dir.close();
      });
    try {
      // Warm-up: JIT, and every name exists on both sides, so every measured write replaces a file. The
      // server's CPU per PUT keeps falling for ~10 s of uploads (2 s left the first rounds 30 % slower).
      await ours(quick ? 1 : warmUpSecs);
      await plain(quick ? 1 : 2);
      const perRound = [];
      for (let r = 0; r < putRounds; r++) {
        const order = r % 2 === 0 ? ['ours', 'plain', 'atomic'] : ['atomic', 'plain', 'ours'];
        const res = {};
        for (const side of order) res[side] = await { ours, plain, atomic }[side](putSeconds);
        perRound.push({
          ours: res.ours.rate,
          plain: res.plain.rate,
          atomic: res.atomic.rate,
          failures: res.ours.failures,
          cpuMs: res.ours.cpuMs,
        });
        console.log(
          `PUT ${label} round ${r + 1}: trove ${fmtNum(res.ours.rate)} writes/s (${res.ours.cpuMs.toFixed(2)} CPU ms/PUT) | writeFile+fsync ${fmtNum(res.plain.rate)}/s | atomic ${fmtNum(res.atomic.rate)}/s`,
        );
      }
      const check = await client.request({ path: `/files/${dirName}/${names[0]}`, headers: auth });
      if (check.status !== 200 || !check.body.equals(body)) throw new Error('a PUT file does not read back as written');
      return perRound;
    } finally {
      rmSync(baseDir, { recursive: true, force: true });
    }
  };

  if (only.has('put') && !wrkBin) {
    rows.push(
      row({
        metric: `PUT 1 MiB durable ×${putConcurrency} vs writeFile+fsync`,
        unit: 'MiB/s',
        ours: null,
        pass: null,
        note: 'wrk unavailable',
      }),
    );
  } else if (only.has('put')) {
    const perRound = await putBench({ label: '1 MiB', size: MiB, concurrency: putConcurrency, warmUpSecs: 10 });
    detail.put = perRound;
    const failures = perRound.reduce((n, p) => n + p.failures, 0);
    const ratio = median(perRound.map((p) => p.ours / p.plain));
    const chk = atLeast(ratio, 0.5);
    rows.push(
      row({
        metric: `PUT 1 MiB durable ×${putConcurrency} vs writeFile+fsync`,
        unit: 'MiB/s',
        ours: median(perRound.map((p) => p.ours)),
        baseline: median(perRound.map((p) => p.plain)),
        ratio,
        ...chk,
        pass: chk.pass && failures === 0,
        note: failures ? `${failures} PUTs failed` : undefined,
      }),
    );
    // Issue 20's target: the durable ceiling is the same atomic sequence the server promises, done locally.
    const atomicRatio = median(perRound.map((p) => p.ours / p.atomic));
    const atomicChk = atLeast(atomicRatio, 0.7);
    rows.push(
      row({
        metric: `PUT 1 MiB vs tmp+fsync+rename+fsync dir`,
        unit: 'MiB/s',
        ours: median(perRound.map((p) => p.ours)),
        baseline: median(perRound.map((p) => p.atomic)),
        ratio: atomicRatio,
        ...atomicChk,
        pass: atomicChk.pass && failures === 0,
      }),
    );
    rows.push(row({ metric: 'PUT 1 MiB server CPU per PUT', unit: 'ms', ours: median(perRound.map((p) => p.cpuMs)) }));
  }

  if (only.has('put4k') && !wrkBin) {
    rows.push(
      row({
        metric: `PUT 4 KiB durable ×${put4kConcurrency} vs tmp+fsync+rename+fsync dir`,
        unit: 'writes/s',
        ours: null,
        pass: null,
        note: 'wrk unavailable',
      }),
    );
  } else if (only.has('put4k')) {
    const perRound = await putBench({ label: '4 KiB', size: 4096, concurrency: put4kConcurrency, warmUpSecs: 5 });
    detail.put4k = perRound;
    const failures = perRound.reduce((n, p) => n + p.failures, 0);
    const ratio = median(perRound.map((p) => p.ours / p.atomic));
    const chk = atLeast(ratio, 0.6);
    rows.push(
      row({
        metric: `PUT 4 KiB durable ×${put4kConcurrency} vs tmp+fsync+rename+fsync dir`,
        unit: 'writes/s',
        ours: median(perRound.map((p) => p.ours)),
        baseline: median(perRound.map((p) => p.atomic)),
        ratio,
        ...chk,
        pass: chk.pass && failures === 0,
        note: failures ? `${failures} PUTs failed` : undefined,
      }),
    );
    rows.push(row({ metric: 'PUT 4 KiB server CPU per PUT', unit: 'ms', ours: median(perRound.map((p) => p.cpuMs)) }));
  }
} finally {
  client.close();
  await nginx?.close();
  await floor?.close();
  await server.close();
}

if (profileDir) detail.profile = reportProfile(profileDir);

finish('http', rows, {
  params: {
    quick,
    seconds,
    rounds,
    connections,
    putFiles,
    putSeconds,
    putRounds,
    putConcurrency,
    put4kConcurrency,
    nginxWorkers,
  },
  detail,
});
