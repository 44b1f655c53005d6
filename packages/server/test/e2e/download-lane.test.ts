/**
 * The download lane (src/plugins/download-lane.ts) must be invisible: for any
 * bytes a client sends, a server with the lane answers exactly what a server
 * without it (TROVE_DOWNLOAD_LANE=0, node:http + Fastify only) answers.
 *
 * Two servers with the same keys, files and mtimes get the same raw request
 * scripts (well-formed, hostile and malformed; pipelined, mixed with other
 * methods, split across writes) and their raw responses must match byte for
 * byte once the date and request id are masked. Every script ends with a
 * `Connection: close` request (or breaks the connection), so a response is
 * complete when the server closes the connection: nothing waits on a timer.
 *
 * Then what only the lane does: it really answers (no Fastify "incoming
 * request" line), its log lines, a revoked key stops working at once, idle
 * connections do not hold up a shutdown, and a client that stops reading
 * gets every byte in order.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseHead } from '../../src/plugins/download-lane.js';
import { stallingReader } from '../helpers/stalling-reader.js';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';

const NS = 'lane';
const SMALL = randomBytes(4096);
const MAX_READ = 200 * 1024;
const CAPPED = randomBytes(300 * 1024); // over TROVE_MAX_READ_BYTES: sent truncated (with sendfile)
const LARGE = randomBytes(100 * 1024); // over 64 KiB: head, then sendfile
const MTIME = new Date('2026-01-02T03:04:05Z');

interface Side {
  server: StartedServer;
  /** Substitutions for the scripts: the keys differ between the two servers. */
  vars: Record<string, string>;
}

let lane: Side;
let plain: Side;

