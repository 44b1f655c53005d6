/**
 * The Server-Sent Events feed of `GET …/webhooks/stream`: `data: <json>\n\n`
 * messages, first `{"type":"connected"}`, then every new event of the
 * workspace (or of the key's namespace) as it is committed, with `: ping`
 * comments as heartbeats. Streams end when the client goes away or the server
 * closes; there is no replay (clients catch up through the events list).
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OpenStreams } from '../http/open-streams.js';
import type { Logger } from '../context.js';
import { publicEnvelope, type EventService } from '../events/service.js';
import { matchesSource } from '../events/source-filter.js';

export interface StreamOptions {
  workspaceId: string;
  /** Only this namespace's events (a namespace-locked key, or `?namespace=`). */
  namespace: string | null;
  /** Only these types (null: all). */
  types: string[] | null;
  /** Only events whose data.source is one of these (null: all; events/source-filter.ts). */
  sources?: string[] | null;
  heartbeatMs: number;
  requestId: string;
  /** The key this stream was opened with; a stream ends when its key is revoked. */
  keyId: string;
  /** Re-checks the key (at every heartbeat): false ends the stream. */
  keyStillValid: () => Promise<boolean>;
}

export class EventStreams {
  private readonly open = new OpenStreams();
  private closed = false;

  constructor(
    private readonly events: EventService,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.open.size;
  }

  async serve(req: IncomingMessage, res: ServerResponse, o: StreamOptions): Promise<void> {
    const abort = this.open.begin(req, res, o.requestId);
    if (this.closed) abort.abort();
    // Subscribe before reading the newest seq, so an event committed in between still wakes us.
    const waiter = this.events.waiter(o.workspaceId);
    try {
      let seq = await this.events.latestSeq(o.workspaceId);
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // Reverse proxies (nginx) would otherwise buffer the stream.
        'x-accel-buffering': 'no',
        'x-request-id': o.requestId,
      });
      const write = async (chunk: string) => {
        if (!res.write(chunk)) await once(res, 'drain', { signal: abort.signal });
      };
      await write('data: {"type":"connected"}\n\n');
      let nextPing = Date.now() + o.heartbeatMs;
      while (!abort.signal.aborted) {
        // Read the whole workspace and filter here: the key's own key.revoked event (namespace
        // null) must reach namespace-filtered streams too.
        const batch = await this.events.after(o.workspaceId, seq, null, 500);
        let revoked = false;
        for (const e of batch) {
          seq = e.seq;
          // Security: a revoked key stops receiving at once, not at the next heartbeat.
          if (e.type === 'key.revoked' && e.data.key_id === o.keyId) {
            revoked = true;
            break;
          }
          if (o.namespace !== null && e.namespace !== o.namespace) continue;
          if (o.types && !o.types.includes(e.type)) continue;
          if (!matchesSource(e.data, o.sources ?? null)) continue;
          await write(`data: ${JSON.stringify(publicEnvelope(e))}\n\n`);
        }
        if (revoked) break;
        if (batch.length === 500) continue;
        const now = Date.now();
        if (now >= nextPing) {
          // Security: a backstop for revocations the event log did not show (e.g. a failed emit).
          if (!(await o.keyStillValid())) break;
          await write(': ping\n\n');
          nextPing = now + o.heartbeatMs;
          continue;
        }
        await waiter.wait(nextPing - now, abort.signal);
        // The server is closing: end the stream cleanly (every later wait would return at once).
        if (waiter.ended) break;
      }
    } catch (err) {
      // A client that vanished mid-write, or a database closing under shutdown, just ends the stream.
      if (!abort.signal.aborted)
        this.logger.warn({ err, request_id: o.requestId }, 'webhooks: event stream ended by an error');
    } finally {
      waiter.dispose();
      abort.end('Event stream unavailable');
    }
  }

  /** Ends every open stream cleanly (server shutdown) and waits for them. */
  async closeAll(): Promise<void> {
    this.closed = true;
    await this.open.closeAll();
  }
}
