#!/usr/bin/env node
/**
 * Scale: many namespaces, many waiting tails, many webhook endpoints, and
 * what that costs the rest of the API.
 *
 *   1. populate N namespaces × 10 files (default 1,000 × 10);
 *   2. measure GET /v1/me p99 on that server, idle (the baseline);
 *   3. open 50 tail long-polls (events?wait=30, like `trove tail`) and register
 *      20 webhook endpoints on a loopback receiver, then write at a steady
 *      rate so every write wakes every tail and fans out to every endpoint;
 *   4. measure GET /v1/me p99 again under that load, and the server's RSS;
 *   5. check that every tail and every endpoint got every event.
 *
 *   node bench/scale.mjs [--quick] [--namespaces 1000] [--files 10] [--tails 50]
 *                        [--webhooks 20] [--rate 10] [--seconds 20] [--profile] [--log-level L]
 */
import http from 'node:http';
import { setMaxListeners } from 'node:events';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from './lib/args.mjs';
import { join } from 'node:path';
import { startServer, repoRoot } from './lib/server.mjs';
import { reportProfile } from './lib/profile.mjs';
import { makeClient, expectJson, closedLoop } from './lib/http-client.mjs';
import { sampleRss, readRss } from './lib/rss.mjs';
import { cpuTimeMs } from './lib/cpu.mjs';
import { summarize, MiB, fmtNum, fmtBytes } from './lib/stats.mjs';
import { row, finish, loadLine, stamp } from './lib/report.mjs';

const args = parseArgs();
const quick = args.has('quick');
const nsCount = args.num('namespaces', quick ? 100 : 1000);
const filesPerNs = args.num('files', 10);
const tails = args.num('tails', 50);
const hooks = args.num('webhooks', 20);
const rate = args.num('rate', quick ? 5 : 10);
const seconds = args.num('seconds', quick ? 8 : 20);
const meConcurrency = 4;

console.log(
  `scale bench: ${quick ? 'quick' : 'full'} — ${nsCount} namespaces × ${filesPerNs} files, ${tails} tails, ${hooks} webhooks, ` +
    `${rate} writes/s for ${seconds} s`,
);
console.log(loadLine('load at start'));

const profileDir = args.has('profile') ? join(repoRoot, 'bench', 'results', `profile-scale-${stamp()}`) : null;
const server = await startServer({ logLevel: args.str('log-level'), cpuProfDir: profileDir ?? undefined });
const rss = sampleRss(server.pid, 500);
const rssFresh = readRss(server.pid);
const api = makeClient(server.baseUrl, { connections: 16 });
const tailClient = makeClient(server.baseUrl, { connections: tails });
const runtime = { authorization: `Bearer ${server.runtimeKey}` };
const admin = { authorization: `Bearer ${server.adminKey}` };
const rows = [];
const detail = {};
const ns = (i) => `ns-${String(i).padStart(4, '0')}`;

