/**
 * A 1.5 GiB upload and download stream through the server: checksums match
 * and the server's resident memory grows by less than 64 MiB.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';

const SIZE = 1.5 * 1024 ** 3;
const CHUNK = 1024 * 1024;
let server: StartedServer;

afterAll(async () => {
  await server?.close();
});

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

const BASE = randomBytes(CHUNK);
/** Chunk i: random bytes stamped with its index, so misordered or repeated chunks change the checksum. */
function chunk(i: number): Buffer {
  const b = Buffer.from(BASE);
  b.writeUInt32LE(i, 0);
  b.writeUInt32LE(i, CHUNK - 4);
  return b;
}

describe('large files', () => {
  it('round-trips 1.5 GiB streamed, with bounded server memory', async () => {
    server = await startServer({ env: { TROVE_MAX_READ_BYTES: String(2 * 1024 ** 3) } });
    const pid = server.proc.pid!;
    const h = { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': 'big' };
    // Warm up so the baseline includes the JIT and pools.
    await fetch(`${server.baseUrl}/files/warm.bin`, { method: 'PUT', headers: h, body: new Uint8Array(chunk(0)) });
    await (await fetch(`${server.baseUrl}/files/warm.bin`, { headers: h })).arrayBuffer();
    const baseline = rssBytes(pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 25);

    const sent = createHash('sha256');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${server.baseUrl}/files/huge.bin`,
        { method: 'PUT', headers: { ...h, 'content-length': String(SIZE) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        },
      );
      req.on('error', reject);
      let i = 0;
      const pump = () => {
        while (i < SIZE / CHUNK) {
          const c = chunk(i++);
          sent.update(c);
          if (!req.write(c)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(200);

    const got = createHash('sha256');
    let received = 0;
    await new Promise<void>((resolve, reject) => {
      request(`${server.baseUrl}/files/huge.bin`, { headers: h }, (res) => {
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-length']).toBe(String(SIZE));
        res.on('data', (d: Buffer) => {
          received += d.length;
          got.update(d);
        });
        res.on('end', resolve);
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    clearInterval(sampler);
    expect(received).toBe(SIZE);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
    expect(peak - baseline).toBeLessThan(64 * 1024 * 1024);
  }, 300_000);

  it('keeps every byte of bodies that end on, just before or just after a write batch (1 MiB)', async () => {
    server ??= await startServer({ env: { TROVE_MAX_READ_BYTES: String(2 * 1024 ** 3) } });
    const h = { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': 'batches' };
    const MiB = 1024 * 1024;
    for (const size of [MiB - 1, MiB, MiB + 1, 2 * MiB, 2 * MiB + 65536 + 7, 3 * MiB]) {
      const body = randomBytes(size);
      // Streamed in 64 KiB pieces (a socket's chunks), not one buffer.
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          `${server.baseUrl}/files/b-${size}.bin`,
          { method: 'PUT', headers: { ...h, 'content-length': String(size) } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', reject);
        for (let at = 0; at < size; at += 65536) req.write(body.subarray(at, at + 65536));
        req.end();
      });
      expect(status).toBe(200);
      const got = Buffer.from(
        await (await fetch(`${server.baseUrl}/files/b-${size}.bin`, { headers: h })).arrayBuffer(),
      );
      expect(got.length).toBe(size);
      expect(got.equals(body)).toBe(true);
    }
  }, 120_000);
});
