/**
 * Slow and unauthenticated clients cannot hold the server's resources
 * (src/http/slow-clients.ts), against the real server:
 * - an upload whose body stalls gets 408 `request_timeout` once nothing has
 *   arrived for the body idle timeout; its temp file and descriptor are gone,
 *   the namespace lock is free (a snapshot, which needs it exclusively,
 *   succeeds at once) and the connection is closed;
 * - a slow but steady upload that takes longer than the timeout succeeds;
 * - a 401, and any answer sent before its request body arrived, closes the
 *   connection even while the client keeps sending an endless body, and a
 *   client that writes its whole (finite) body before reading still gets the
 *   answer; downloads (GET /files) behave the same.
 * Waits are on conditions (a file appears, the server closes the socket);
 * the only pauses are the trickling client's own pace, well inside the timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';

const IDLE_MS = 2000;
/** A trickling client's pace: far inside IDLE_MS, so scheduling noise cannot make it look idle. */
const PACE_MS = 200;
/** Above the first 1 MiB batch of a body, with which an upload's temp file is made (the stalled upload below). */
const MAX_UPLOAD = 4 * 1024 * 1024;
const NS = 'slow';

let server: StartedServer;

beforeAll(async () => {
  server = await startServer({
    env: { TROVE_MAX_UPLOAD_BYTES: String(MAX_UPLOAD) },
    args: ['--body-idle-timeout-ms', String(IDLE_MS)],
  });
});

afterAll(async () => {
  await server?.close();
});

/** A raw connection: what it received, whether the server has ended its side (FIN) and whether it is closed. */
interface Conn {
  socket: net.Socket;
  text(): string;
  ended(): boolean;
  isClosed(): boolean;
}

function connect(): Promise<Conn> {
  return new Promise((resolve, reject) => {
    // Half-open allowed: the client keeps its side (and keeps sending) after the server's FIN, as a hostile one would.
    const socket = net.connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let closed = false;
    let ended = false;
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => (ended = true));
    // A reset once the server has given up on the body is expected; the answer came before it.
    socket.on('error', () => {});
    socket.once('close', () => (closed = true));
    socket.once('connect', () =>
      resolve({
        socket,
        text: () => Buffer.concat(chunks).toString('latin1'),
        ended: () => ended,
        isClosed: () => closed,
      }),
    );
    socket.once('error', reject);
  });
}

/** Polls until `check` holds, failing with `what` after `ms`. */
async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Waits until the server has closed the connection, failing if it keeps it for `ms`. After the server's
 * FIN, a socket it has let go of answers the next byte with a reset; one it still holds reads it.
 */
async function serverCloses(conn: Conn, ms = 15_000): Promise<void> {
  await until(
    'the server to close the connection',
    () => {
      if (conn.ended() && !conn.socket.destroyed) conn.socket.write('\r\n');
      return conn.isClosed();
    },
    ms,
  );
}

function head(method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\nHost: t\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

/** The status line, lower-cased header names and parsed JSON body of the first response in `text`. */
function parseResponse(text: string): { status: number; headers: Record<string, string>; body: unknown } {
  const end = text.indexOf('\r\n\r\n');
  expect(end).toBeGreaterThan(0);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  const body = text.slice(end + 4, end + 4 + Number(headers['content-length']));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(body) };
}

/** Keeps writing 64 KiB (as chunked-encoding chunks with `chunked`) as fast as the socket takes them, until it closes. */
function sendForever(conn: Conn, chunked = false): void {
  const data = Buffer.alloc(64 * 1024, 0x61);
  const chunk = chunked ? Buffer.concat([Buffer.from('10000\r\n'), data, Buffer.from('\r\n')]) : data;
  const pump = () => {
    while (!conn.socket.destroyed && conn.socket.write(chunk));
  };
  conn.socket.on('drain', pump);
  pump();
}

const auth = () => ({ Authorization: `Bearer ${server.runtimeKey}`, 'X-Namespace': NS });
const call = (path: string, init: RequestInit = {}) =>
  fetch(server.baseUrl + path, {
    ...init,
    headers: { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': NS, ...init.headers },
  });

/** Every regular file in the data dir but the database's: what an upload may leave behind. */
function dataFiles(dir = server.dataDir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return dataFiles(p);
    return /trove\.db(-wal|-shm|-journal)?$/.test(e.name) ? [] : [p];
  });
}