let receiver = null;
const stopTails = new AbortController();
setMaxListeners(tails + 16, stopTails.signal); // one listener per tail request
try {
  // ---------- 1. populate ----------
  const body = randomBytes(1024);
  let populateFailures = 0;
  const total = nsCount * filesPerNs;
  const populateSecs = await closedLoop({
    concurrency: 16,
    count: total,
    op: async (_w, i) => {
      const r = await api.request({
        method: 'PUT',
        path: `/files/dir/f${i % filesPerNs}.txt`,
        headers: { ...runtime, 'x-namespace': ns(Math.floor(i / filesPerNs)) },
        body,
      });
      if (r.status !== 200) populateFailures++;
    },
  });
  const rssPopulated = readRss(server.pid);
  console.log(
    `populated ${total} files in ${populateSecs.toFixed(1)} s (${fmtNum(total / populateSecs)} writes/s), RSS ${fmtBytes(rssPopulated)}`,
  );
  rows.push(
    row({ metric: `populate ${nsCount} ns × ${filesPerNs} files ×16`, unit: 'writes/s', ours: total / populateSecs }),
  );
  rows.push(
    row({ metric: 'populate failures', unit: '', ours: populateFailures, target: '= 0', pass: populateFailures === 0 }),
  );

  // ---------- 2. /v1/me idle ----------
  const me = async (durationMs) => {
    const lat = [];
    let bad = 0;
    await closedLoop({
      concurrency: meConcurrency,
      durationMs,
      op: async () => {
        const r = await api.request({ path: '/v1/me', headers: admin });
        if (r.status !== 200) bad++;
        lat.push(r.ms);
      },
    });
    return { ...summarize(lat), bad };
  };
  await me(1000); // warm-up
  const idle = await me(Math.min(5, seconds) * 1000);
  console.log(`GET /v1/me idle: p50 ${fmtNum(idle.p50, 2)} ms, p99 ${fmtNum(idle.p99, 2)} ms (${idle.n} requests)`);

  // ---------- 3. tails + webhooks ----------
  const written = new Map(); // created_at-independent identity: "ns/path#seq" → write time
  const tailSeen = Array.from({ length: tails }, () => new Set());
  const tailLatency = [];
  const hookSeen = Array.from({ length: hooks }, () => new Set());
  const hookLatency = [];
  let tail5xx = 0;
  let tailErrors = 0;

  // Webhook receiver: one loopback server, one path per endpoint.
  receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(204).end();
      const k = Number(/^\/hook\/(\d+)$/.exec(req.url ?? '')?.[1]);
      try {
        const evt = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (evt.type === 'file.written' && evt.data?.path?.startsWith('workspace/load/')) {
          const id = `${evt.namespace}/${evt.data.path}`;
          if (!hookSeen[k].has(id)) {
            hookSeen[k].add(id);
            hookLatency.push(Date.now() - Date.parse(evt.created_at));
          }
        }
      } catch {
        /* not JSON: counted as missing later */
      }
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const hookPort = receiver.address().port;
  let webhooksAvailable = true;
  for (let k = 0; k < hooks; k++) {
    const r = await api.request({
      method: 'POST',
      path: `/v1/workspaces/${server.workspaceId}/webhooks`,
      headers: admin,
      body: {
        url: `http://127.0.0.1:${hookPort}/hook/${k}`,
        events: ['file.written'],
        namespace: null,
        description: `bench ${k}`,
      },
    });
    if (r.status === 404 && k === 0) {
      webhooksAvailable = false;
      console.log('webhooks are not available on this server: skipping the endpoints');
      break;
    }
    await expectJson(r, 201);
  }
  const hookCount = webhooksAvailable ? hooks : 0;

  // Tails: long-poll from "now", exactly like `trove tail` does.
  const startCursor = new Date().toISOString();
  const tailLoops = Array.from({ length: tails }, async (_, t) => {
    let since = startCursor;
    while (!stopTails.signal.aborted) {
      let r;
      try {
        r = await tailClient.request({
          path: `/v1/workspaces/${server.workspaceId}/events?wait=30&limit=200&types=file.written&since=${encodeURIComponent(since)}`,
          headers: admin,
          timeoutMs: 45_000,
          signal: stopTails.signal,
        });
      } catch (err) {
        if (!stopTails.signal.aborted) {
          tailErrors++;
          await sleep(100);
        }
        continue;
      }
      if (r.status >= 500) tail5xx++;
      if (r.status !== 200) {
        tailErrors++;
        await sleep(100);
        continue;
      }
      const now = Date.now();
      const page = JSON.parse(r.body.toString('utf8'));
      const events = [...page.events];
      // A full page: older matching events wait behind next_cursor (docs/protocol.md).
      let cursor = page.events.length === 200 ? page.next_cursor : null;
      while (cursor) {
        const more = await tailClient.request({
          path: `/v1/workspaces/${server.workspaceId}/events?limit=200&types=file.written&since=${encodeURIComponent(since)}&cursor=${encodeURIComponent(cursor)}`,
          headers: admin,
        });
        if (more.status !== 200) {
          tailErrors++;
          break;
        }
        const p2 = JSON.parse(more.body.toString('utf8'));
        events.push(...p2.events);
        cursor = p2.next_cursor;
      }
      for (const e of events) {
        if (!e.data?.path?.startsWith('workspace/load/')) continue;
        const id = `${e.namespace}/${e.data.path}`;
        if (!tailSeen[t].has(id)) {
          tailSeen[t].add(id);
          tailLatency.push(now - Date.parse(e.created_at));
        }
      }
      if (events.length > 0) since = events[0].created_at; // newest first
    }
  });
  await sleep(500); // let every tail reach its wait

  // ---------- 4. steady writes + /v1/me under load ----------
  let seq = 0;
  let writeFailures = 0;
  const writeLatency = [];
  const writer = (async () => {
    const started = performance.now();
    const deadline = started + seconds * 1000;
    const pending = [];
    while (performance.now() < deadline) {
      const i = seq++;
      const namespace = ns(Math.floor(Math.random() * nsCount));
      const path = `load/w${i}.txt`;
      pending.push(
        api
          .request({
            method: 'PUT',
            path: `/files/${path}`,
            headers: { ...runtime, 'x-namespace': namespace },
            body: `write ${i}`,
          })
          .then(
            (r) => {
              if (r.status === 200) {
                written.set(`${namespace}/workspace/${path}`, true);
                writeLatency.push(r.ms);
              } else writeFailures++;
            },
            () => writeFailures++,
          ),
      );
      // Open loop: the next write is due at a fixed time, however slow the last one was.
      const next = started + (seq * 1000) / rate;
      await sleep(Math.max(0, next - performance.now()));
    }
    await Promise.all(pending);
  })();
  const cpuBefore = cpuTimeMs(server.pid);
  const loadStarted = performance.now();
  const loaded = await me(seconds * 1000);
  await writer;
  const cores = (cpuTimeMs(server.pid) - cpuBefore) / (performance.now() - loadStarted);
  console.log(
    `GET /v1/me under load: p50 ${fmtNum(loaded.p50, 2)} ms, p99 ${fmtNum(loaded.p99, 2)} ms (${loaded.n} requests)`,
  );

  // ---------- 5. every event everywhere? ----------
  const expected = written.size;
  const drainDeadline = Date.now() + 15_000;
  const missingTails = () =>
    tailSeen.reduce((n, s) => n + (expected - [...written.keys()].filter((k) => s.has(k)).length), 0);
  const missingHooks = () =>
    hookSeen
      .slice(0, hookCount)
      .reduce((n, s) => n + (expected - [...written.keys()].filter((k) => s.has(k)).length), 0);
  while (Date.now() < drainDeadline && (missingTails() > 0 || missingHooks() > 0)) await sleep(200);
  const lostTail = missingTails();
  const lostHook = missingHooks();
  const rssEnd = rss.stop();
  stopTails.abort();
  await Promise.allSettled(tailLoops);

  const tl = summarize(tailLatency);
  const hl = summarize(hookLatency);
  console.log(
    `${expected} writes; tails saw ${tails * expected - lostTail}/${tails * expected}, webhooks got ${hookCount * expected - lostHook}/${hookCount * expected}`,
  );
  console.log(
    `event→tail p50 ${fmtNum(tl.p50)} ms p99 ${fmtNum(tl.p99)} ms; event→webhook p50 ${fmtNum(hl.p50)} ms p99 ${fmtNum(hl.p99)} ms`,
  );

  rows.push(
    row({
      metric: `GET /v1/me p99 under load (vs idle)`,
      unit: 'ms',
      ours: loaded.p99,
      baseline: idle.p99,
      ratio: idle.p99 / loaded.p99,
      note: 'baseline: the same server before tails, webhooks and writes',
    }),
  );
  rows.push(
    row({
      metric: `GET /v1/me p50 under load (vs idle)`,
      unit: 'ms',
      ours: loaded.p50,
      baseline: idle.p50,
      ratio: idle.p50 / loaded.p50,
    }),
  );
  rows.push(
    row({
      metric: 'server RSS peak (vs fresh server)',
      unit: 'MiB',
      ours: rssEnd.peak / MiB,
      baseline: rssFresh / MiB,
      ratio: rssFresh / rssEnd.peak,
    }),
  );
  rows.push(row({ metric: `write latency p99 at ${rate}/s`, unit: 'ms', ours: summarize(writeLatency).p99 }));
  rows.push(row({ metric: 'server CPU under load', unit: 'cores', ours: cores }));
  rows.push(row({ metric: `event→tail latency p50 (${tails} tails)`, unit: 'ms', ours: tl.p50 }));
  rows.push(row({ metric: `event→tail latency p99`, unit: 'ms', ours: tl.p99 }));
  if (hookCount) {
    rows.push(row({ metric: `event→webhook latency p50 (${hookCount} endpoints)`, unit: 'ms', ours: hl.p50 }));
    rows.push(row({ metric: `event→webhook latency p99`, unit: 'ms', ours: hl.p99 }));
  }
  const bad = loaded.bad + idle.bad + writeFailures + tail5xx + tailErrors;
  rows.push(
    row({
      metric: 'failed requests (/v1/me, writes, tails)',
      unit: '',
      ours: bad,
      target: '= 0',
      pass: bad === 0,
      note: bad
        ? `me ${loaded.bad + idle.bad}, writes ${writeFailures}, tail 5xx ${tail5xx}, tail errors ${tailErrors}`
        : undefined,
    }),
  );
  rows.push(row({ metric: 'events missed by tails', unit: '', ours: lostTail, target: '= 0', pass: lostTail === 0 }));
  if (hookCount)
    rows.push(
      row({ metric: 'deliveries missing after 15 s', unit: '', ours: lostHook, target: '= 0', pass: lostHook === 0 }),
    );
  Object.assign(detail, {
    idle,
    loaded,
    writes: expected,
    rss: { fresh: rssFresh, populated: rssPopulated, peak: rssEnd.peak, samples: rssEnd.samples },
    tailLatency: tl,
    hookLatency: hl,
    webhooksAvailable,
  });
} finally {
  stopTails.abort();
  api.close();
  tailClient.close();
  receiver?.close();
  receiver?.closeAllConnections();
  await server.close();
}

if (profileDir) detail.profile = reportProfile(profileDir);
finish('scale', rows, { params: { quick, nsCount, filesPerNs, tails, hooks, rate, seconds }, detail });
