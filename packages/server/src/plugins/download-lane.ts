/**
 * The download lane: `GET /files/{path}` of a small file answered straight
 * from the socket, without node:http and Fastify in between.
 *
 * Why: for a 4 KiB download node:http and Fastify cost more CPU than the
 * download itself. A bare node:http server that does nothing but read the
 * file reaches about 0.2× nginx's requests/s on the same machine; most of a
 * request's time goes to building IncomingMessage/ServerResponse objects,
 * header maps, hooks and stream machinery (bench/README.md).
 *
 * What it answers, and nothing else:
 * - a request head that arrived complete and is unambiguous under a strict
 *   subset of HTTP/1.1 (parseHead): `GET /files/… HTTP/1.1`, visible-ASCII
 *   target, well-formed header lines, one Host, at most one Authorization,
 *   X-Namespace and Connection (keep-alive or close), no body-framing or
 *   upgrade headers;
 * - whose checks all pass, through the very functions the route calls:
 *   AuthService.authenticate, the rate limiter, runtimeNamespace and
 *   FileService.download (path resolution, O_NOFOLLOW open, regular-file
 *   check);
 * - and answers it with the route's response, byte for byte but the date and
 *   the request id: a file up to 64 KiB in one write, a larger one as its
 *   head and then sendfile (services/files.ts pumpFile, as the route does).
 *
 * Everything else (another method or path, a partial or odd head, any error,
 * a client that stops reading small files, a server that is closing) hands
 * the connection, with every byte read from it so far, to node:http for the
 * rest of its life, and the regular routes answer. So there is one
 * implementation of every error response and of every check; the lane only
 * frames the one success it knows how to frame. A request the lane had
 * started is then simply answered again by the route (reads have no side
 * effects; the rate limit counts only what the lane answers itself).
 *
 * Two differences are visible. The first only to a client that breaks the protocol:
 * node:http parses a whole read before answering any of it, so a valid GET
 * followed in the same read by garbage (or by anything after a
 * `Connection: close` request) gets only node's 400. The lane answers the GET
 * first, then node:http answers the rest: what node:http itself does when
 * those bytes arrive in a later read. Request boundaries are never read
 * differently (the lane refuses every body-framing header). And a client that
 * half-closes (FIN) right after its requests gets every answer, then the
 * close; node:http aborts what is still in flight at that moment, so it may
 * close without answering.
 * test/e2e/download-lane.test.ts holds both implementations to the same bytes.
 */
import type { FastifyInstance } from 'fastify';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { newRequestId } from '../ids.js';
import type { AuthService } from '../services/auth.js';
import { runtimeNamespace } from '../services/auth.js';
import { pumpFile, type Download, type FileService } from '../services/files.js';
import { closeSyncQuietly } from '../snapshots/fd-io.js';
import { downloadHeaders, filesPathParam } from '../routes/files/index.js';
import type { RateLimiter } from './auth.js';

/** Writes the access log's "request completed" line (app.ts): the routes' and the lane's are one format. */
export type AccessLogger = (reqId: string, method: string, url: string, statusCode: number, ms: number) => void;

export interface LaneDeps {
  auth: AuthService;
  files: FileService;
  limiter: RateLimiter | null;
  logCompleted: AccessLogger;
}

export interface LaneRequest {
  /** The request target, as sent. */
  url: string;
  authorization: string | undefined;
  namespace: string | undefined;
  /** `Connection: close`: answer, then end the connection. */
  close: boolean;
}

/** node:http's default limit on a request head (--max-http-header-size). */
const MAX_HEAD = 16 * 1024;
const MAX_HEADER_LINES = 100;
/** A client pipelining more than this while one request is being answered is cut off. */
const MAX_QUEUED = 256 * 1024;
const PREFIX = Buffer.from('GET /files/', 'latin1');
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const REQUEST_LINE = /^GET (\/files\/[!-~]*) HTTP\/1\.1$/;
/** RFC 9110 token: a header name. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header value the lane accepts: visible ASCII, spaces and tabs (no obs-text, no control bytes). */
const VALUE = /^[\t\x20-\x7e]*$/;

/**
 * Parses a request head (without its final CRLF CRLF) into what the lane
 * needs, or null when the request is anything but an ordinary GET under
 * /files/ that node:http would read exactly the same way.
 */
