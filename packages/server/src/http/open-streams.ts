/**
 * The lifecycle every long-lived streamed response shares (the event stream,
 * process output streams): each one is aborted when its client goes away or
 * the server shuts down, and ends with a 503 JSON body if it failed before its
 * headers went out, else with a clean end of the body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface OpenStream {
  /** Aborted when the client goes away or closeAll() runs. */
  readonly signal: AbortSignal;
  abort(): void;
  /** Ends the response (503 `unavailable` with `detail` if nothing was sent yet) and forgets the stream. */
  end(detail: string): void;
}

export class OpenStreams {
  private readonly open = new Set<{ abort: AbortController; done: Promise<void> }>();

  get size(): number {
    return this.open.size;
  }

  /** Registers a stream on a hijacked request/response pair. */
  begin(req: IncomingMessage, res: ServerResponse, requestId: string): OpenStream {
    const abort = new AbortController();
    let finish!: () => void;
    const entry = { abort, done: new Promise<void>((r) => (finish = r)) };
    this.open.add(entry);
    const stop = () => abort.abort();
    res.once('close', stop);
    req.once('close', stop);
    return {
      signal: abort.signal,
      abort: stop,
      end: (detail) => {
        res.off('close', stop);
        req.off('close', stop);
        if (!res.headersSent) {
          res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId });
          res.end(JSON.stringify({ detail, code: 'unavailable' }));
        } else if (!res.writableEnded && !res.destroyed) {
          res.end();
        }
        this.open.delete(entry);
        finish();
      },
    };
  }

  /** Aborts every open stream and waits until each has ended. */
  async closeAll(): Promise<void> {
    const all = [...this.open];
    for (const s of all) s.abort.abort();
    await Promise.all(all.map((s) => s.done));
  }
}