async function call(s: StartedServer, key: string, method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}) {
  const res = await fetch(s.baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${key}`, 'x-namespace': NS, ...headers },
    body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function prepare(env: Record<string, string>): Promise<Side> {
  const server = await startServer({
    env: { TROVE_MAX_READ_BYTES: String(MAX_READ), TROVE_LOG_LEVEL: 'debug', ...env },
  });
  const key = server.runtimeKey;
  await call(server, key, 'PUT', '/files/small.bin', SMALL);
  await call(server, key, 'PUT', '/files/capped.bin', CAPPED);
  await call(server, key, 'PUT', '/files/large.bin', LARGE);
  await call(server, key, 'PUT', '/files/dir/inner.txt', 'inner');
  await call(server, key, 'PUT', '/files/' + encodeURIComponent('ünï cödé.txt'), 'unicode');
  await call(server, key, 'PUT', '/files/x', 'x');
  const root = join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', NS);
  for (const f of ['small.bin', 'capped.bin', 'large.bin', 'dir/inner.txt', 'ünï cödé.txt', 'x']) utimesSync(join(root, f), MTIME, MTIME);
  // What exec could plant: links out of the namespace, a link inside it, a FIFO.
  const outside = join(server.dataDir, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), 'SECRET');
  symlinkSync(join(outside, 'secret.txt'), join(root, 'out-file'));
  symlinkSync(outside, join(root, 'out-dir'));
  symlinkSync('small.bin', join(root, 'in-link'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  const locked = await call(server, server.adminKey, 'POST', `/v1/workspaces/${server.workspaceId}/keys`, JSON.stringify({ name: 'locked', namespace: 'other' }), {
    'content-type': 'application/json',
  });
  const vars: Record<string, string> = { KEY: key, ADMIN: server.adminKey, LOCKED: locked.api_key };
  vars.CLOSING_LENGTH = String(sub(closing, vars).length);
  return { server, vars };
}

beforeAll(async () => {
  [lane, plain] = await Promise.all([prepare({}), prepare({ TROVE_DOWNLOAD_LANE: '0' })]);
});

afterAll(async () => {
  await Promise.all([lane?.server.close(), plain?.server.close()]);
});

/**
 * A part of a script: bytes, sent after a short pause, or once `afterResponses` responses have begun to
 * arrive; or the client's FIN (it has nothing more to send).
 */
type Part = string | { text: string; afterResponses: number } | { fin: true; afterResponses: number };

/** Sends the parts of a script, returns everything received until the server closes the connection. */
function exchange(port: number, parts: Part[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let wake = () => {};
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('the server did not close the connection within 20 s:\n' + Buffer.concat(chunks).toString('latin1')));
    }, 20_000);
    socket.on('data', (d) => {
      chunks.push(d);
      received = (Buffer.concat(chunks).toString('latin1').match(/HTTP\/1\.1 \d{3} /g) ?? []).length;
      wake();
    });
    socket.on('error', () => {}); // a reset after a 400 is an answer too
    socket.on('close', () => {
      clearTimeout(timer);
      wake();
      resolve(Buffer.concat(chunks));
    });
    socket.on('connect', async () => {
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        if (typeof part !== 'string' && 'fin' in part) {
          while (received < part.afterResponses && !socket.destroyed) await new Promise<void>((r) => (wake = r));
          socket.end();
          continue;
        }
        if (typeof part === 'string') {
          if (i > 0) await new Promise((r) => setTimeout(r, 50));
        } else {
          while (received < part.afterResponses && !socket.destroyed) await new Promise<void>((r) => (wake = r));
        }
        if (!socket.destroyed) socket.write(Buffer.from(typeof part === 'string' ? part : part.text, 'latin1'));
      }
    });
  });
}

const mask = (raw: Buffer) =>
  raw
    .toString('latin1')
    .replace(/^x-request-id: .*$/gm, 'x-request-id: *')
    .replace(/^Date: .*$/gm, 'Date: *')
    // The two servers hold the same files in different inodes: the ETags' shape must match, not their numbers.
    .replace(/^etag: "[0-9a-f]+-([0-9a-f]+)-[0-9a-f]+\.[0-9a-f]+"\r$/gm, 'etag: "*-$1-*"\r');


const sub = (text: string, vars: Record<string, string>) => text.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? `{${k}}`);

/** A GET with the usual headers; `extra` lines go before the blank line. */
const get = (path: string, extra = '', auth = 'Authorization: Bearer {KEY}\r\nX-Namespace: ' + NS + '\r\n') =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${auth}${extra}\r\n`;
const closing = get('/files/x', 'Connection: close\r\n');

/**
 * Scripts; `{KEY}`, `{ADMIN}` and `{LOCKED}` become each server's keys.
 *
 * Bytes that follow a request in the same read and make node:http fail (garbage, or anything after a
 * `Connection: close` request) are sent once the response before them has arrived: node:http parses a
 * whole read before answering any of it, so it answers only the 400; the lane answers what it had parsed,
 * then hands the rest over, exactly as node:http behaves when those bytes come in a later read.
 */
const scripts: Array<[name: string, parts: Part[]]> = [
  ['a plain GET, twice pipelined', [get('/files/small.bin') + get('/files/small.bin') + closing]],
  ['Connection: close on the first request', [get('/files/small.bin', 'Connection: close\r\n'), { text: get('/files/small.bin'), afterResponses: 1 }]],
  ['garbage after a request', [get('/files/small.bin'), { text: 'GARBAGE\r\n\r\n', afterResponses: 1 }]],
  ['Connection: keep-alive, any case', [get('/files/small.bin', 'connection: Keep-Alive\r\n') + closing]],
  ['a 404, then lane-eligible requests on the same connection', [get('/files/nope') + get('/files/small.bin') + closing]],
  // The GET waits for the PUT's answer: node:http would run the two pipelined requests concurrently.
  ['PUT first, then GETs', [`PUT /files/put.txt HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\nContent-Length: 3\r\n\r\nabc`, { text: get('/files/put.txt') + closing, afterResponses: 1 }]],
  ['HEAD', [`HEAD /files/small.bin HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\n\r\n` + closing]],
  ['truncated at TROVE_MAX_READ_BYTES', [get('/files/capped.bin') + closing]],
  ['a large file (sendfile), then a small one', [get('/files/large.bin') + get('/files/small.bin') + closing]],
  ['a directory', [get('/files/dir') + closing]],
  ['the root', [get('/files/') + closing]],
  ['a FIFO', [get('/files/fifo') + closing]],
  ['a symlink to a file outside', [get('/files/out-file') + closing]],
  ['through a symlinked directory outside', [get('/files/out-dir/secret.txt') + closing]],
  ['a symlink inside', [get('/files/in-link') + closing]],
  ['path forms', [get('/files/workspace/small.bin') + get('/files//small.bin') + get('/files/./small.bin') + get('/files/dir/../small.bin') + get('/files/%73mall.bin') + closing]],
  ['unicode name', [get('/files/' + encodeURIComponent('ünï cödé.txt')) + closing]],
  ['.. encoded', [get('/files/%2e%2e/%2e%2e/etc/passwd') + get('/files/dir%2f..%2f..%2fx') + closing]],
  ['NUL and bad percent-encoding', [get('/files/small.bin%00') + get('/files/%zz') + get('/files/%c3') + closing]],
  ['query string and fragment', [get('/files/small.bin?download=1&x=%zz') + get('/files/small.bin#frag') + closing]],
  ['odd but visible characters', [get('/files/a"b{c}|d^e`f<g>h\\i') + closing]],
  ['a long path', [get('/files/' + 'a'.repeat(300) + '/' + 'b'.repeat(300)) + get('/files/' + 'c'.repeat(5000)) + closing]],
  ['no key, a wrong key, a malformed header', [get('/files/small.bin', '', `X-Namespace: ${NS}\r\n`) + get('/files/small.bin', '', `Authorization: Bearer trove-sk-wrong\r\nX-Namespace: ${NS}\r\n`) + get('/files/small.bin', '', `Authorization: Basic abc\r\nX-Namespace: ${NS}\r\n`) + closing]],
  ['the admin key', [get('/files/small.bin', '', `Authorization: Bearer {ADMIN}\r\nX-Namespace: ${NS}\r\n`) + closing]],
  ['a key locked to another namespace', [get('/files/small.bin', '', `Authorization: Bearer {LOCKED}\r\nX-Namespace: ${NS}\r\n`) + get('/files/small.bin', '', `Authorization: Bearer {LOCKED}\r\n`) + closing]],
  ['no X-Namespace, an invalid one, an empty one', [get('/files/small.bin', '', 'Authorization: Bearer {KEY}\r\n') + get('/files/small.bin', '', 'Authorization: Bearer {KEY}\r\nX-Namespace: ../x\r\n') + get('/files/small.bin', '', 'Authorization: Bearer {KEY}\r\nX-Namespace: \r\n') + closing]],
  ['duplicate Authorization (valid first, then invalid first)', [get('/files/small.bin', 'Authorization: Bearer trove-sk-wrong\r\n') + get('/files/small.bin', '', `Authorization: Bearer trove-sk-wrong\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\n`) + closing]],
  ['duplicate X-Namespace', [get('/files/small.bin', 'X-Namespace: other\r\n') + closing]],
  ['header names in any case, values with spaces around', [`GET /files/small.bin HTTP/1.1\r\nhOsT: h\r\nAUTHORIZATION:    Bearer {KEY}   \r\nx-NAMESPACE:\t${NS}\t\r\n\r\n` + closing]],
  ['Transfer-Encoding on a GET (smuggling)', [`GET /files/small.bin HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n` + closing]],
  ['Content-Length on a GET (smuggling)', [`GET /files/small.bin HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\nContent-Length: {CLOSING_LENGTH}\r\n\r\n` + closing + closing]],
  ['Content-Length and Transfer-Encoding together', [`GET /files/small.bin HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` + closing]],
  ['Content-Length: 0', [get('/files/small.bin', 'Content-Length: 0\r\n') + closing]],
  ['Expect: 100-continue', [get('/files/small.bin', 'Expect: 100-continue\r\n') + closing]],
  ['Connection with other tokens', [get('/files/small.bin', 'Connection: keep-alive, TE\r\n') + closing]],
  ['no Host', [`GET /files/small.bin HTTP/1.1\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\n\r\n` + closing]],
  ['two Host headers', [get('/files/small.bin', 'Host: other\r\n') + closing]],
  ['HTTP/1.0', [`GET /files/small.bin HTTP/1.0\r\nHost: h\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\n\r\n`]],
  ['lower-case method', [`get /files/small.bin HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\n\r\n` + closing]],
  ['absolute-form target', [`GET http://h/files/small.bin HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {KEY}\r\nX-Namespace: ${NS}\r\n\r\n` + closing]],
  ['obs-fold', [`GET /files/small.bin HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {KEY}\r\nX-Namespace:\r\n ${NS}\r\n\r\n` + closing]],
  ['bare LF line ends', [`GET /files/small.bin HTTP/1.1\nHost: h\nAuthorization: Bearer {KEY}\nX-Namespace: ${NS}\n\n` + closing]],
  ['space before the colon', [`GET /files/small.bin HTTP/1.1\r\nHost: h\r\nAuthorization : Bearer {KEY}\r\nX-Namespace: ${NS}\r\n\r\n` + closing]],
  ['a header name with a bad character', [get('/files/small.bin', 'X(y): z\r\n') + closing]],
  ['a non-ASCII header value', [get('/files/small.bin', 'X-Note: caf\u00e9\r\n') + closing]],
  ['a control byte in a header value', [get('/files/small.bin', 'X-Note: a\u0001b\r\n') + closing]],
  ['a head over 16 KiB', [get('/files/small.bin', 'X-Pad: ' + 'p'.repeat(17 * 1024) + '\r\n') + closing]],
  ['many headers', [get('/files/small.bin', Array.from({ length: 150 }, (_, i) => `X-H${i}: v\r\n`).join('')) + closing]],
  ['empty lines before the request line', ['\r\n\r\n' + get('/files/small.bin') + closing]],
  ['a head split across writes', [get('/files/small.bin').slice(0, 30), get('/files/small.bin').slice(30) + closing]],
  ['a pipelined request split across writes', [get('/files/small.bin') + closing.slice(0, 25), closing.slice(25)]],
  ['garbage', ['HELLO\r\n\r\n']],
  // A FIN that arrives while requests are still being answered: node:http sometimes drops those answers
  // (it aborts what is in flight), the lane answers them (see "what only the lane does").
  ['the client half-closes after two GETs', [get('/files/small.bin') + get('/files/small.bin'), { fin: true, afterResponses: 2 }]],
  ['half-close after a large file and a 404', [get('/files/large.bin') + get('/files/nope') + get('/files/small.bin'), { fin: true, afterResponses: 3 }]],
  ['an unknown route', [`GET /filesx HTTP/1.1\r\nHost: h\r\n\r\n` + closing]],
];

describe('download lane: the same bytes as node:http + Fastify', () => {
  it.each(scripts)('%s', async (_name, parts) => {
    const script = (vars: Record<string, string>) =>
      parts.map((p) => (typeof p === 'string' ? sub(p, vars) : 'fin' in p ? p : { ...p, text: sub(p.text, vars) }));
    const [a, b] = await Promise.all([exchange(lane.server.port, script(lane.vars)), exchange(plain.server.port, script(plain.vars))]);
    expect(mask(a)).toBe(mask(b));
    expect(a.length).toBeGreaterThan(0);
  });

  it('serves the right bytes and headers (not just the same as the other server)', async () => {
    const raw = await exchange(lane.server.port, [sub(get('/files/small.bin') + get('/files/capped.bin') + closing, lane.vars)]);
    const text = raw.toString('latin1');
    const first = text.indexOf('\r\n\r\n') + 4;
    expect(text.slice(0, first)).toMatch(/^HTTP\/1\.1 200 OK\r\nx-request-id: req-\w+\r\ncontent-type: application\/octet-stream\r\ncontent-length: 4096\r\netag: "[0-9a-f]+-1000-[0-9a-f]+\.[0-9a-f]+"\r\nlast-modified: Fri, 02 Jan 2026 03:04:05 GMT\r\nx-trove-size: 4096\r\nDate: .+ GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=\d+\r\n\r\n$/);
    expect(raw.subarray(first, first + 4096).equals(SMALL)).toBe(true);
    const second = text.indexOf('\r\n\r\n', first + 4096) + 4;
    expect(text.slice(first + 4096, second)).toContain(`content-length: ${MAX_READ}\r\n`);
    expect(text.slice(first + 4096, second)).toContain(`x-trove-size: ${CAPPED.length}\r\nx-trove-truncated: 1\r\n`);
    expect(raw.subarray(second, second + MAX_READ).equals(CAPPED.subarray(0, MAX_READ))).toBe(true);
  });
});

describe('download lane: what only the lane does', () => {
  it('answers plain GETs itself, small and large files (no Fastify request), one access-log line each with the response request id', async () => {
    const before = lane.server.output().length;
    const urls = ['/files/small.bin', '/files/in-link', '/files/large.bin', '/files/small.bin'];
    const raw = await exchange(lane.server.port, [sub(urls.slice(0, -1).map((u) => get(u)).join('') + get(urls.at(-1)!, 'Connection: close\r\n'), lane.vars)]);
    const ids = [...raw.toString('latin1').matchAll(/^x-request-id: (\S+)\r$/gm)].map((m) => m[1]!);
    expect(ids).toHaveLength(urls.length);
    // The server's stdout reaches this process on its own schedule: wait for the lines.
    for (let i = 0; i < 500 && !ids.every((id) => lane.server.output().includes(id)); i++) await new Promise((r) => setTimeout(r, 20));
    const lines = lane.server
      .output()
      .slice(before)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const [i, id] of ids.entries()) {
      const mine = lines.filter((l) => l.reqId === id);
      // Fastify logs "incoming request" at debug for every request it handles; the lane does not.
      expect(mine.map((l) => l.msg)).toEqual(['request completed']);
      expect(mine[0]).toMatchObject({ level: 30, method: 'GET', url: urls[i], statusCode: 200 });
      expect(typeof mine[0]!.ms).toBe('number');
    }
    // And the same script on the server without the lane goes through Fastify.
    const beforePlain = plain.server.output().length;
    const plainRaw = await exchange(plain.server.port, [sub(get('/files/small.bin', 'Connection: close\r\n'), plain.vars)]);
    const plainId = /^x-request-id: (\S+)\r$/m.exec(plainRaw.toString('latin1'))![1]!;
    for (let i = 0; i < 500 && !plain.server.output().slice(beforePlain).includes('request completed'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(plain.server.output().slice(beforePlain)).toContain(`"reqId":"${plainId}","method":"GET","url":"/files/small.bin","msg":"incoming request"`);
  });

  it('answers every request sent before the client half-closed, then closes', async () => {
    const requests = get('/files/small.bin') + get('/files/large.bin') + get('/files/in-link');
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = net.connect(lane.server.port, '127.0.0.1', () => socket.end(sub(requests, lane.vars)));
      socket.on('data', (d) => chunks.push(d));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    expect(raw.toString('latin1').match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(raw.subarray(raw.length - SMALL.length).equals(SMALL)).toBe(true);
  });

  it('closes the connection after a Connection: close answer, even when the client keeps its side open', async () => {
    for (const side of [lane, plain]) {
      const refused = await new Promise<string>((resolve) => {
        const socket = net.connect({ port: side.server.port, host: '127.0.0.1', allowHalfOpen: true });
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        socket.on('connect', () => socket.write(sub(get('/files/small.bin', 'Connection: close\r\n'), side.vars)));
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
      expect(refused, side === lane ? 'lane' : 'node:http').toMatch(/^(EPIPE|ECONNRESET)$/);
    }
  });

  it('refuses a revoked key on the very next request (the key cache is emptied by the revocation)', async () => {
    const s = lane.server;
    const created = await call(s, s.adminKey, 'POST', `/v1/workspaces/${s.workspaceId}/keys`, JSON.stringify({ name: 'soon-revoked' }), {
      'content-type': 'application/json',
    });
    const script = [get('/files/small.bin', '', `Authorization: Bearer ${created.api_key}\r\nX-Namespace: ${NS}\r\n`) + closing];
    const ok = await exchange(s.port, script.map((p) => sub(p, lane.vars)));
    expect(ok.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK/);
    await call(s, s.adminKey, 'DELETE', `/v1/workspaces/${s.workspaceId}/keys/${created.key_id}`);
    const refused = await exchange(s.port, script.map((p) => sub(p, lane.vars)));
    expect(refused.toString('latin1')).toMatch(/^HTTP\/1\.1 401 Unauthorized/);
  });

  it('keeps every byte in order for a client that pipelines and stops reading', async () => {
    const s = lane.server;
    const n = 400;
    const script = sub(get('/files/small.bin').repeat(n - 1) + get('/files/small.bin', 'Connection: close\r\n'), lane.vars);
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = net.connect(s.port, '127.0.0.1', () => {
        socket.write(script);
        // Not reading: ~1.7 MB of answers fill the socket buffers, the lane's write reports it, and
        // node:http takes over (it stops reading until the client catches up).
        socket.pause();
        setTimeout(() => socket.resume(), 500);
      });
      socket.on('data', (d) => chunks.push(d));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const end = raw.indexOf('\r\n\r\n', pos);
      expect(end).toBeGreaterThan(pos);
      const head = raw.toString('latin1', pos, end);
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(head).toContain('\r\ncontent-length: 4096\r\n');
      expect(raw.subarray(end + 4, end + 4 + 4096).equals(SMALL)).toBe(true);
      pos = end + 4 + 4096;
    }
    expect(pos).toBe(raw.length);
  });
});

describe('download lane: large files', () => {
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
    const end = raw.indexOf('\r\n\r\n');
    expect(raw.toString('latin1', 0, end)).toContain(`\r\ncontent-length: ${big.length}\r\n`);
    expect(raw.subarray(end + 4, end + 4 + big.length).equals(big)).toBe(true);
    const rest = raw.subarray(end + 4 + big.length).toString('latin1');
    expect(rest).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(raw.subarray(raw.length - SMALL.length).equals(SMALL)).toBe(true);
  });

  it('answers requests that arrive piecemeal during a stalled large download, in order', async () => {
    const { s, big } = await serverWithBigFile(16 * 1024 * 1024);
    const v = { KEY: s.runtimeKey };
    const n = 40;
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = net.connect(s.port, '127.0.0.1', async () => {
        socket.write(sub(get('/files/big.bin'), v));
        socket.pause(); // the download stalls: the lane is busy while the rest arrives
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
    let pos = raw.indexOf('\r\n\r\n') + 4;
    expect(raw.subarray(pos, pos + big.length).equals(big)).toBe(true);
    pos += big.length;
    for (let i = 0; i < n; i++) {
      const end = raw.indexOf('\r\n\r\n', pos);
      expect(raw.toString('latin1', pos, end)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(raw.subarray(end + 4, end + 4 + SMALL.length).equals(SMALL)).toBe(true);
      pos = end + 4 + SMALL.length;
    }
    expect(pos).toBe(raw.length);
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
      while (got === 0) await new Promise((r) => setTimeout(r, 10));
      const started = Date.now();
      await s.stop();
      socket.destroy();
      // main.ts cuts every connection after its 10 s grace period (the lane's too); without that the stalled
      // download would hold the server until main.ts gives up at 15 s and exits with 1.
      expect(Date.now() - started).toBeLessThan(14_000);
      expect(s.proc.exitCode).toBe(0);
    } finally {
      await s.close();
    }
  });
});

describe('download lane: rate limits and shutdown', () => {
  it('counts lane requests against the per-key rate limit, like every other request', async () => {
    const sides = await Promise.all([
      startServer({ env: { TROVE_RATE_LIMIT_PER_MINUTE: '3' } }),
      startServer({ env: { TROVE_RATE_LIMIT_PER_MINUTE: '3', TROVE_DOWNLOAD_LANE: '0' } }),
    ]);
    try {
      const answers = await Promise.all(
        sides.map(async (s) => {
          await call(s, s.runtimeKey, 'PUT', '/files/x', 'x'); // 1 of 3
          // One at a time: node:http answers pipelined requests in order but may check their keys in
          // another order (with PostgreSQL the lookups finish when they finish).
          const v = { KEY: s.runtimeKey };
          // The 404 is answered by the route: it must count once, not once in the lane and once in the route.
          const paths = ['/files/nope', '/files/x'];
          const parts: Part[] = [
            sub(get('/files/x'), v),
            ...paths.map((p, i) => ({ text: sub(get(p), v), afterResponses: i + 1 })),
            { text: sub(closing, v), afterResponses: 3 },
          ];
          return mask(await exchange(s.port, parts));
        }),
      );
      expect(answers[0]).toBe(answers[1]);
      expect(answers[0]!.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 404', 'HTTP/1.1 429', 'HTTP/1.1 429']);
      expect(answers[0]).toMatch(/^retry-after: \d+\r$/m);
    } finally {
      await Promise.all(sides.map((s) => s.close()));
    }
  });

  it('does not keep the server up for an idle keep-alive connection it owns', async () => {
    const s = await startServer();
    try {
      await call(s, s.runtimeKey, 'PUT', '/files/x', 'x');
      const socket = net.connect(s.port, '127.0.0.1');
      let received = '';
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.on('data', (d) => (received += d.toString('latin1')));
      socket.on('error', () => {});
      socket.write(sub(get('/files/x'), { KEY: s.runtimeKey }));
      while (!received.includes('\r\n\r\nx')) await new Promise((r) => setTimeout(r, 10));
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

describe('parseHead', () => {
  const ok = 'GET /files/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer k\r\nX-Namespace: n';
  it('reads what the lane needs', () => {
    expect(parseHead(ok)).toEqual({ url: '/files/a', authorization: 'Bearer k', namespace: 'n', close: false });
    expect(parseHead('GET /files/a?b HTTP/1.1\r\nhost: h\r\nconnection: Close')).toEqual({ url: '/files/a?b', authorization: undefined, namespace: undefined, close: true });
    expect(parseHead(ok + '\r\nX-Other: 1\r\nAccept: */*')).not.toBeNull();
  });
  it.each([
    ['another method', ok.replace('GET', 'HEAD')],
    ['another path', ok.replace('/files/a', '/v1/files')],
    ['HTTP/1.0', ok.replace('HTTP/1.1', 'HTTP/1.0')],
    ['a space in the target', ok.replace('/files/a', '/files/a b')],
    ['a non-ASCII target', ok.replace('/files/a', '/files/é')],
    ['no Host', 'GET /files/a HTTP/1.1\r\nAuthorization: Bearer k'],
    ['two Hosts', ok + '\r\nHost: i'],
    ['two Authorization', ok + '\r\nAuthorization: Bearer j'],
    ['two X-Namespace', ok + '\r\nX-Namespace: m'],
    ['Content-Length', ok + '\r\nContent-Length: 0'],
    ['Transfer-Encoding', ok + '\r\nTransfer-Encoding: chunked'],
    ['Expect', ok + '\r\nExpect: 100-continue'],
    ['Upgrade', ok + '\r\nUpgrade: h2c'],
    ['Connection: upgrade', ok + '\r\nConnection: upgrade'],
    ['two Connection', ok + '\r\nConnection: close\r\nConnection: close'],
    ['obs-fold', ok + '\r\n continued'],
    ['a bare LF', ok + '\nX-A: b'],
    ['a bare CR', ok + '\rX-A: b'],
    ['no colon', ok + '\r\nX-A b'],
    ['an empty name', ok + '\r\n: b'],
    ['a space before the colon', ok + '\r\nX-A : b'],
    ['a control byte', ok + '\r\nX-A: b\u0000c'],
    ['obs-text', ok + '\r\nX-A: caf\u00e9'],
    ['an empty line inside', ok + '\r\n\r\nX-A: b'],
    ['too many lines', ok + '\r\nX: y'.repeat(100)],
  ])('refuses %s', (_name, head) => {
    expect(parseHead(head)).toBeNull();
  });
});
