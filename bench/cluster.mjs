#!/usr/bin/env node
/**
 * Cluster mode benchmark: requests/s of a mixed workload on one node vs two
 * nodes sharing one PostgreSQL database and one data dir, and event → tail
 * latency when the write and the long-poll land on different nodes.
 *
 *   npm run build && node bench/cluster.mjs [--quick] [--seconds 15] [--concurrency 32] [--samples 200] [--workspaces 8] [--reads-only]
 *
 * The load is spread over --workspaces (8) workspaces: event appends are
 * serialised per workspace, so `--workspaces 1` shows that ceiling instead.
 *
 * Needs the local PostgreSQL (TROVE_BENCH_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres); creates a fresh database and
 * drops it at the end. The workload (per request, random namespace of 16):
 * 45% GET /files (1 KiB), 20% POST /write, 15% GET /v1/files listing,
 * 10% GET events?limit=20, 10% GET /v1/me. Two nodes on a 2-core machine
 * share the cores with PostgreSQL and this load generator, so read the
 * two-node figure as "what coordination costs", not as linear scaling.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { parseArgs } from './lib/args.mjs';
import { makeClient, closedLoop, expectJson } from './lib/http-client.mjs';
import { summarize, fmtNum } from './lib/stats.mjs';
import { finish, row, loadLine, atLeast } from './lib/report.mjs';
import { serverBin, randomKey } from './lib/server.mjs';

const args = parseArgs();
const QUICK = args.has('quick');
const SECONDS = args.num('seconds', QUICK ? 4 : 15);
const CONCURRENCY = args.num('concurrency', 32);
const SAMPLES = args.num('samples', QUICK ? 30 : 200);
const NAMESPACES = 16;
// --reads-only: drop the writes (20%) to separate the cost of event appends from the rest.
const READS_ONLY = args.has('reads-only');
// Event appends are serialised per workspace (created_at is strictly increasing per workspace, across nodes),
// so one workspace bounds write throughput whatever the node count; real clusters serve many.
const WORKSPACES = args.num('workspaces', 8);
const MIX = `${READS_ONLY ? 'read-only' : 'mixed'} workload, ${WORKSPACES} workspace${WORKSPACES === 1 ? '' : 's'}`;
const PG_URL = process.env.TROVE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

if (!existsSync(serverBin)) {
  console.error(`${serverBin} is missing: run \`npm run build\` first`);
  process.exit(2);
}

async function admin(sqlText) {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(sqlText);
  } finally {
    await c.end();
  }
}

/** A node of the cluster: its own process on the shared data dir and database, output to a log file. */
async function startNode({ dataDir, databaseUrl, adminKey, runtimeKey, name }) {
  const logPath = join(dataDir, `..`, `${name}.log`);
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('TROVE_')) delete env[k];
  Object.assign(env, {
    TROVE_HOST: '127.0.0.1',
    TROVE_PORT: '0',
    TROVE_DATA_DIR: dataDir,
    TROVE_BOOTSTRAP_ADMIN_KEY: adminKey,
    TROVE_BOOTSTRAP_RUNTIME_KEY: runtimeKey,
    TROVE_LOG_LEVEL: 'warn',
    TROVE_ALLOW_SIGNUP: '1',
    ...(databaseUrl ? { TROVE_DATABASE_URL: databaseUrl } : {}),
  });
  const fd = openSync(logPath, 'a');
  const proc = spawn(process.execPath, [serverBin], { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise((res) => proc.once('exit', res));
  const output = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + 60_000;
  let port = null;
  while (port === null) {
    const m = /Trove listening on http:\/\/[^\s]+:(\d+)/.exec(output());
    if (m) port = Number(m[1]);
    else if (proc.exitCode !== null) throw new Error(`${name} exited before listening:\n${output()}`);
    else if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`${name} did not listen within 60 s:\n${output()}`);
    } else await sleep(50);
  }
  return {
    name,
    baseUrl: `http://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** One request of the mixed workload against `client`. */
function mixedOp(root, client) {
  const ctx = root.tenants[Math.floor(Math.random() * root.tenants.length)];
  const ns = `ns${Math.floor(Math.random() * NAMESPACES)}`;
  const rt = { authorization: `Bearer ${ctx.runtimeKey}`, 'x-namespace': ns };
  const r = Math.random();
  if (r < 0.45) return client.request({ path: '/files/small.txt', headers: rt, discard: true });
  if (r < 0.65 && READS_ONLY) return client.request({ path: '/files/small.txt', headers: rt, discard: true });
  if (r < 0.65) {
    return client.request({
      method: 'POST',
      path: '/write',
      headers: rt,
      body: { path: `w/${Math.floor(Math.random() * 64)}.txt`, content: randomBytes(256).toString('hex') },
    });
  }
  if (r < 0.8) return client.request({ path: '/v1/files?path=workspace/', headers: rt, discard: true });
  if (r < 0.9) {
    return client.request({
      path: `/v1/workspaces/${ctx.workspaceId}/events?limit=20`,
      headers: { authorization: `Bearer ${ctx.adminKey}` },
      discard: true,
    });
  }
  return client.request({ path: '/v1/me', headers: { authorization: `Bearer ${ctx.runtimeKey}` }, discard: true });
}

/** Runs the workload for SECONDS with CONCURRENCY workers spread over `nodes`; returns req/s and latencies. */
async function throughput(ctx, nodes) {
  const clients = nodes.map((n) => makeClient(n.baseUrl, { connections: Math.ceil(CONCURRENCY / nodes.length) }));
  const lat = [];
  let errors = 0;
  let done = 0;
  // Warm-up: connections, JIT, caches.
  await closedLoop({
    concurrency: CONCURRENCY,
    durationMs: 1000,
    op: (w) => mixedOp(ctx, clients[w % clients.length]),
  });
  const seconds = await closedLoop({
    concurrency: CONCURRENCY,
    durationMs: SECONDS * 1000,
    op: async (w) => {
      const res = await mixedOp(ctx, clients[w % clients.length]);
      done++;
      lat.push(res.ms);
      if (res.status !== 200) errors++;
    },
  });
  for (const c of clients) c.close();
  return { rps: done / seconds, errors, latency: summarize(lat) };
}

/** Write on `writer`, long-poll on `tailer`: ms from sending the write to the tail's answer. */
async function tailLatency(ctx, writer, tailer) {
  const wc = makeClient(writer.baseUrl, { connections: 2 });
  const tc = makeClient(tailer.baseUrl, { connections: 2 });
  const adminH = { authorization: `Bearer ${ctx.adminKey}` };
  const events = `/v1/workspaces/${ctx.workspaceId}/events`;
  const samples = [];
  try {
    for (let i = 0; i < SAMPLES; i++) {
      const newest = await expectJson(await tc.request({ path: `${events}?limit=1&namespace=tail`, headers: adminH }));
      const since = newest.events[0]?.created_at;
      const q = `${events}?wait=10&namespace=tail${since ? `&since=${encodeURIComponent(since)}` : ''}`;
      let answered = 0;
      const tail = tc.request({ path: q, headers: adminH }).then((res) => {
        answered = performance.now();
        return res;
      });
      // The long-poll must be waiting when the write lands, or we would time its first query instead.
      await sleep(20);
      const sent = performance.now();
      const w = await wc.request({
        method: 'POST',
        path: '/write',
        headers: { authorization: `Bearer ${ctx.runtimeKey}`, 'x-namespace': 'tail' },
        body: { path: 't.txt', content: String(i) },
      });
      if (w.status !== 200) throw new Error(`write answered ${w.status}: ${w.body}`);
      const got = await expectJson(await tail);
      if (got.events.length === 0) throw new Error('tail timed out: the write never woke it');
      samples.push(answered - sent);
    }
  } finally {
    wc.close();
    tc.close();
  }
  return summarize(samples);
}

/** The bootstrap workspace plus WORKSPACES - 1 signed-up ones, each with 16 namespaces of files. */
async function seed(ctx, node) {
  ctx.tenants = [{ workspaceId: ctx.workspaceId, adminKey: ctx.adminKey, runtimeKey: ctx.runtimeKey }];
  for (let i = 1; i < WORKSPACES; i++) {
    const res = await fetch(`${node.baseUrl}/v1/workspaces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `bench-${i}` }),
    });
    if (res.status !== 201) throw new Error(`signup answered ${res.status}: ${await res.text()}`);
    const ws = await res.json();
    ctx.tenants.push({ workspaceId: ws.workspace_id, adminKey: ws.admin_api_key, runtimeKey: ws.api_key });
  }
  for (const t of ctx.tenants) await seedWorkspace(t, node);
}