/** Files the server process holds open inside the data dir, from /proc/<pid>/fd. */
function openDataFiles(): string[] {
  const dir = `/proc/${server.proc.pid}/fd`;
  return readdirSync(dir)
    .map((fd) => {
      try {
        return readlinkSync(join(dir, fd));
      } catch {
        return '';
      }
    })
    .filter(
      (target) =>
        target.startsWith(server.dataDir + '/') &&
        !/trove\.db/.test(target) &&
        statSafe(target.replace(/ \(deleted\)$/, '')),
    );
}

function statSafe(p: string): boolean {
  try {
    return !statSync(p).isDirectory();
  } catch {
    return true; // deleted while open: still held
  }
}

describe('body idle timeout', () => {
  it('answers 408 to a stalled upload, then its lock, temp file and descriptor are free', async () => {
    // The namespace exists with one file, so the snapshot below has something to capture.
    expect((await call('/files/keep.txt', { method: 'PUT', body: 'keep' })).status).toBe(200);
    const filesBefore = dataFiles();
    const openBefore = openDataFiles();

    const conn = await connect();
    conn.socket.write(head('PUT', '/files/trickle.bin', { ...auth(), 'Content-Length': 2 * 1024 * 1024 }));
    // More than the first 1 MiB batch at once: the server creates the temp file with it.
    conn.socket.write(Buffer.alloc(1536 * 1024, 0x78));
    // A trickle well inside the timeout keeps the upload alive for longer than the timeout...
    const trickleStart = Date.now();
    let lastByte = 0;
    while (Date.now() - trickleStart < IDLE_MS * 1.5) {
      conn.socket.write('x');
      lastByte = Date.now();
      await sleep(PACE_MS);
    }
    expect(conn.text()).toBe('');
    // ...with its temp file created and held open in the server (the upload is inside the namespace lock).
    const tempFiles = dataFiles().filter((f) => !filesBefore.includes(f));
    expect(tempFiles).toHaveLength(1);
    expect(openDataFiles().filter((f) => !openBefore.includes(f))).toEqual([tempFiles[0]]);

    // Then it stops sending, and does not close its side.
    await serverCloses(conn);
    expect(Date.now() - lastByte).toBeGreaterThanOrEqual(IDLE_MS);
    const res = parseResponse(conn.text());
    expect(res.status).toBe(408);
    expect(res.headers.connection).toBe('close');
    expect(res.body).toEqual({
      detail: `The request body stalled: no data arrived for ${IDLE_MS / 1000} s`,
      code: 'request_timeout',
    });

    expect(dataFiles()).toEqual(filesBefore);
    expect(openDataFiles()).toEqual(openBefore);
    expect((await call('/files/trickle.bin')).status).toBe(404);
    // A snapshot takes the namespace lock exclusively: it would wait (and fail after the lock wait) if the
    // stalled upload still held its share.
    const snap = await call('/v1/snapshots', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'after-stall' }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(snap.status).toBe(200);
    const write = await call('/files/trickle.bin', {
      method: 'PUT',
      body: 'done',
      signal: AbortSignal.timeout(10_000),
    });
    expect(write.status).toBe(200);
    expect(await (await call('/files/trickle.bin')).text()).toBe('done');
  });

  it('answers 408 to a JSON body that stalls', async () => {
    const conn = await connect();
    const body = JSON.stringify({ path: 'stalled.txt', content: 'never finished' });
    conn.socket.write(
      head('POST', '/write', { ...auth(), 'Content-Type': 'application/json', 'Content-Length': body.length }),
    );
    conn.socket.write(body.slice(0, 10));
    await serverCloses(conn);
    const res = parseResponse(conn.text());
    expect(res.status).toBe(408);
    expect(res.body).toMatchObject({ code: 'request_timeout' });
    expect((await call('/files/stalled.txt')).status).toBe(404);
  });

  it('lets a slow but steady upload that outlasts the timeout finish', async () => {
    const chunks = Array.from({ length: Math.ceil((IDLE_MS * 2) / PACE_MS) }, (_, i) => `chunk ${i};`);
    const body = chunks.join('');
    const conn = await connect();
    const started = Date.now();
    conn.socket.write(head('PUT', '/files/steady.txt', { ...auth(), 'Content-Length': body.length }));
    for (const c of chunks) {
      await sleep(PACE_MS);
      conn.socket.write(c);
    }
    await until('the answer', () => conn.text().includes('\r\n\r\n{'));
    expect(Date.now() - started).toBeGreaterThan(IDLE_MS);
    const res = parseResponse(conn.text());
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ path: 'workspace/steady.txt', size_bytes: body.length });
    // A complete request keeps its connection.
    expect(res.headers.connection).toBe('keep-alive');
    conn.socket.destroy();
    expect(await (await call('/files/steady.txt')).text()).toBe(body);
  });
});

