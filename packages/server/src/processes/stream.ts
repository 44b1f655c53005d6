/**
 * The live stream of a background process (GET /v1/processes/{id}/stream):
 * its stdout and stderr from given offsets, as they are written, then its
 * exit. Server-Sent Events (each output event's id is "<stdout next>:<stderr
 * next>", so `Last-Event-ID` resumes exactly after what was delivered) or
 * NDJSON. Output is read from the ring files 64 KiB at a time and written
 * with backpressure: a slow client costs a socket buffer, never memory.
 *
 * The node running the process wakes the stream on each write; another node
 * polls the files (the shared volume has no change notification).
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OpenStreams } from '../http/open-streams.js';
import type { Logger } from '../context.js';
import type { StreamName } from '../sandbox/ring-writer.js';
import type { NsContext } from '../namespaces/service.js';
import { encodeChunk, readOutput } from './output-store.js';
import type { ProcessRow } from './repository.js';
import type { ProcessService, ProcessView } from './service.js';

export type StreamFormat = 'sse' | 'ndjson';

export interface ProcessStreamOptions {
  ctx: NsContext;
  id: string;
  offsets: Record<StreamName, number>;
  format: StreamFormat;
  heartbeatMs: number;
  requestId: string;
}

/** Bytes read (and sent as one event) per stream per turn. */
const CHUNK_BYTES = 64 * 1024;
/** A stream on a node that does not run the process looks for new output this often. */
const POLL_MS = 200;

export function sseEvent(event: string, data: unknown, id?: string): string {
  return `event: ${event}\n${id !== undefined ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

/** Parses `Last-Event-ID: <stdout>:<stderr>`; null when absent, 'invalid' when malformed. */
export function parseResumeId(header: string | string[] | undefined): Record<StreamName, number> | null | 'invalid' {
  const raw = Array.isArray(header) ? header[0] : header;
  if (raw === undefined || raw.trim() === '') return null;
  const m = /^\s*(\d{1,15}):(\d{1,15})\s*$/.exec(raw);
  if (!m) return 'invalid';
  return { stdout: Number(m[1]), stderr: Number(m[2]) };
}

export class ProcessStreams {
  private readonly open = new OpenStreams();

  constructor(
    private readonly service: ProcessService,
    private readonly logger: Logger,
  ) {}

  /** Serves one stream on a hijacked response; the process must exist (checked by the caller). */
  async serve(req: IncomingMessage, res: ServerResponse, o: ProcessStreamOptions): Promise<void> {
    const abort = this.open.begin(req, res, o.requestId);
    const stop = abort.abort;
    const closing = this.service.closingSignal;
    closing.addEventListener('abort', stop, { once: true });
    if (closing.aborted) abort.abort();

    let pending = false;
    let wake: (() => void) | null = null;
    const unsubscribe = this.service.subscribe(o.id, () => {
      pending = true;
      wake?.();
    });
    const offsets = { ...o.offsets };
    const write = async (chunk: string) => {
      if (!res.write(chunk)) await once(res, 'drain', { signal: abort.signal });
    };
    const output = (stream: StreamName, offset: number, data: string, encoding: string) =>
      o.format === 'sse'
        ? sseEvent(stream, { offset, data, encoding }, `${offsets.stdout}:${offsets.stderr}`)
        : JSON.stringify({ type: stream, offset, data, encoding }) + '\n';
    const exit = (p: ProcessView) =>
      o.format === 'sse'
        ? sseEvent('exit', p, `${offsets.stdout}:${offsets.stderr}`)
        : JSON.stringify({ type: 'exit', process: p }) + '\n';
    try {
      res.writeHead(200, {
        'content-type': o.format === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // Reverse proxies (nginx) would otherwise buffer the stream.
        'x-accel-buffering': 'no',
        'x-request-id': o.requestId,
      });
      // Headers out at once: a client learns the stream is open before the first output.
      res.flushHeaders();
      let nextPing = Date.now() + o.heartbeatMs;
      let ended: ProcessRow | null = null;
      while (!abort.signal.aborted) {
        pending = false;
        // The state before the read: an ended process's files are complete, so an empty read then means the end.
        const row: ProcessRow = ended ?? (await this.service.find(o.ctx, o.id));
        if (row.state === 'exited') ended = row;
        const exited = row.state === 'exited';
        const dir = this.service.dirOf(row);
        let wrote = false;
        for (const stream of ['stdout', 'stderr'] as const) {
          const slice = await readOutput(dir, stream, offsets[stream], CHUNK_BYTES);
          if (slice.data.length === 0) continue;
          const final = exited && slice.offset + slice.data.length >= slice.total;
          const enc = encodeChunk(slice.data, !final);
          if (!enc) continue; // only the start of a character so far
          offsets[stream] = slice.offset + enc.bytes;
          await write(output(stream, slice.offset, enc.data, enc.encoding));
          wrote = true;
        }
        if (wrote) continue;
        if (exited) {
          await write(exit(await this.service.viewOf(row)));
          break;
        }
        const now = Date.now();
        if (now >= nextPing) {
          await write(o.format === 'sse' ? ': heartbeat\n\n' : '\n');
          nextPing = now + o.heartbeatMs;
          continue;
        }
        if (pending) continue;
        const wait = this.service.isLocal(o.id) ? nextPing - now : Math.min(POLL_MS, nextPing - now);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, wait);
          function done() {
            clearTimeout(timer);
            wake = null;
            abort.signal.removeEventListener('abort', done);
            resolve();
          }
          wake = done;
          abort.signal.addEventListener('abort', done, { once: true });
        });
      }
    } catch (err) {
      // A client that vanished mid-write, or the process's record gone (namespace deleted), ends the stream.
      if (!abort.signal.aborted) this.logger.warn({ err, request_id: o.requestId }, 'process stream ended by an error');
    } finally {
      unsubscribe();
      closing.removeEventListener('abort', stop);
      abort.end('Process stream unavailable');
    }
  }

  /** Ends every open stream (server shutdown) and waits for them. */
  async closeAll(): Promise<void> {
    await this.open.closeAll();
  }
}
