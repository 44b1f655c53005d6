/**
 * GET /files/{path} on the wire: the exact response head, truncation at the
 * read cap, raw request targets a fetch client would normalise, pipelined
 * and stalling clients (sendfile meets full socket buffers), the access log,
 * the key check and rate limit per request, and shutdown with downloads and
 * idle keep-alive connections open.
 *
 * Raw requests over net sockets; every exchange ends with a `Connection:
 * close` request (or the client going away), so a response is complete when
 * the server closes the connection: nothing waits on a timer.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stallingReader } from '../helpers/stalling-reader.js';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';

const NS = 'dl';
const SMALL = randomBytes(4096);
const MAX_READ = 200 * 1024;
const CAPPED = randomBytes(300 * 1024); // over TROVE_MAX_READ_BYTES: sent truncated (with sendfile)
const LARGE = randomBytes(100 * 1024); // over 64 KiB: head, then sendfile
const MTIME = new Date('2026-01-02T03:04:05Z');

let server: StartedServer;

async function call(
  s: StartedServer,
  key: string,
  method: string,
  path: string,
  body?: Buffer | string,
  headers: Record<string, string> = {},
) {
  const res = await fetch(s.baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${key}`, 'x-namespace': NS, ...headers },
    body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

beforeAll(async () => {
  server = await startServer({ env: { TROVE_MAX_READ_BYTES: String(MAX_READ), TROVE_LOG_LEVEL: 'debug' } });
  const key = server.runtimeKey;
  await call(server, key, 'PUT', '/files/small.bin', SMALL);
  await call(server, key, 'PUT', '/files/capped.bin', CAPPED);
  await call(server, key, 'PUT', '/files/large.bin', LARGE);
  await call(server, key, 'PUT', '/files/dir/inner.txt', 'inner');
  await call(server, key, 'PUT', '/files/' + encodeURIComponent('ünï cödé.txt'), 'unicode');
  await call(server, key, 'PUT', '/files/x', 'x');
  const root = join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', NS);
  for (const f of ['small.bin', 'capped.bin', 'large.bin']) utimesSync(join(root, f), MTIME, MTIME);
  // What exec could plant: links out of the namespace, a link inside it, a FIFO.
  const outside = join(server.dataDir, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), 'SECRET');
  symlinkSync(join(outside, 'secret.txt'), join(root, 'out-file'));
  symlinkSync(outside, join(root, 'out-dir'));
  symlinkSync('small.bin', join(root, 'in-link'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
});

afterAll(async () => {
  await server?.close();
});

/** A GET with the usual headers; `extra` lines go before the blank line. */
const get = (path: string, extra = '', auth = `Authorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\n`) =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${auth}${extra}\r\n`;
const closing = get('/files/x', 'Connection: close\r\n');
const sub = (text: string, vars: Record<string, string>) =>
  text.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? `{${k}}`);
const vars = () => ({ KEY: server.runtimeKey });

/** Sends `script` at once, returns everything received until the server closes the connection. */
function exchange(port: number, script: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.from(script, 'latin1')));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Splits raw pipelined responses into status, head and body (Content-Length framed). */
function responses(raw: Buffer): Array<{ status: number; head: string; body: Buffer }> {
  const out: Array<{ status: number; head: string; body: Buffer }> = [];
  let pos = 0;
  while (pos < raw.length) {
    const end = raw.indexOf('\r\n\r\n', pos);
    if (end < 0) throw new Error(`an incomplete head at ${pos}: ${raw.toString('latin1', pos, pos + 200)}`);
    const head = raw.toString('latin1', pos, end);
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    out.push({ status: Number(head.split(' ')[1]), head, body: raw.subarray(end + 4, end + 4 + length) });
    pos = end + 4 + length;
  }
  return out;
}

describe('GET /files/{path} on the wire', () => {
  it('answers with the file and exactly these headers; over the read cap, truncated with X-Trove-Truncated/X-Trove-Size', async () => {
    const raw = await exchange(server.port, sub(get('/files/small.bin') + get('/files/capped.bin') + closing, vars()));
    const [small, capped, last] = responses(raw);
    expect(small!.head).toMatch(
      /^HTTP\/1\.1 200 OK\r\nx-request-id: req-\w+\r\ncontent-type: application\/octet-stream\r\ncontent-length: 4096\r\netag: "[0-9a-f]+-1000-[0-9a-f]+\.[0-9a-f]+"\r\nlast-modified: Fri, 02 Jan 2026 03:04:05 GMT\r\nx-trove-size: 4096\r\nDate: .+ GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=\d+$/,
    );
    expect(small!.body.equals(SMALL)).toBe(true);
    expect(capped!.head).toMatch(
      new RegExp(
        `^HTTP/1\\.1 200 OK\\r\\nx-request-id: req-\\w+\\r\\ncontent-type: application/octet-stream\\r\\ncontent-length: ${MAX_READ}\\r\\netag: "[0-9a-f]+-${CAPPED.length.toString(16)}-[0-9a-f]+\\.[0-9a-f]+"\\r\\nlast-modified: Fri, 02 Jan 2026 03:04:05 GMT\\r\\nx-trove-size: ${CAPPED.length}\\r\\nx-trove-truncated: 1\\r\\nDate: .+ GMT\\r\\nConnection: keep-alive\\r\\nKeep-Alive: timeout=\\d+$`,
      ),
    );
    expect(capped!.body.equals(CAPPED.subarray(0, MAX_READ))).toBe(true);
    expect(last!.head).toMatch(/\r\nConnection: close(\r\n|$)/);
    expect(last!.body.toString()).toBe('x');
  });

  it.each([
    ['/files/in-link', 200, null],
    ['/files/%73mall.bin', 200, null],
    ['/files//small.bin', 200, null],
    ['/files/workspace/small.bin', 200, null],
    ['/files/small.bin?download=1&x=%zz', 200, null],
    ['/files/' + encodeURIComponent('ünï cödé.txt'), 200, null],
    ['/files/out-file', 400, 'path_outside_namespace'],
    ['/files/out-dir/secret.txt', 400, 'path_outside_namespace'],
    ['/files/dir/../small.bin', 400, 'path_invalid'],
    ['/files/%2e%2e/%2e%2e/etc/passwd', 400, 'path_invalid'],
    ['/files/dir%2f..%2f..%2fx', 400, 'path_invalid'],
    ['/files/fifo', 400, 'bad_request'],
    ['/files/dir', 400, 'path_is_directory'],
    ['/files/', 400, 'path_is_directory'],
    ['/files/small.bin%00', 400, 'path_invalid'],
    ['/files/%zz', 400, 'bad_request'],
    ['/files/%c3', 400, 'bad_request'],
    ['/files/nope', 404, 'path_not_found'],
  ])('GET %s → %i %s', async (target, status, code) => {
    const [res] = responses(await exchange(server.port, sub(get(target, 'Connection: close\r\n'), vars())));
    expect(res!.status).toBe(status);
    if (code === null) expect(res!.body.toString('latin1')).toMatch(/^(x|unicode|[\s\S]{4096})$/);
    else {
      expect(res!.head).toMatch(/\r\nx-request-id: req-\w+\r\ncontent-type: application\/json; charset=utf-8\r\n/);
      const body = JSON.parse(res!.body.toString()) as { detail: string; code: string };
      expect(body.code).toBe(code);
      expect(body.detail).toMatch(/\S/);
    }
    expect(res!.body.includes('SECRET')).toBe(false);
  });

  it('HEAD: the headers of the download, no body', async () => {
    const raw = await exchange(
      server.port,
      sub(
        get('/files/small.bin').replace('GET', 'HEAD') + get('/files/large.bin').replace('GET', 'HEAD') + closing,
        vars(),
      ),
    );
    const text = raw.toString('latin1');
    const heads = text.split('\r\n\r\n');
    expect(heads[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*content-length: 4096\r\n/);
    expect(heads[1]).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*content-length: 102400\r\n/);
    expect(heads[2]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(heads[3]).toBe('x');
  });

  it('logs one access-log line per download, with the response request id', async () => {
    const before = server.output().length;
    const urls = ['/files/small.bin', '/files/in-link', '/files/large.bin', '/files/nope'];
    const raw = await exchange(
      server.port,
      sub(
        urls
          .slice(0, -1)
          .map((u) => get(u))
          .join('') + get(urls.at(-1)!, 'Connection: close\r\n'),
        vars(),
      ),
    );
    const ids = [...raw.toString('latin1').matchAll(/^x-request-id: (\S+)\r$/gm)].map((m) => m[1]!);
    expect(ids).toHaveLength(urls.length);
    const completed = () =>
      server
        .output()
        .slice(before)
        .split('\n')
        // Whole JSON lines only: the last one may still be arriving.
        .filter((l) => l.startsWith('{') && l.endsWith('}'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.msg === 'request completed');
    // The server's stdout reaches this process on its own schedule (and the access line comes after the answer).
    await expect.poll(() => ids.every((id) => completed().some((l) => l.reqId === id)), { timeout: 10_000 }).toBe(true);
    const lines = completed();
    for (const [i, id] of ids.entries()) {
      const done = lines.filter((l) => l.reqId === id);
      expect(done).toHaveLength(1);
      expect(done[0]).toMatchObject({ level: 30, method: 'GET', url: urls[i], statusCode: i === 3 ? 404 : 200 });
      expect(typeof done[0]!.ms).toBe('number');
    }
  });

  it('closes the connection after a Connection: close answer, even when the client keeps its side open', async () => {
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      socket.on('connect', () => socket.write(sub(get('/files/small.bin', 'Connection: close\r\n'), vars())));
      socket.resume();
      // The answer and the server's FIN have arrived; keep writing until the server refuses (RST), for up to 10 s.
      socket.on('end', async () => {
        for (let i = 0; i < 200 && !socket.destroyed; i++) {
          socket.write('x');
          await new Promise((r) => setTimeout(r, 50));
        }
        resolve('still open');
      });
    });
    expect(refused).toMatch(/^(EPIPE|ECONNRESET)$/);
  });

  it('refuses a revoked key on the very next request (the key cache is emptied by the revocation)', async () => {
    const created = await call(
      server,
      server.adminKey,
      'POST',
      `/v1/workspaces/${server.workspaceId}/keys`,
      JSON.stringify({ name: 'soon-revoked' }),
      {
        'content-type': 'application/json',
      },
    );
    const script = sub(
      get('/files/small.bin', '', `Authorization: Bearer ${created.api_key}\r\nX-Namespace: ${NS}\r\n`) + closing,
      vars(),
    );
    expect((await exchange(server.port, script)).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK/);
    await call(server, server.adminKey, 'DELETE', `/v1/workspaces/${server.workspaceId}/keys/${created.key_id}`);
    expect((await exchange(server.port, script)).toString('latin1')).toMatch(/^HTTP\/1\.1 401 Unauthorized/);
  });

  it('keeps every byte in order for a client that pipelines and stops reading', async () => {
    const n = 400;
    const script = sub(
      get('/files/small.bin').repeat(n - 1) + get('/files/small.bin', 'Connection: close\r\n'),
      vars(),
    );
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = net.connect(server.port, '127.0.0.1', () => {
        socket.write(script);
        // Not reading: ~1.7 MB of answers fill the socket buffers; node:http stops reading until the client catches up.
        socket.pause();
        setTimeout(() => socket.resume(), 500);
      });
      socket.on('data', (d) => chunks.push(d));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    const all = responses(raw);
    expect(all).toHaveLength(n);
    for (const r of all) {
      expect(r.status).toBe(200);
      expect(r.body.equals(SMALL)).toBe(true);
    }
  });
});

describe('GET /files/{path}: large files', () => {
  /** A server of its own (no read cap) with big.bin of `size` random bytes and small.bin; closed after the test. */
  async function serverWithBigFile(size: number) {
    const s = await startServer();
    onTestFinished(() => s.close());
    const big = randomBytes(size);
    await call(s, s.runtimeKey, 'PUT', '/files/big.bin', big);
    await call(s, s.runtimeKey, 'PUT', '/files/small.bin', SMALL);
    return { s, big };
  }

  it('sends every byte of a large file in order to a client that stalls, then reads on', async () => {
    const { s, big } = await serverWithBigFile(24 * 1024 * 1024);
    const script = sub(get('/files/big.bin') + get('/files/small.bin', 'Connection: close\r\n'), { KEY: s.runtimeKey });
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const socket = net.connect(s.port, '127.0.0.1', () => socket.write(script));
      // Three pauses while the body is being sent: the socket buffers fill, sendfile meets EAGAIN.
      const collected = stallingReader(socket, { times: 3, every: 6 * 1024 * 1024, ms: 300 });
      socket.on('error', reject);
      socket.on('close', () => resolve(collected()));
    });
    const [first, second] = responses(raw);
    expect(first!.head).toContain(`\r\ncontent-length: ${big.length}\r\n`);
    expect(first!.body.equals(big)).toBe(true);
    expect(second!.status).toBe(200);
    expect(second!.body.equals(SMALL)).toBe(true);
  });

  it('answers requests that arrive piecemeal during a stalled large download, in order', async () => {
    const { s, big } = await serverWithBigFile(16 * 1024 * 1024);
    const v = { KEY: s.runtimeKey };
    const n = 40;
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = net.connect(s.port, '127.0.0.1', async () => {
        socket.write(sub(get('/files/big.bin'), v));
        socket.pause(); // the download stalls while the rest arrives
        for (let i = 0; i < n; i++) {
          const req = sub(i === n - 1 ? get('/files/small.bin', 'Connection: close\r\n') : get('/files/small.bin'), v);
          // Each request in three writes.
          for (const part of [req.slice(0, 10), req.slice(10, 40), req.slice(40)]) {
            socket.write(part);
            await new Promise((r) => setTimeout(r, 2));
          }
        }
        socket.resume();
      });
      socket.on('data', (d) => chunks.push(d));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    const [first, ...rest] = responses(raw);
    expect(first!.body.equals(big)).toBe(true);
    expect(rest).toHaveLength(n);
    for (const r of rest) {
      expect(r.status).toBe(200);
      expect(r.body.equals(SMALL)).toBe(true);
    }
  });

  it('does not let a download that never finishes hold up a shutdown past its grace period', async () => {
    const s = await startServer();
    try {
      await call(s, s.runtimeKey, 'PUT', '/files/big.bin', randomBytes(32 * 1024 * 1024));
      const socket = net.connect(s.port, '127.0.0.1');
      socket.on('error', () => {});
      let got = 0;
      socket.on('data', (d) => {
        got += d.length;
        socket.pause(); // and never read again
      });
      socket.write(sub(get('/files/big.bin'), { KEY: s.runtimeKey }));
      await expect.poll(() => got, { timeout: 10_000 }).toBeGreaterThan(0);
      const started = Date.now();
      await s.stop();
      socket.destroy();
      // main.ts cuts every connection after its 10 s grace period; without that the stalled download would
      // hold the server until main.ts gives up at 15 s and exits with 1.
      expect(Date.now() - started).toBeLessThan(14_000);
      expect(s.proc.exitCode).toBe(0);
    } finally {
      await s.close();
    }
  });
});

describe('GET /files/{path}: rate limits and shutdown', () => {
  it('counts downloads against the per-key rate limit, errors included, once each', async () => {
    const s = await startServer({ env: { TROVE_RATE_LIMIT_PER_MINUTE: '3' } });
    try {
      await call(s, s.runtimeKey, 'PUT', '/files/x', 'x'); // 1 of 3
      const v = { KEY: s.runtimeKey };
      // 2 and 3 of 3 (a 404 counts like any answer), then refused. One request at a time: pipelined, node:http
      // answers in order but the keys may be checked in another order (with PostgreSQL the lookups finish when
      // they finish), so which one was counted third would be luck.
      const all = [];
      for (const path of ['/files/x', '/files/nope', '/files/x', '/files/x']) {
        all.push(...responses(await exchange(s.port, sub(get(path, 'Connection: close\r\n'), v))));
      }
      expect(all.map((r) => r.status)).toEqual([200, 404, 429, 429]);
      expect(all[2]!.head).toMatch(/\r\nretry-after: \d+(\r\n|$)/);
      expect(JSON.parse(all[2]!.body.toString()).code).toBe('rate_limited');
    } finally {
      await s.close();
    }
  });

  it('does not keep the server up for an idle keep-alive connection', async () => {
    const s = await startServer();
    try {
      await call(s, s.runtimeKey, 'PUT', '/files/x', 'x');
      const socket = net.connect(s.port, '127.0.0.1');
      let received = '';
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.on('data', (d) => (received += d.toString('latin1')));
      socket.on('error', () => {});
      socket.write(sub(get('/files/x'), { KEY: s.runtimeKey }));
      await expect.poll(() => received.includes('\r\n\r\nx'), { timeout: 10_000 }).toBe(true);
      const started = Date.now();
      await s.stop();
      await closed;
      // The shutdown grace for requests in flight is 10 s; an idle connection must not wait for it.
      expect(Date.now() - started).toBeLessThan(8000);
      expect(s.proc.exitCode).toBe(0);
    } finally {
      await s.close();
    }
  });
});