async function seedWorkspace(ctx, node) {
  const c = makeClient(node.baseUrl, { connections: 8 });
  try {
    await Promise.all(
      Array.from({ length: NAMESPACES }, async (_, i) => {
        const h = { authorization: `Bearer ${ctx.runtimeKey}`, 'x-namespace': `ns${i}` };
        await expectJson(
          await c.request({
            method: 'POST',
            path: '/write',
            headers: h,
            body: { path: 'small.txt', content: 'x'.repeat(1024) },
          }),
        );
        for (let j = 0; j < 8; j++) {
          await expectJson(
            await c.request({
              method: 'POST',
              path: '/write',
              headers: h,
              body: { path: `dir/f${j}.txt`, content: String(j) },
            }),
          );
        }
      }),
    );
  } finally {
    c.close();
  }
}

async function main() {
  console.log(loadLine('load at start'));
  const work = mkdtempSync(join(tmpdir(), 'trove-bench-cluster-'));
  const dbName = 'trove_b_' + randomBytes(6).toString('hex');
  const dbUrl = new URL(PG_URL);
  dbUrl.pathname = '/' + dbName;
  const nodes = [];
  const rows = [];
  const extra = {};
  try {
    await admin(`CREATE DATABASE ${dbName}`);
    const ctx = { adminKey: randomKey(), runtimeKey: randomKey() };
    const dataDir = join(work, 'data');

    if (!QUICK) {
      // Reference: the default single node on embedded SQLite, same workload.
      const sqliteDir = join(work, 'sqlite-data');
      const solo = await startNode({ dataDir: sqliteDir, databaseUrl: null, ...ctx, name: 'sqlite' });
      const me = await (
        await fetch(`${solo.baseUrl}/v1/me`, { headers: { authorization: `Bearer ${ctx.adminKey}` } })
      ).json();
      const sctx = { ...ctx, workspaceId: me.workspace_id };
      await seed(sctx, solo);
      console.log(`one node, SQLite: ${SECONDS}s × ${CONCURRENCY} workers …`);
      const s = await throughput(sctx, [solo]);
      console.log(
        `  ${fmtNum(s.rps)} req/s, p50 ${fmtNum(s.latency.p50)} ms, p99 ${fmtNum(s.latency.p99)} ms, ${s.errors} errors`,
      );
      extra.sqlite = s;
      rows.push(
        row({
          metric: `${MIX}, 1 node SQLite (reference)`,
          unit: 'req/s',
          ours: s.rps,
          note: `p99 ${fmtNum(s.latency.p99)} ms`,
        }),
      );
      await solo.stop();
    }

    nodes.push(await startNode({ dataDir, databaseUrl: dbUrl.toString(), ...ctx, name: 'node-a' }));
    const me = await (
      await fetch(`${nodes[0].baseUrl}/v1/me`, { headers: { authorization: `Bearer ${ctx.adminKey}` } })
    ).json();
    ctx.workspaceId = me.workspace_id;
    await seed(ctx, nodes[0]);

    console.log(`one node, PostgreSQL: ${SECONDS}s × ${CONCURRENCY} workers …`);
    const one = await throughput(ctx, [nodes[0]]);
    console.log(
      `  ${fmtNum(one.rps)} req/s, p50 ${fmtNum(one.latency.p50)} ms, p99 ${fmtNum(one.latency.p99)} ms, ${one.errors} errors`,
    );

    nodes.push(await startNode({ dataDir, databaseUrl: dbUrl.toString(), ...ctx, name: 'node-b' }));
    console.log(`two nodes, PostgreSQL + shared data dir: ${SECONDS}s × ${CONCURRENCY} workers (half per node) …`);
    const two = await throughput(ctx, nodes);
    console.log(
      `  ${fmtNum(two.rps)} req/s, p50 ${fmtNum(two.latency.p50)} ms, p99 ${fmtNum(two.latency.p99)} ms, ${two.errors} errors`,
    );

    console.log(`event → tail latency, ${SAMPLES} samples each …`);
    const same = await tailLatency(ctx, nodes[0], nodes[0]);
    const cross = await tailLatency(ctx, nodes[1], nodes[0]);
    console.log(`  same node:  p50 ${fmtNum(same.p50)} ms, p99 ${fmtNum(same.p99)} ms`);
    console.log(`  cross node: p50 ${fmtNum(cross.p50)} ms, p99 ${fmtNum(cross.p99)} ms`);
    extra.one = one;
    extra.two = two;
    extra.tail = { same, cross };

    const scale = two.rps / one.rps;
    rows.push(
      row({
        metric: `${MIX}, 1 node PostgreSQL`,
        unit: 'req/s',
        ours: one.rps,
        note: `p99 ${fmtNum(one.latency.p99)} ms, ${one.errors} non-200`,
      }),
      row({
        metric: `${MIX}, 2 nodes vs 1 (PostgreSQL)`,
        unit: 'req/s',
        ours: two.rps,
        baseline: one.rps,
        ratio: scale,
        // Two nodes must at least not cost throughput; more is bounded by 2 cores shared with PostgreSQL.
        ...atLeast(scale, 0.9),
        note: `p99 ${fmtNum(two.latency.p99)} ms, ${two.errors} non-200`,
      }),
      row({
        metric: 'event → tail, write on B, tail on A (p50)',
        unit: 'ms',
        ours: cross.p50,
        baseline: same.p50,
        ratio: same.p50 / cross.p50,
        target: '≤ 50 ms',
        pass: cross.p50 <= 50,
        note: 'from sending the write to the long-poll answering; baseline = both on A',
      }),
      row({
        metric: 'event → tail, write on B, tail on A (p99)',
        unit: 'ms',
        ours: cross.p99,
        baseline: same.p99,
        ratio: same.p99 / cross.p99,
        target: '≤ 200 ms',
        pass: cross.p99 <= 200,
      }),
    );
    if (one.errors + two.errors > 0) {
      rows.push(
        row({
          metric: 'non-200 answers during the runs',
          unit: '',
          ours: one.errors + two.errors,
          target: '= 0',
          pass: false,
        }),
      );
    }
  } finally {
    for (const n of nodes) await n.stop().catch(() => {});
    await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((err) =>
      console.error(`could not drop ${dbName}: ${err.message}`),
    );
    rmSync(work, { recursive: true, force: true });
  }
  finish('cluster', rows, {
    ...extra,
    machine: { database: 'postgres' },
    config: {
      seconds: SECONDS,
      concurrency: CONCURRENCY,
      samples: SAMPLES,
      workspaces: WORKSPACES,
      readsOnly: READS_ONLY,
    },
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