export function parseHead(head: string): LaneRequest | null {
  const lines = head.split('\r\n');
  if (lines.length > MAX_HEADER_LINES) return null;
  const m = REQUEST_LINE.exec(lines[0]!);
  if (!m) return null;
  let hosts = 0;
  let authorization: string | undefined;
  let namespace: string | undefined;
  let connection: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!TOKEN.test(name) || !VALUE.test(value)) return null;
    switch (name.toLowerCase()) {
      case 'host':
        hosts++;
        break;
      case 'authorization':
        if (authorization !== undefined) return null;
        authorization = value;
        break;
      case 'x-namespace':
        if (namespace !== undefined) return null;
        namespace = value;
        break;
      case 'connection':
        if (connection !== undefined) return null;
        connection = value.toLowerCase();
        if (connection !== 'keep-alive' && connection !== 'close') return null;
        break;
      case 'content-length':
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
      // Conditional and partial requests are the route's (304, 412, ranges).
      case 'if-none-match':
      case 'if-match':
      case 'if-modified-since':
      case 'if-unmodified-since':
      case 'if-range':
      case 'range':
        return null;
    }
  }
  if (hosts !== 1) return null;
  return { url: m[1]!, authorization, namespace, close: connection === 'close' };
}

let dateSecond = -1;
let dateText = '';
/** The Date header's value, formatted once per second (as node:http does). */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** The response head node:http and the route would write for this download. */
export function responseHead(requestId: string, file: Download, close: boolean, keepAliveSeconds: number): string {
  let head = 'HTTP/1.1 200 OK\r\nx-request-id: ' + requestId + '\r\n';
  for (const [name, value] of downloadHeaders(file)) head += name + ': ' + value + '\r\n';
  head += 'Date: ' + httpDate() + '\r\n';
  head += close ? 'Connection: close\r\n' : 'Connection: keep-alive\r\nKeep-Alive: timeout=' + keepAliveSeconds + '\r\n';
  return head + '\r\n';
}

/**
 * Puts the lane in front of `app.server`'s connections. Call once, before
 * listening. Connections the lane hands over get node:http's own listeners.
 */
