/**
 * Slow and unauthenticated clients cannot hold the server's resources: a
 * namespace lock, an upload's temp file and descriptor, or a socket.
 *
 * - Body idle timeout (`--body-idle-timeout-ms`): a request whose body stops
 *   arriving for that long has its body stream destroyed with a 408
 *   `request_timeout` AppError. Whatever reads the body (the upload loop, the
 *   JSON parser) throws it and cleans up on its usual error path; the error
 *   handler answers 408; the connection is then closed (below). Progress is
 *   read from the socket's byte counter, never from a 'data' listener (one
 *   would switch the body to flowing mode and lose bytes before its consumer
 *   attaches), and body bytes buffered because the server is not reading yet
 *   (waiting for a lock, a slow disk) count as progress: only the client's
 *   silence times out.
 * - Early answers close the connection: a response sent before its request
 *   body arrived in full (a 401 to an upload, a 413 on a declared size, the
 *   408 above) carries `Connection: close`, as does every 401, so an
 *   unauthenticated client cannot keep a socket. node:http would otherwise
 *   read and discard the rest of the body, however long, to reuse the
 *   connection. Instead the rest is discarded for at most LINGER_MS after the
 *   answer (long enough for a client that writes its whole body before
 *   reading, like Python's http.client, to see the answer instead of a broken
 *   pipe), then the socket is destroyed. Nothing that arrives meanwhile is
 *   run as a request.
 * - Connection timeout (`--connection-timeout-ms`, node's socket inactivity
 *   timeout): a socket on which nothing moved for that long is closed, except
 *   while the server itself is still working on the answer (an exec, a lock
 *   wait, a snapshot): then the client is not the one stalling.
 * - Request and headers timeouts are node:http's; its 408 gets our JSON body.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { AppError } from '../errors.js';

export interface SlowClientOptions {
  /** A request body that sends nothing for this long is cut off with 408. */
  bodyIdleTimeoutMs: number;
}

/** How long the rest of a request body is read and discarded after an early answer, before the socket goes. */
export const LINGER_MS = 2_000;

/** Sockets being closed after an early answer: a request arriving on one is never run. */
const lingering = new WeakSet<Socket>();
/** The response each socket is working on (for the connection timeout and node's 408). */
const inFlight = new WeakMap<Socket, ServerResponse>();

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Watches one request body; destroys it with a 408 AppError after `idleMs`
 * without progress. Checked a few times per period, so the cut comes between
 * idleMs and 1.25 × idleMs after the last byte.
 */
function watchBody(raw: IncomingMessage, idleMs: number): () => void {
  const socket = raw.socket;
  let lastBytes = socket.bytesRead;
  let lastProgress = Date.now();
  const timer = setTimeout(
    function check() {
      if (raw.complete || raw.destroyed || socket.destroyed) return;
      const now = Date.now();
      if (socket.bytesRead !== lastBytes || raw.readableLength > 0) {
        lastBytes = socket.bytesRead;
        lastProgress = now;
      }
      if (now - lastProgress < idleMs) {
        timer.refresh();
        return;
      }
      const seconds = Math.round(idleMs / 100) / 10;
      const err = new AppError('request_timeout', `The request body stalled: no data arrived for ${seconds} s`);
      // Destroying an unfinished request destroys its socket too, and the 408 could not be sent. Detached
      // first, as node's own stream.destroyer() does for server requests; the socket is closed after the answer.
      const s = raw.socket;
      (raw as { socket: Socket | null }).socket = null;
      raw.destroy(err);
      (raw as { socket: Socket | null }).socket = s;
    },
    Math.max(10, Math.floor(idleMs / 4)),
  );
  timer.unref();
  return () => clearTimeout(timer);
}

/** node:http's socket.destroySoon() after a `Connection: close` answer, when the request body is still coming. */
function lingeringClose(this: Socket): void {
  lingering.add(this);
  this.end();
  const timer = setTimeout(() => this.destroy(), LINGER_MS);
  timer.unref();
  this.once('close', () => clearTimeout(timer));
}

const REQUEST_TIMEOUT_BODY = JSON.stringify({
  detail: "The request did not arrive in full within the server's time limit",
  code: 'request_timeout',
});

export function registerSlowClients(app: FastifyInstance, opts: SlowClientOptions): void {
  const unwatch = new WeakMap<FastifyRequest, () => void>();

  // Callback-style hooks: they run on every request, and an async hook costs a promise each.
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const socket = req.raw.socket;
    if (lingering.has(socket)) {
      // Security: sent behind a body we refused; the client was told the connection ends.
      reply.hijack();
      socket.destroy();
      return done();
    }
    inFlight.set(socket, reply.raw);
    if (hasBody(req.raw) && !req.raw.complete) {
      // An error from destroy() must reach the body's reader, and never be an unhandled 'error' event.
      req.raw.on('error', () => {});
      unwatch.set(req, watchBody(req.raw, opts.bodyIdleTimeoutMs));
    }
    done();
  });

  app.addHook(
    'onSend',
    (req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => {
      if (reply.statusCode === 401) reply.header('connection', 'close');
      if (req.raw.complete || !hasBody(req.raw)) return done(null, payload);
      // node:http runs a request's promises before it parses the rest of the packet its head came in, so a body
      // that arrived with the head may not be parsed yet: look again once this turn of the event loop is over.
      setImmediate(() => {
        if (!req.raw.complete) {
          reply.header('connection', 'close');
          // A client that went quiet gains nothing from a linger: node:http's close (once the answer is out) it is.
          // The response's socket: a body reader that stopped early (for await … break) detaches the request's.
          const socket = reply.raw.socket;
          if (socket && reply.statusCode !== 408) socket.destroySoon = lingeringClose;
        }
        done(null, payload);
      });
    },
  );

  app.addHook('onResponse', (req: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    unwatch.get(req)?.();
    done();
  });

  const server = app.server;
  // Replaces node's "destroy on timeout" (a 'timeout' listener means node leaves the socket alone).
  server.on('timeout', (socket: Socket) => {
    const res = inFlight.get(socket);
    const working = res !== undefined && !res.headersSent && !res.writableEnded && !lingering.has(socket);
    if (!working) socket.destroy();
  });

  // node:http's request and headers timeouts: our error body instead of Fastify's; other client errors as before.
  const fastifyClientError = server.listeners('clientError') as Array<
    (err: NodeJS.ErrnoException, socket: Socket) => void
  >;
  server.removeAllListeners('clientError');
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code !== 'ERR_HTTP_REQUEST_TIMEOUT') {
      for (const listener of fastifyClientError) listener.call(server, err, socket);
      return;
    }
    // Not in the middle of an answer (a request timeout while a response is being written just ends it).
    const res = inFlight.get(socket);
    if (socket.writable && !(res && res.headersSent && !res.writableEnded)) {
      socket.write(
        'HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n' +
          `Content-Length: ${Buffer.byteLength(REQUEST_TIMEOUT_BODY)}\r\nConnection: close\r\n\r\n${REQUEST_TIMEOUT_BODY}`,
      );
    }
    socket.destroy();
  });
}
