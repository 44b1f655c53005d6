#!/usr/bin/env node
/**
 * Exec runner benchmark (in-process, no HTTP): what the ExecService adds on
 * top of bubblewrap itself.
 *
 *   node bench/exec.mjs [--iterations 200] [--json]
 *
 * 1. overhead: `true` through ExecService.run() vs a bare spawn of the very
 *    same bwrap command line (same mounts, seccomp, uid drop) running
 *    `sh -c true`, interleaved in the same run; p50/p99 of each and of the
 *    difference.
 * 2. first exec in a brand-new namespace (directory created, chowned, run).
 * 3. throughput: execs of `true` per second across 10 namespaces.
 *
 * Needs the built server (npm run build). The HTTP-level numbers are in the
 * API benchmark.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.env.TROVE_BENCH_DIST ?? join(here, '..', 'packages', 'server', 'dist');
const { ExecService } = await import(pathToFileURL(join(dist, 'sandbox', 'exec.js')).href);
const { loadConfig } = await import(pathToFileURL(join(dist, 'config.js')).href);

const argv = process.argv.slice(2);
const flag = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(argv[i + 1]);
};
const iterations = flag('iterations', 200);
const asJson = argv.includes('--json');

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const fmt = (ms) => `${ms.toFixed(2)} ms`;

const config = loadConfig(process.env).exec;
const quiet = { info() {}, warn() {}, error: (o, m) => console.error(m ?? o) };
const svc = new ExecService(config, quiet);
const status = await svc.init();
if (!status.available || status.mode !== 'bubblewrap') {
  console.error(`exec sandbox unavailable: ${status.reason} — ${status.fix}`);
  process.exit(1);
}

const base = mkdtempSync(join(tmpdir(), 'trove-bench-exec-'));
const nsRoot = (name) => join(base, 'ns', name);

function bareSpawn(cmd) {
  return new Promise((resolve, reject) => {
    const fd = cmd.seccompPath ? openSync(cmd.seccompPath, 'r') : -1;
    const stdio = ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', fd >= 0 ? fd : 'ignore'];
    const started = performance.now();
    const child = spawn(cmd.file, cmd.args, { stdio, env: {} });
    if (fd >= 0) closeSync(fd);
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (d) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`bare bwrap exited ${code}: ${err}`))));
  });
}

async function viaService(ns, command = 'true') {
  const started = performance.now();
  const r = await svc.run({ workspaceId: 'bench', namespace: ns, nsRoot: nsRoot(ns), command, sourceInit: true });
  if (r.exitCode !== 0) throw new Error(`exec failed: ${r.stderr}`);
  return performance.now() - started;
}

try {
  // Warm-up: page cache, cgroup slot creation, JIT.
  await viaService('warm');
  const bare = svc.sandboxCommand(nsRoot('warm'), 'true');
  for (let i = 0; i < 10; i++) {
    await viaService('warm');
    await bareSpawn(bare);
  }

  // 1. Overhead, interleaved so machine noise hits both sides alike.
  const svcTimes = [];
  const bareTimes = [];
  const diffs = [];
  for (let i = 0; i < iterations; i++) {
    const b = await bareSpawn(bare);
    const s = await viaService('warm');
    bareTimes.push(b);
    svcTimes.push(s);
    diffs.push(s - b);
  }

  // 2. First exec in a brand-new namespace.
  const firsts = [];
  for (let i = 0; i < Math.min(50, iterations); i++) firsts.push(await viaService(`fresh-${i}`, 'echo ready'));

  // 3. Throughput across 10 namespaces, as many in flight as the global cap allows.
  const total = Math.max(100, iterations);
  const names = Array.from({ length: 10 }, (_, i) => `tp-${i}`);
  for (const n of names) await viaService(n);
  const inFlight = Math.min(config.globalConcurrency, names.length * config.perNamespaceConcurrency);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, w) => {
      while (next < total) {
        next++;
        await viaService(names[w % names.length]);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;

  const result = {
    cpus: cpus().length,
    privileged: process.getuid?.() === 0,
    iterations,
    bare: { p50: quantile(bareTimes, 0.5), p99: quantile(bareTimes, 0.99) },
    service: { p50: quantile(svcTimes, 0.5), p99: quantile(svcTimes, 0.99) },
    overhead: { p50: quantile(diffs, 0.5), p99: quantile(diffs, 0.99) },
    firstExecNewNamespace: { p50: quantile(firsts, 0.5), p99: quantile(firsts, 0.99) },
    throughput: { execsPerSecond: total / seconds, namespaces: names.length, inFlight },
  };
  if (asJson) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    console.log(`exec benchmark (${result.cpus} cpus, ${result.privileged ? 'root: privileged bwrap + setpriv' : 'non-root: user namespace'}, ${iterations} iterations)`);
    console.log(`  bare bwrap sh -c true      p50 ${fmt(result.bare.p50)}   p99 ${fmt(result.bare.p99)}`);
    console.log(`  ExecService.run('true')    p50 ${fmt(result.service.p50)}   p99 ${fmt(result.service.p99)}`);
    console.log(`  overhead (paired)          p50 ${fmt(result.overhead.p50)}   p99 ${fmt(result.overhead.p99)}   (target ≤ 3 ms / ≤ 10 ms)`);
    console.log(`  first exec, new namespace  p50 ${fmt(result.firstExecNewNamespace.p50)}   p99 ${fmt(result.firstExecNewNamespace.p99)}   (target p50 < 50 ms)`);
    console.log(`  throughput, 10 namespaces  ${result.throughput.execsPerSecond.toFixed(1)} execs/s with ${inFlight} in flight   (target ≥ 100/s)`);
  }
} finally {
  await svc.close();
  rmSync(base, { recursive: true, force: true });
}
