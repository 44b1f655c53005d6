#!/usr/bin/env node
/**
 * What the machine itself allows under a bench's load, measured beside it in
 * a process of its own: a bare node:http server (lib/node-static.mjs, another
 * process) asked for a 4 KiB file, the durable write sequence the files API
 * promises done locally (temp file, write, fsync, rename, fsync of the
 * directory; 4 KiB, on the bench's file system), and how late a 10 ms timer
 * of this otherwise idle process fires. Each loop runs one at a time with a
 * 25 ms pause (~30/s), so the probe adds little load of its own. soak.mjs
 * runs it during the soak: a Trove p99 next to these says how much of it is
 * the machine (CPU and disk shared with the rest) and how much is ours.
 *
 *   node bench/lib/load-probe.mjs <seconds> [dir]   → one JSON line {get, write, timer} of {n, p50, p99, max}
 */
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { summarize } from './stats.mjs';

const seconds = Number(process.argv[2] ?? 30);
const dir = mkdtempSync(join(process.argv[3] ?? tmpdir(), 'trove-load-probe-'));
writeFileSync(join(dir, 'f4k'), Buffer.alloc(4096, 1));

const server = spawn(process.execPath, [fileURLToPath(new URL('./node-static.mjs', import.meta.url)), dir], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const port = await new Promise((resolve, reject) => {
  server.once('exit', (code) => reject(new Error(`node-static exited (${code})`)));
  server.stdout.on('data', (d) => {
    const m = /listening (\d+)/.exec(String(d));
    if (m) resolve(Number(m[1]));
  });
});
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const get = () =>
  new Promise((resolve, reject) => {
    const t = performance.now();
    http
      .get({ host: '127.0.0.1', port, path: '/f4k', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t));
      })
      .on('error', reject);
  });

const until = Date.now() + seconds * 1000;
const lat = { get: [], write: [], timer: [] };
const body = Buffer.alloc(4096, 2);
await Promise.all([
  (async () => {
    while (Date.now() < until) {
      lat.get.push(await get());
      await sleep(25);
    }
  })(),
  (async () => {
    const dirHandle = await fsp.open(dir, 'r');
    for (let i = 0; Date.now() < until; i++) {
      const t = performance.now();
      const tmp = join(dir, `.tmp-${i}`);
      const fh = await fsp.open(tmp, 'wx');
      await fh.write(body);
      await fh.sync();
      await fh.close();
      await fsp.rename(tmp, join(dir, `w${i % 64}`));
      await dirHandle.sync();
      lat.write.push(performance.now() - t);
      await sleep(25);
    }
    await dirHandle.close();
  })(),
  (async () => {
    while (Date.now() < until) {
      const t = performance.now();
      await sleep(10);
      lat.timer.push(performance.now() - t - 10);
    }
  })(),
]);
agent.destroy();
server.kill();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify(Object.fromEntries(Object.entries(lat).map(([k, xs]) => [k, summarize(xs)]))));
