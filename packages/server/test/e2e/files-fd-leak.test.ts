/**
 * Downloads release their file descriptor as soon as the response is over:
 * complete GETs, HEADs, error answers and clients that hang up mid-body.
 * Counted in /proc/<server pid>/fd, so a descriptor left for the garbage
 * collector to close shows up however the request ended.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';

const MiB = 1024 * 1024;
let server: StartedServer;
let h: Record<string, string>;
const big = randomBytes(4 * MiB);
const small = randomBytes(4096);

function openFds(): number {
  return readdirSync(`/proc/${server.proc.pid}/fd`).length;
}

/** Waits (bounded) for the count to settle at or below `limit`; returns the last count. */
async function settleFds(limit: number): Promise<number> {
  let n = openFds();
  for (let i = 0; i < 100 && n > limit; i++) {
    await sleep(50);
    n = openFds();
  }
  return n;
}

/** Starts a download, reads its first chunk, then drops the connection. */
function abortMidBody(path: string): Promise<number> {
  const url = new URL(server.baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers: h, agent: false }, (res) => {
      res.once('data', (chunk: Buffer) => {
        req.destroy();
        resolve(chunk.length);
      });
      res.once('error', () => {});
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET' && !req.destroyed) reject(err);
    });
    req.end();
  });
}

beforeAll(async () => {
  server = await startServer();
  h = { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': 'fds' };
  for (const [name, body] of [
    ['big.bin', big],
    ['small.bin', small],
    ['dir/inner.txt', Buffer.from('x')],
  ] as const) {
    const res = await fetch(`${server.baseUrl}/files/${name}`, { method: 'PUT', headers: h, body });
    expect(res.status).toBe(200);
  }
});

afterAll(async () => {
  await server?.close();
});

describe('download file descriptors', () => {
  it('are closed after complete, HEAD, failed and aborted downloads', async () => {
    // Warm-up: pools, sockets and lazily opened files exist before the baseline.
    for (let i = 0; i < 5; i++) {
      expect(Buffer.from(await (await fetch(`${server.baseUrl}/files/small.bin`, { headers: h })).arrayBuffer()).equals(small)).toBe(true);
    }
    const baseline = await settleFds(Infinity);

    const rounds = 150;
    for (let i = 0; i < rounds; i++) {
      const got = Buffer.from(await (await fetch(`${server.baseUrl}/files/small.bin`, { headers: h })).arrayBuffer());
      expect(got.equals(small)).toBe(true);
    }
    for (let i = 0; i < 20; i++) {
      const got = Buffer.from(await (await fetch(`${server.baseUrl}/files/big.bin`, { headers: h })).arrayBuffer());
      expect(got.length).toBe(big.length);
    }
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${server.baseUrl}/files/big.bin`, { method: 'HEAD', headers: h });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    for (let i = 0; i < 20; i++) {
      const dir = await fetch(`${server.baseUrl}/files/dir`, { headers: h });
      expect(dir.status).toBe(400);
      await dir.arrayBuffer();
      const missing = await fetch(`${server.baseUrl}/files/nope-${i}.bin`, { headers: h });
      expect(missing.status).toBe(404);
      await missing.arrayBuffer();
    }
    for (let i = 0; i < 30; i++) {
      expect(await abortMidBody('/files/big.bin')).toBeGreaterThan(0);
    }

    // 240 downloads went through; a per-request leak would leave ~240 extra
    // descriptors. Sockets of the aborted requests may take a moment to close.
    const after = await settleFds(baseline + 8);
    expect(after, `open fds: ${baseline} before, ${after} after ${rounds + 90} downloads`).toBeLessThanOrEqual(baseline + 8);

    // The server still serves the same bytes, and Node never had to close a FileHandle for us.
    const again = Buffer.from(await (await fetch(`${server.baseUrl}/files/big.bin`, { headers: h })).arrayBuffer());
    expect(again.equals(big)).toBe(true);
    expect(server.output()).not.toMatch(/Closing file descriptor \d+ on garbage collection/);
  });
});
