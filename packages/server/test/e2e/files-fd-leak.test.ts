/**
 * Downloads release their file descriptor as soon as the response is over:
 * complete GETs, HEADs, error answers and clients that hang up mid-body.
 * Uploads and content reads do too, including uploads that fail or whose
 * client disappears half-way (the temp file is removed as well).
 * Counted in /proc/<server pid>/fd, so a descriptor left for the garbage
 * collector to close shows up however the request ended.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
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

/** Sends the first `send` bytes of a `declared`-byte upload, waits for `ready()`, then drops the connection. */
function abortMidUpload(path: string, declared: number, send: number, ready: () => Promise<void>): Promise<void> {
  const url = new URL(server.baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      path,
      method: 'PUT',
      headers: { ...h, 'content-length': String(declared) },
      agent: false,
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET' && !req.destroyed) reject(err);
    });
    req.write(randomBytes(send));
    ready().then(() => {
      req.destroy();
      resolve();
    }, reject);
  });
}

/** The namespace directory on disk (the server's layout: data/workspaces/<id>/namespaces/<ns>). */
function nsDir(): string {
  return join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', 'fds');
}

/** Upload temp files: in the server's private scratch directory (data/tmp/<host>.<pid>), never in the tree. */
function tempFiles(): string[] {
  const base = join(server.dataDir, 'tmp');
  if (!existsSync(base)) return [];
  return readdirSync(base).flatMap((d) => readdirSync(join(base, d)).filter((n) => n.startsWith('upload-')));
}

/** Polls (bounded) until `check` is true; the caller asserts on the outcome. */
async function until(check: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (check()) return true;
    await sleep(25);
  }
  return check();
}

beforeAll(async () => {
  server = await startServer();
  h = { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': 'fds' };
  for (const [name, body] of [
    ['big.bin', big],
    ['small.bin', small],
    ['dir/inner.txt', Buffer.from('x')],
  ] as const) {
    const res = await fetch(`${server.baseUrl}/files/${name}`, {
      method: 'PUT',
      headers: h,
      body: new Uint8Array(body),
    });
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
      expect(
        Buffer.from(await (await fetch(`${server.baseUrl}/files/small.bin`, { headers: h })).arrayBuffer()).equals(
          small,
        ),
      ).toBe(true);
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
    expect(after, `open fds: ${baseline} before, ${after} after ${rounds + 90} downloads`).toBeLessThanOrEqual(
      baseline + 8,
    );

    // The server still serves the same bytes, and Node never had to close a FileHandle for us.
    const again = Buffer.from(await (await fetch(`${server.baseUrl}/files/big.bin`, { headers: h })).arrayBuffer());
    expect(again.equals(big)).toBe(true);
    expect(server.output()).not.toMatch(/Closing file descriptor \d+ on garbage collection/);
  });
});

describe('upload and content-read file descriptors', () => {
  it('are closed after complete, refused, short and abandoned uploads and after content reads', async () => {
    const put = (path: string, body: Buffer) =>
      fetch(`${server.baseUrl}/files/${path}`, { method: 'PUT', headers: h, body: new Uint8Array(body) });
    for (let i = 0; i < 5; i++) expect((await put('up/warm.bin', small)).status).toBe(200);
    const baseline = await settleFds(Infinity);

    const rounds = 60;
    for (let i = 0; i < rounds; i++) {
      const body = i % 2 ? small : randomBytes(1536 * 1024); // one write batch, and more than one
      expect((await put(`up/f-${i % 8}.bin`, body)).status).toBe(200);
      const back = Buffer.from(
        await (await fetch(`${server.baseUrl}/files/up/f-${i % 8}.bin`, { headers: h })).arrayBuffer(),
      );
      expect(back.equals(body)).toBe(true);
      const content = await fetch(`${server.baseUrl}/v1/files/content?path=up/f-${i % 8}.bin`, { headers: h });
      expect(content.status).toBe(200);
      await content.arrayBuffer();
    }
    for (let i = 0; i < 20; i++) {
      // Refused before any temp file exists: the target is a directory, or its parent is a file.
      const onDir = await put('dir', small);
      expect(onDir.status).toBe(400);
      await onDir.arrayBuffer();
      const underFile = await put('small.bin/x', small);
      expect(underFile.status).toBe(400);
      await underFile.arrayBuffer();
      const missing = await fetch(`${server.baseUrl}/v1/files/content?path=nope-${i}`, { headers: h });
      expect(missing.status).toBe(404);
      await missing.arrayBuffer();
    }
    // Clients that vanish half-way: the temp file exists (its descriptor is open) when the
    // connection drops, so the failure path must close it and remove the file. It is made with the body's
    // first full batch (1 MiB), so more than that is sent.
    const dir = join(nsDir(), 'up');
    for (let i = 0; i < 20; i++) {
      await abortMidUpload(`/files/up/abandoned-${i}.bin`, 4 * MiB, 1536 * 1024, async () => {
        expect(await until(() => tempFiles().length > 0), 'the upload reached the temp file').toBe(true);
      });
      expect(await until(() => tempFiles().length === 0), 'the temp file of an abandoned upload is removed').toBe(true);
    }
    expect(readdirSync(dir).filter((n) => n.startsWith('abandoned-'))).toEqual([]);

    const after = await settleFds(baseline + 8);
    expect(after, `open fds: ${baseline} before, ${after} after ${rounds * 3 + 80} requests`).toBeLessThanOrEqual(
      baseline + 8,
    );
    expect(server.output()).not.toMatch(/Closing file descriptor \d+ on garbage collection/);
  });
});
