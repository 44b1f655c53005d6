/**
 * The connection-level parts of src/http/slow-clients.ts, on a bare Fastify
 * with timeouts too short for the real server's configuration (which keeps the
 * connection timeout above event streams' 60 s heartbeat):
 * - the connection timeout spares a request the server is still working on,
 *   and closes a connection whose client stopped reading its answer;
 * - node:http's request/headers timeout answers 408 with our JSON body.
 * The end-to-end behaviour (body idle timeout, early answers) is
 * test/e2e/slow-clients.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerSlowClients } from '../../src/http/slow-clients.js';

const CONNECTION_MS = 300;
let app: FastifyInstance | null = null;

afterEach(async () => {
  await app?.close();
  app = null;
});

async function start(opts: { requestTimeout?: number; connectionTimeout?: number } = {}): Promise<number> {
  app = Fastify({
    connectionTimeout: opts.connectionTimeout ?? CONNECTION_MS,
    requestTimeout: opts.requestTimeout ?? 0,
    forceCloseConnections: true,
    http: {
      connectionsCheckingInterval: 50,
      headersTimeout: opts.requestTimeout ?? 60_000,
      requestTimeout: opts.requestTimeout ?? 0,
    },
  });
  registerSlowClients(app, { bodyIdleTimeoutMs: 60_000 });
  app.get('/slow', async () => {
    await sleep(CONNECTION_MS * 4);
    return { done: true };
  });
  app.get('/big', async (_req, reply) => reply.send(Buffer.alloc(64 * 1024 * 1024, 0x61)));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as net.AddressInfo).port;
}

function connect(port: number): Promise<{ socket: net.Socket; text: () => string; closed: () => boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => (closed = true));
    socket.on('connect', () => resolve({ socket, text: () => text, closed: () => closed }));
  });
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('connection timeout', () => {
  it('spares a request the server is still working on, longer than the timeout', async () => {
    const port = await start();
    const c = await connect(port);
    c.socket.write('GET /slow HTTP/1.1\r\nHost: t\r\n\r\n');
    await until('the answer', () => c.text().endsWith('{"done":true}'));
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(c.closed()).toBe(false);
    c.socket.destroy();
  });

  it('closes a connection whose client stopped reading its answer', async () => {
    const port = await start();
    const c = await connect(port);
    let serverSideClosed = false;
    app!.server.once('request', (_req, res) => res.once('close', () => (serverSideClosed = true)));
    c.socket.pause();
    c.socket.write('GET /big HTTP/1.1\r\nHost: t\r\n\r\n');
    await until('the server to give up on the stalled answer', () => serverSideClosed);
    c.socket.destroy();
  });
});

describe("node:http's request timeout", () => {
  it('answers 408 with a {detail, code} body and closes', async () => {
    const port = await start({ requestTimeout: 300, connectionTimeout: 60_000 });
    const c = await connect(port);
    c.socket.write('GET /slow HTTP/1.1\r\nHost: t\r\n'); // the head never ends
    await until('the connection to close', c.closed);
    const [head, body] = c.text().split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(head).toMatch(/\r\nConnection: close$/);
    expect(JSON.parse(body!)).toEqual({
      detail: "The request did not arrive in full within the server's time limit",
      code: 'request_timeout',
    });
  });
});
