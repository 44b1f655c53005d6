#!/usr/bin/env node
/**
 * Webhook delivery benchmark: event → delivered latency to a loopback
 * receiver (p50/p99, one event at a time) and sustained deliveries/s (one
 * ordered endpoint, then several endpoints in parallel).
 *
 *   npm run build && node bench/webhooks.mjs [--latency-events 300] [--events 1000] [--endpoints 8]
 *
 * Starts the built server (packages/server/dist/bin.js) on an ephemeral port with
 * a temp data dir. Latency is measured from the event's created_at (stamped by
 * the server inside the event's transaction) to the receiver's arrival time, on
 * the same clock. Prints a human summary and a final JSON line.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const bin = join(root, 'packages/server/dist/bin.js');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}
const LATENCY_EVENTS = arg('latency-events', 300);
const EVENTS = arg('events', 1000);
const ENDPOINTS = arg('endpoints', 8);
const PARALLEL_EVENTS = Math.max(1, Math.round(EVENTS / 2));

if (!existsSync(bin)) {
  console.error(`missing ${bin}: run \`npm run build\` first`);
  process.exit(2);
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
const ms = (x) => `${x.toFixed(1)} ms`;

/** Loopback receiver: records arrival time per (path, event id), answers 200 at once. */
function startReceiver() {
  const arrivals = new Map();
  let waiters = [];
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now();
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      arrivals.set(`${req.url} ${event.id}`, { at: now, createdAt: Date.parse(event.created_at) });
      res.end('ok');
      const w = waiters;
      waiters = [];
      for (const fn of w) fn();
    });
  });
  return new Promise((resolveStart) =>
    server.listen(0, '127.0.0.1', () =>
      resolveStart({
        server,
        arrivals,
        port: server.address().port,
        async waitFor(pred, timeoutMs = 120_000) {
          const deadline = Date.now() + timeoutMs;
          while (!pred()) {
            if (Date.now() > deadline) throw new Error(`receiver: timed out (${arrivals.size} arrivals)`);
            await new Promise((r) => {
              const t = setTimeout(r, 200);
              waiters.push(() => {
                clearTimeout(t);
                r();
              });
            });
          }
        },
      }),
    ),
  );
}

async function startServer() {
  const dataDir = mkdtempSync(join(tmpdir(), 'trove-bench-webhooks-'));
  const adminKey = 'trove-sk-' + randomBytes(24).toString('hex');
  const runtimeKey = 'trove-sk-' + randomBytes(24).toString('hex');
  const proc = spawn(process.execPath, [bin], {
    env: {
      ...process.env,
      TROVE_HOST: '127.0.0.1',
      TROVE_PORT: '0',
      TROVE_DATA_DIR: dataDir,
      TROVE_BOOTSTRAP_ADMIN_KEY: adminKey,
      TROVE_BOOTSTRAP_RUNTIME_KEY: runtimeKey,
      TROVE_WEBHOOK_ALLOW_PRIVATE: '1',
      TROVE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const baseUrl = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('server did not start:\n' + out)), 60_000);
    proc.stdout.on('data', () => {
      const m = /Trove listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        res(m[1]);
      }
    });
    proc.once('exit', (code) => rej(new Error(`server exited (${code}):\n${out}`)));
  });
  const me = await (await fetch(`${baseUrl}/v1/me`, { headers: { authorization: `Bearer ${adminKey}` } })).json();
  return {
    baseUrl,
    adminKey,
    runtimeKey,
    ws: me.workspace_id,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function call(s, key, method, path, body, ns) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (ns) headers['x-namespace'] = ns;
  const res = await fetch(s.baseUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
  return JSON.parse(text);
}

const createHook = (s, url) => call(s, s.adminKey, 'POST', `/v1/workspaces/${s.ws}/webhooks`, { url, events: ['file.written'] });
const deleteHook = (s, id) => call(s, s.adminKey, 'DELETE', `/v1/workspaces/${s.ws}/webhooks/${id}`);
const write = (s, ns, path) => call(s, s.runtimeKey, 'POST', '/write', { path, content: 'x' }, ns);

/** Writes `n` files with `concurrency` requests in flight. */
async function writeMany(s, ns, n, concurrency = 16) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        await write(s, ns, `f${i}.txt`);
      }
    }),
  );
}

