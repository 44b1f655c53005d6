/**
 * sendFileBody: large downloads go out through sendfile (the native addon)
 * or, without it, two reused buffers; every case runs both ways. What must
 * hold: exactly `length` bytes in order, the descriptor closed in every case,
 * and a file that shrinks mid-download never looks like a complete body.
 * readSmallBody: a small body read whole, never longer than the file is now.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { fstatSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, get, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSmallBody, sendFileBody, SMALL_BODY } from '../../src/http/send-file.js';
import { native } from '../../src/native.js';
import { stallingReader } from '../helpers/stalling-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'trove-sendfile-'));
let server: Server;
let base = '';
/** What the next request sends: a path, how many bytes, and a hook run after the headers went out. */
let plan: { path: string; length: number; afterHeaders?: () => void } = { path: '', length: 0 };
/** sendfile (the addon) or buffered writes, as `config.http.sendfile` chooses. */
let sendfile = true;
const fds: number[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const fd = openSync(plan.path, 'r');
    fds.push(fd);
    res.writeHead(200, { 'content-length': String(plan.length) });
    plan.afterHeaders?.();
    void sendFileBody(res, fd, plan.length, { sendfile });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** GET with node:http: the body and whether it ended normally or was cut. */
function fetchRaw(): Promise<{ body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    get(`${base}/`, (res) => {
      const chunks: Buffer[] = [];
      let cut = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('aborted', () => (cut = true));
      res.on('error', () => (cut = true));
      res.on('close', () => resolve({ body: Buffer.concat(chunks), complete: !cut && res.complete }));
    }).on('error', reject);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const closed = (fd: number) => {
  try {
    fstatSync(fd);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EBADF';
  }
};

it('the native addon is built and loads on Linux (npm ci builds it with node-gyp)', () => {
  if (process.platform !== 'linux') return;
  const addon = native();
  expect(addon).not.toBeNull();
  // Argument checks throw instead of reaching the kernel.
  expect(() => addon!.sendfile(-1, 0, 0, 1)).toThrow(TypeError);
  expect(() => addon!.sendfile(1, 0, 0, 0)).toThrow(TypeError);
});

describe('readSmallBody', () => {
  it('reads the first `length` bytes, fewer when the file shrank since it was measured, and closes the descriptor', () => {
    const data = randomBytes(SMALL_BODY);
    const path = join(dir, 'small.bin');
    writeFileSync(path, data);
    let fd = openSync(path, 'r');
    expect(readSmallBody(fd, 4096).equals(data.subarray(0, 4096))).toBe(true);
    expect(closed(fd)).toBe(true);
    fd = openSync(path, 'r');
    expect(readSmallBody(fd, 0).length).toBe(0);
    expect(closed(fd)).toBe(true);
    fd = openSync(path, 'r');
    truncateSync(path, 1000);
    expect(readSmallBody(fd, SMALL_BODY).equals(data.subarray(0, 1000))).toBe(true);
    expect(closed(fd)).toBe(true);
  });

  it('refuses a length over SMALL_BODY, and still closes the descriptor', () => {
    const path = join(dir, 'small.bin');
    const fd = openSync(path, 'r');
    expect(() => readSmallBody(fd, SMALL_BODY + 1)).toThrow(RangeError);
    expect(closed(fd)).toBe(true);
  });
});

describe.each([
  { mode: 'sendfile', withSendfile: true },
  { mode: 'buffered writes', withSendfile: false },
])('sendFileBody with $mode', ({ withSendfile }) => {
  beforeAll(() => {
    sendfile = withSendfile;
  });
  afterAll(() => {
    sendfile = true;
  });

  it('sends exactly the first `length` bytes, across many reused chunks, and closes the descriptor', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 12345);
    const path = join(dir, 'big.bin');
    writeFileSync(path, data);
    for (const length of [data.length, 2 * 1024 * 1024 + 1, 256 * 1024, 1000]) {
      plan = { path, length };
      const r = await fetchRaw();
      expect(r.complete).toBe(true);
      expect(r.body.length).toBe(length);
      expect(sha(r.body)).toBe(sha(data.subarray(0, length)));
      await expect.poll(() => closed(fds.at(-1)!)).toBe(true);
    }
  });

  it('keeps every byte in order for a client that stops reading and resumes (full socket buffers)', async () => {
    const data = randomBytes(24 * 1024 * 1024 + 7);
    const path = join(dir, 'slow.bin');
    writeFileSync(path, data);
    plan = { path, length: data.length };
    const body = await new Promise<Buffer>((resolve, reject) => {
      get(`${base}/`, (res) => {
        // Stall three times: the server's send buffer fills and it must wait for the socket to drain.
        const collected = stallingReader(res, { times: 3, every: 6 * 1024 * 1024, ms: 50 });
        res.on('end', () => resolve(collected()));
        res.on('error', reject);
      }).on('error', reject);
    });
    expect(body.length).toBe(data.length);
    expect(sha(body)).toBe(sha(data));
    await expect.poll(() => closed(fds.at(-1)!)).toBe(true);
  }, 30_000);

  it('cuts the connection when the file shrinks under it, so the short body never looks complete', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const path = join(dir, 'shrinks.bin');
    writeFileSync(path, data);
    plan = { path, length: data.length, afterHeaders: () => truncateSync(path, 100_000) };
    const r = await fetchRaw();
    expect(r.complete).toBe(false);
    expect(r.body.length).toBeLessThan(data.length);
    await expect.poll(() => closed(fds.at(-1)!)).toBe(true);
  });

  it('releases the descriptor whenever a client hangs up mid-body (at once, or after it stopped reading)', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const path = join(dir, 'abandoned.bin');
    writeFileSync(path, data);
    for (let round = 0; round < 40; round++) {
      plan = { path, length: data.length };
      const before = fds.length;
      const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
      await new Promise<void>((r) => sock.once('connect', () => r()));
      sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise<void>((r) => sock.once('data', () => r()));
      if (round % 2 === 1) {
        // Stop reading first: the server's writes back up behind full socket buffers.
        sock.pause();
        await new Promise((r) => setTimeout(r, 20));
      }
      sock.destroy();
      await expect.poll(() => fds.length > before && closed(fds.at(-1)!), { timeout: 5000 }).toBe(true);
    }
  }, 60_000);
});