export function installDownloadLane(app: FastifyInstance, deps: LaneDeps): void {
  const server = app.server;
  const nodeListeners = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  /** Connections the lane owns, with whether a request is being answered. */
  const owned = new Map<Socket, { busy: boolean }>();
  let closing = false;

  app.addHook('preClose', async () => {
    closing = true;
  });
  // The lane's connections are the server's too: node:http's "close them" calls include them. server.close()
  // calls closeIdleConnections itself; main.ts cuts every connection after the shutdown grace period.
  const nodeCloseIdle = server.closeIdleConnections.bind(server);
  const nodeCloseAll = server.closeAllConnections.bind(server);
  server.closeIdleConnections = () => {
    for (const [socket, state] of owned) if (!state.busy) socket.destroy();
    nodeCloseIdle();
  };
  server.closeAllConnections = () => {
    for (const socket of owned.keys()) socket.destroy();
    nodeCloseAll();
  };

  /**
   * The route's checks, in the route's order. A request over its key's rate limit goes to the route
   * uncounted (the route counts it and answers 429); only a request the lane answers is counted here, so
   * one the route answers instead (an error) is counted once, by the route.
   */
  async function lookup(req: LaneRequest): Promise<Download | null> {
    const auth = await deps.auth.authenticate(req.authorization);
    if (deps.limiter?.wouldRefuse(auth.keyId)) return null;
    const ctx = { workspaceId: auth.workspaceId, namespace: runtimeNamespace(auth, req.namespace) };
    const file = await deps.files.download(ctx, filesPathParam(req.url));
    if (deps.limiter && deps.limiter.take(auth.keyId) > 0) {
      // Other requests of the key used up its window meanwhile: this one is now counted, over the limit,
      // and the route counts it again as it answers 429. Only a request already refused counts twice.
      if (!Buffer.isBuffer(file.body)) closeSyncQuietly(file.body.fd);
      return null;
    }
    return file;
  }

  server.on('connection', (socket: Socket) => {
    const state = { busy: false };
    /** Bytes read and not yet answered, from the head being answered on. */
    let pending: Buffer | null = null;
    /** What arrived while a request was being answered: joined once, when it is done (no copy per chunk). */
    let queued: Buffer[] = [];
    let queuedBytes = 0;
    let served = false;
    owned.set(socket, state);

    const onData = (chunk: Buffer) => {
      if (!state.busy) {
        // Not answering: everything before was consumed (a partial head is handed over at once).
        pending = pending ? Buffer.concat([pending, chunk]) : chunk;
        next();
        return;
      }
      queued.push(chunk);
      queuedBytes += chunk.length;
      if (queuedBytes > MAX_QUEUED) socket.destroy();
    };
    const onTimeout = () => socket.destroy();
    const onError = () => socket.destroy();
    const onClose = () => owned.delete(socket);
    // The client has sent everything (FIN): answer what it asked, then end the connection, as node:http does.
    let ended = false;
    const onEnd = () => {
      ended = true;
      if (!state.busy) next();
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('timeout', onTimeout);
    // As node:http: a connection that sends no request is closed after headersTimeout, an idle one between
    // requests after keepAliveTimeout.
    socket.setTimeout(server.headersTimeout || server.keepAliveTimeout);

    const joinQueued = (head: Buffer | null): Buffer | null => {
      if (queued.length === 0) return head;
      const all = head ? [head, ...queued] : queued;
      queued = [];
      queuedBytes = 0;
      return all.length === 1 ? all[0]! : Buffer.concat(all);
    };

    /** From now on node:http owns the connection; what the lane read from it is read again there. */
    const handOff = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('timeout', onTimeout);
      socket.setTimeout(0);
      owned.delete(socket);
      const rest = joinQueued(pending);
      pending = null;
      for (const listener of nodeListeners) listener.call(server, socket);
      if (rest) socket.emit('data', rest);
      // node:http's listeners came after the client's FIN: let them see it.
      if (ended) socket.emit('end');
    };

    const next = () => {
      if (state.busy || socket.destroyed) return;
      if (!pending) {
        if (ended) socket.destroySoon();
        return;
      }
      if (closing) return handOff();
      const n = Math.min(pending.length, PREFIX.length);
      if (pending.compare(PREFIX, 0, n, 0, n) !== 0) return handOff();
      const end = pending.indexOf(HEAD_END);
      // A head that did not arrive whole (or is too large) is node:http's, with its timeouts and limits.
      if (end < 0 || end + HEAD_END.length > MAX_HEAD) return handOff();
      const req = parseHead(pending.toString('latin1', 0, end));
      if (!req) return handOff();
      state.busy = true;
      // answer() catches what the checks throw; anything else ends this connection, never the process.
      answer(req, end + HEAD_END.length).catch(() => socket.destroy());
    };

    const answer = async (req: LaneRequest, headLength: number) => {
      const started = performance.now();
      let file: Download | null = null;
      try {
        file = await lookup(req);
      } catch {
        file = null;
      }
      if (socket.destroyed || !file) {
        state.busy = false;
        if (file && !Buffer.isBuffer(file.body)) closeSyncQuietly(file.body.fd);
        return socket.destroyed ? undefined : handOff();
      }
      const id = newRequestId();
      const close = req.close || closing;
      const head = responseHead(id, file, close, Math.floor(server.keepAliveTimeout / 1000));
      let drained = true;
      if (Buffer.isBuffer(file.body)) {
        // One buffer, one write(2).
        const out = Buffer.allocUnsafe(head.length + file.body.length);
        out.write(head, 0, 'latin1');
        file.body.copy(out, head.length);
        drained = socket.write(out);
      } else {
        // The head, then the kernel sends the file (pumpFile waits until every byte has left).
        socket.write(head, 'latin1');
        // node:http puts no time limit on a response being sent; neither does the lane.
        socket.setTimeout(0);
        const complete = await pumpFile(socket, socket, file.body.fd, file.length, true);
        if (!complete) return; // the socket is destroyed
        socket.setTimeout(server.keepAliveTimeout);
      }
      state.busy = false;
      deps.logCompleted(id, 'GET', req.url, 200, performance.now() - started);
      const buffered = pending!;
      pending = joinQueued(buffered.length === headLength ? null : buffered.subarray(headLength));
      if (!served) {
        served = true;
        socket.setTimeout(server.keepAliveTimeout);
      }
      if (close || closing) {
        pending = null;
        socket.off('data', onData);
        // End, and destroy once the answer is out (a client that never closes its side cannot hold the socket).
        socket.destroySoon();
        return;
      }
      // A client that stops reading: node:http stops reading from it until it catches up.
      if (!drained) return handOff();
      next();
    };

    next();
  });
}
