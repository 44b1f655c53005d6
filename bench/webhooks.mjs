#!/usr/bin/env node
/**
 * Webhook delivery: event → delivered latency to a loopback receiver (p50/p99,
 * one event at a time; target p50 ≤ 50 ms) and sustained deliveries/s, for one
 * endpoint (ordered: one delivery in flight) and for several endpoints at once.
 *
 * Throughput is measured as a drain, so it is the delivery engine's and not the
 * event-writing API's: the receiver answers 503 while the events are written (a
 * backlog builds behind each endpoint's first delivery), then 200; the clock and
 * the server's CPU time run from that switch to the last delivery. CPU ms per
 * delivery is the steadier number on a busy machine.
 *
 * Latency runs from the event's created_at (stamped by the server inside the
 * event's transaction) to the receiver's arrival time, on the same clock. The
 * baseline is the floor a webhook system cannot beat: the same receiver hit by
 * plain sequential POSTs from this process (keep-alive), so the ratio shows
 * what the outbox, claim and signing cost on top of the HTTP round trip.
 *
 *   node bench/webhooks.mjs [--quick] [--latency-events 300] [--events 1000] [--endpoints 8]
 *
 * Needs the built server (npm run build). Follows bench/lib/report.mjs's convention.
 */
import http from 'node:http';
import { parseArgs } from './lib/args.mjs';
import { startServer } from './lib/server.mjs';
import { summarize } from './lib/stats.mjs';
import { cpuTimeMs } from './lib/cpu.mjs';
import { finish, loadLine, row } from './lib/report.mjs';

const args = parseArgs();
const quick = args.has('quick');
const LATENCY_EVENTS = args.num('latency-events', quick ? 100 : 300);
const EVENTS = args.num('events', quick ? 200 : 1000);
const ENDPOINTS = args.num('endpoints', quick ? 4 : 8);
const MULTI_EVENTS = Math.max(1, Math.round(EVENTS / 2));

/**
 * Loopback receiver: answers 503 while `failing`, else records the arrival time
 * per (path, event id) and answers 200 at once.
 */