describe('early answers close the connection', () => {
  for (const [name, method, path, headers] of [
    ['an upload without a key', 'PUT', '/files/huge.bin', { 'X-Namespace': NS }],
    [
      'an upload with a wrong key',
      'PUT',
      '/files/huge.bin',
      { Authorization: 'Bearer trove-sk-wrong', 'X-Namespace': NS },
    ],
    ['a JSON call without a key', 'POST', '/write', { 'Content-Type': 'application/json' }],
  ] as const) {
    it(`401 to ${name} with an endless body: answered, then closed while the client keeps sending`, async () => {
      const conn = await connect();
      conn.socket.write(head(method, path, { ...headers, 'Content-Length': 100 * 1024 ** 3 }));
      sendForever(conn);
      await serverCloses(conn);
      const res = parseResponse(conn.text());
      expect(res.status).toBe(401);
      expect(res.headers.connection).toBe('close');
      expect(res.body).toMatchObject({ code: 'unauthorized' });
    });
  }

  it('413 to a declared size over the limit, with an endless body: answered, then closed', async () => {
    const conn = await connect();
    conn.socket.write(head('PUT', '/files/too-big.bin', { ...auth(), 'Content-Length': 100 * 1024 ** 3 }));
    sendForever(conn);
    await serverCloses(conn);
    const res = parseResponse(conn.text());
    expect(res.status).toBe(413);
    expect(res.headers.connection).toBe('close');
    expect(res.body).toMatchObject({ code: 'payload_too_large' });
  });

  it('413 to an endless chunked upload once it passes the limit: answered, then closed', async () => {
    const conn = await connect();
    conn.socket.write(head('PUT', '/files/too-big.bin', { ...auth(), 'Transfer-Encoding': 'chunked' }));
    sendForever(conn, true);
    await serverCloses(conn);
    const res = parseResponse(conn.text());
    expect(res.status).toBe(413);
    expect(res.headers.connection).toBe('close');
    expect(res.body).toMatchObject({ code: 'payload_too_large' });
    // The server is still there.
    expect((await call('/files/keep.txt')).status).toBe(200);
  });

  it('a client that sends its whole body before reading (as Python http.client does) still gets the 401', async () => {
    const conn = await connect();
    const body = Buffer.alloc(8 * 1024 * 1024, 0x62);
    conn.socket.write(
      head('PUT', '/files/whole.bin', {
        Authorization: 'Bearer trove-sk-wrong',
        'X-Namespace': NS,
        'Content-Length': body.length,
      }),
    );
    const written = await new Promise<Error | null | undefined>((r) => conn.socket.write(body, r));
    expect(written ?? null).toBeNull();
    await serverCloses(conn);
    expect(parseResponse(conn.text()).status).toBe(401);
  });

  it('a request sent behind a refused body is never run', async () => {
    expect((await call('/files/victim.txt', { method: 'PUT', body: 'still here' })).status).toBe(200);
    const conn = await connect();
    conn.socket.write(head('PUT', '/files/x.bin', { 'X-Namespace': NS, 'Content-Length': 1000 }) + 'y'.repeat(10));
    await until('the 401', () => conn.text().endsWith('"code":"unauthorized"}'));
    // The rest of the refused body, then a request the client had queued behind it.
    const del = JSON.stringify({ path: 'victim.txt' });
    conn.socket.write(
      'y'.repeat(990) +
        head('POST', '/delete', { ...auth(), 'Content-Type': 'application/json', 'Content-Length': del.length }) +
        del,
    );
    await serverCloses(conn);
    expect(conn.text().match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(await (await call('/files/victim.txt')).text()).toBe('still here');
  });

  it('401 to a GET /files closes the connection the client keeps open', async () => {
    const conn = await connect();
    conn.socket.write(head('GET', '/files/keep.txt', { Authorization: 'Bearer trove-sk-wrong', 'X-Namespace': NS }));
    await serverCloses(conn);
    const res = parseResponse(conn.text());
    expect(res.status).toBe(401);
    expect(res.headers.connection).toBe('close');
    expect(res.body).toEqual({ detail: 'Invalid API key', code: 'unauthorized' });
  });

  it('an authenticated GET keeps its connection', async () => {
    const conn = await connect();
    conn.socket.write(head('GET', '/files/keep.txt', auth()));
    await until('the answer', () => conn.text().endsWith('keep'));
    expect(conn.text()).toMatch(/\r\nConnection: keep-alive\r\n/);
    conn.socket.destroy();
  });
});