const server = await startServer();
const rx = await startReceiver();
const results = { bench: 'webhooks', cpus: cpus().length, loadavg_1m: Number(loadavg()[0].toFixed(2)) };
try {
  // 1. Latency: one event at a time, wait for it to arrive.
  const h = await createHook(server, `http://127.0.0.1:${rx.port}/lat`);
  for (let i = 0; i < 20; i++) {
    // warm-up: first connection, JIT
    const before = rx.arrivals.size;
    await write(server, 'lat', `warm${i}.txt`);
    await rx.waitFor(() => rx.arrivals.size > before);
  }
  rx.arrivals.clear();
  for (let i = 0; i < LATENCY_EVENTS; i++) {
    await write(server, 'lat', `l${i}.txt`);
    await rx.waitFor(() => rx.arrivals.size > i);
  }
  const lat = [...rx.arrivals.values()].map((a) => a.at - a.createdAt).sort((a, b) => a - b);
  results.latency_events = lat.length;
  results.latency_p50_ms = pct(lat, 50);
  results.latency_p90_ms = pct(lat, 90);
  results.latency_p99_ms = pct(lat, 99);
  results.latency_max_ms = lat[lat.length - 1];
  await deleteHook(server, h.webhook_id);
  console.log(`event → delivered (${lat.length} events, one at a time): p50 ${ms(results.latency_p50_ms)}, p90 ${ms(results.latency_p90_ms)}, p99 ${ms(results.latency_p99_ms)}, max ${ms(results.latency_max_ms)}`);

  // 2. One endpoint (deliveries are ordered: one in flight), events written as fast as possible.
  rx.arrivals.clear();
  const one = await createHook(server, `http://127.0.0.1:${rx.port}/one`);
  let t0 = Date.now();
  const writing = writeMany(server, 'one', EVENTS);
  await writing;
  const writeSecs = (Date.now() - t0) / 1000;
  await rx.waitFor(() => rx.arrivals.size >= EVENTS);
  let secs = (Date.now() - t0) / 1000;
  results.single_endpoint_events = EVENTS;
  results.single_endpoint_deliveries_per_s = Math.round(EVENTS / secs);
  results.single_endpoint_events_per_s = Math.round(EVENTS / writeSecs);
  await deleteHook(server, one.webhook_id);
  console.log(`1 endpoint: ${EVENTS} deliveries in ${secs.toFixed(2)} s → ${results.single_endpoint_deliveries_per_s} deliveries/s (events written at ${results.single_endpoint_events_per_s}/s)`);

  // 3. Several endpoints, each receiving every event.
  rx.arrivals.clear();
  const hooks = [];
  for (let i = 0; i < ENDPOINTS; i++) hooks.push(await createHook(server, `http://127.0.0.1:${rx.port}/multi${i}`));
  const total = PARALLEL_EVENTS * ENDPOINTS;
  t0 = Date.now();
  await writeMany(server, 'multi', PARALLEL_EVENTS);
  await rx.waitFor(() => rx.arrivals.size >= total);
  secs = (Date.now() - t0) / 1000;
  results.multi_endpoints = ENDPOINTS;
  results.multi_events = PARALLEL_EVENTS;
  results.multi_deliveries = total;
  results.multi_deliveries_per_s = Math.round(total / secs);
  const multiLat = [...rx.arrivals.values()].map((a) => a.at - a.createdAt).sort((a, b) => a - b);
  results.multi_latency_p50_ms = pct(multiLat, 50);
  results.multi_latency_p99_ms = pct(multiLat, 99);
  console.log(
    `${ENDPOINTS} endpoints × ${PARALLEL_EVENTS} events: ${total} deliveries in ${secs.toFixed(2)} s → ${results.multi_deliveries_per_s} deliveries/s (under load: p50 ${ms(results.multi_latency_p50_ms)}, p99 ${ms(results.multi_latency_p99_ms)})`,
  );
  for (const x of hooks) await deleteHook(server, x.webhook_id);
  console.log(`machine: ${results.cpus} CPUs, load average ${results.loadavg_1m} at start`);
  console.log(JSON.stringify(results));
} finally {
  rx.server.closeAllConnections();
  rx.server.close();
  await server.stop();
}