async function startReceiver() {
  const arrivals = new Map();
  let waiters = [];
  const rx = { failing: false };
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (rx.failing) {
        res.statusCode = 503;
        res.end();
        return;
      }
      const at = Date.now();
      const body = Buffer.concat(chunks).toString('utf8');
      const event = body ? JSON.parse(body) : { id: String(Math.random()), created_at: new Date(at).toISOString() };
      arrivals.set(`${req.url} ${event.id}`, { at, createdAt: Date.parse(event.created_at) });
      res.end('ok');
      const w = waiters;
      waiters = [];
      for (const fn of w) fn();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(rx, {
    server,
    arrivals,
    url: (path) => `http://127.0.0.1:${server.address().port}${path}`,
    async waitFor(pred, timeoutMs = 300_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`receiver: timed out with ${arrivals.size} arrivals`);
        await new Promise((r) => {
          const t = setTimeout(r, 250);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
  });
}

async function call(s, key, method, path, body, ns) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (ns) headers['x-namespace'] = ns;
  const res = await fetch(s.baseUrl + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
  return JSON.parse(text);
}

const hooksPath = (s) => `/v1/workspaces/${s.workspaceId}/webhooks`;
const createHook = (s, url) => call(s, s.adminKey, 'POST', hooksPath(s), { url, events: ['file.written'] });
const deleteHook = (s, id) => call(s, s.adminKey, 'DELETE', `${hooksPath(s)}/${id}`);
const write = (s, ns, path) => call(s, s.runtimeKey, 'POST', '/write', { path, content: 'x' }, ns);

/** Writes `n` files with `concurrency` requests in flight; resolves with the elapsed seconds. */
async function writeMany(s, ns, n, concurrency = 16) {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        await write(s, ns, `f${i}.txt`);
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

console.log(loadLine('load at start'));
// A short retry step, so a backlog starts draining right after the receiver recovers.
const server = await startServer({ logLevel: 'warn', env: { TROVE_WEBHOOK_RETRY_SCHEDULE: '100' } });
const rx = await startReceiver();
const rows = [];
const detail = {};
try {
  // Baseline: sequential keep-alive POSTs straight to the receiver (the HTTP floor).
  const body = JSON.stringify({ id: 'evt-x', created_at: new Date().toISOString(), padding: 'x'.repeat(200) });
  const direct = [];
  for (let i = 0; i < LATENCY_EVENTS + 20; i++) {
    const t0 = performance.now();
    const res = await fetch(rx.url('/direct'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await res.text();
    if (i >= 20) direct.push(performance.now() - t0);
  }
  const directStats = summarize(direct);
  const directPerSec = 1000 / (direct.reduce((a, b) => a + b, 0) / direct.length);

  // 1. Latency: one event at a time, each waited for before the next.
  const h = await createHook(server, rx.url('/lat'));
  for (let i = 0; i < 20; i++) {
    const before = rx.arrivals.size;
    await write(server, 'lat', `warm${i}.txt`);
    await rx.waitFor(() => rx.arrivals.size > before);
  }
  rx.arrivals.clear();
  for (let i = 0; i < LATENCY_EVENTS; i++) {
    await write(server, 'lat', `l${i}.txt`);
    await rx.waitFor(() => rx.arrivals.size > i);
  }
  const lat = summarize([...rx.arrivals.values()].map((a) => a.at - a.createdAt));
  detail.latency = lat;
  detail.directPost = directStats;
  await deleteHook(server, h.webhook_id);
  console.log(
    `event → delivered, ${lat.n} events one at a time: p50 ${lat.p50} ms, p90 ${lat.p90} ms, p99 ${lat.p99} ms, max ${lat.max} ms`,
  );
  rows.push(
    row({
      metric: 'event → delivered p50',
      unit: 'ms',
      ours: lat.p50,
      baseline: Number(directStats.p50.toFixed(2)),
      ratio: directStats.p50 / Math.max(lat.p50, 0.001),
      target: '≤ 50 ms',
      pass: lat.p50 <= 50,
      note: 'baseline: a bare POST to the same receiver',
    }),
    row({
      metric: 'event → delivered p99',
      unit: 'ms',
      ours: lat.p99,
      baseline: Number(directStats.p99.toFixed(2)),
      ratio: directStats.p99 / Math.max(lat.p99, 0.001),
    }),
  );

  /** Builds a backlog behind failing endpoints, then measures how fast it drains. */
  async function drain(label, paths, events) {
    rx.arrivals.clear();
    rx.failing = true;
    const hooks = [];
    for (const p of paths) hooks.push(await createHook(server, rx.url(p)));
    const writeSecs = await writeMany(server, label, events);
    const total = events * paths.length;
    const cpu0 = cpuTimeMs(server.pid);
    const t0 = performance.now();
    rx.failing = false;
    await rx.waitFor(() => rx.arrivals.size >= total);
    const secs = (performance.now() - t0) / 1000;
    const cpuMs = cpuTimeMs(server.pid) - cpu0;
    for (const x of hooks) await deleteHook(server, x.webhook_id);
    return {
      total,
      secs,
      perSec: total / secs,
      cpuPerDelivery: cpuMs / total,
      eventsWrittenPerSec: events / writeSecs,
    };
  }

  // 2. One endpoint: deliveries are ordered, one in flight.
  const one = await drain('one', ['/one'], EVENTS);
  detail.singleEndpoint = one;
  console.log(
    `1 endpoint: ${one.total} backlogged deliveries drained in ${one.secs.toFixed(2)} s = ${one.perSec.toFixed(0)}/s, server CPU ${one.cpuPerDelivery.toFixed(2)} ms per delivery`,
  );
  rows.push(
    row({
      metric: '1 endpoint (ordered) deliveries/s',
      unit: '/s',
      ours: Math.round(one.perSec),
      baseline: Math.round(directPerSec),
      note: 'baseline: bare sequential POSTs',
    }),
    row({ metric: '1 endpoint server CPU per delivery', unit: 'ms', ours: Number(one.cpuPerDelivery.toFixed(3)) }),
  );

  // 3. Several endpoints, each receiving every event.
  const paths = Array.from({ length: ENDPOINTS }, (_, i) => `/multi${i}`);
  const multi = await drain('multi', paths, MULTI_EVENTS);
  detail.multiEndpoint = { endpoints: ENDPOINTS, events: MULTI_EVENTS, ...multi };
  console.log(
    `${ENDPOINTS} endpoints × ${MULTI_EVENTS} events: ${multi.total} deliveries drained in ${multi.secs.toFixed(2)} s = ${multi.perSec.toFixed(0)}/s, server CPU ${multi.cpuPerDelivery.toFixed(2)} ms per delivery`,
  );
  rows.push(
    row({ metric: `${ENDPOINTS} endpoints deliveries/s`, unit: '/s', ours: Math.round(multi.perSec) }),
    row({
      metric: `${ENDPOINTS} endpoints server CPU per delivery`,
      unit: 'ms',
      ours: Number(multi.cpuPerDelivery.toFixed(3)),
    }),
  );
} finally {
  rx.server.closeAllConnections();
  rx.server.close();
  await server.close();
}
finish('webhooks', rows, {
  params: { quick, latencyEvents: LATENCY_EVENTS, events: EVENTS, endpoints: ENDPOINTS },
  detail,
});
