/**
 * A real HTTP webhook receiver on loopback for the webhook end-to-end tests:
 * records every request (raw body, headers, arrival time) and answers as the
 * test's `respond` decides (status, delay, or hang). Waiting is event-driven,
 * never a fixed sleep.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Hit {
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The raw body bytes as text (signatures are over these exact bytes). */
  body: string;
  json: { id: string; type: string; namespace: string | null; created_at: string; data: Record<string, unknown> };
  receivedAt: number;
}

export type Behaviour =
  | { status: number }
  | { hang: true }
  | { status: number; delayMs: number }
  /** Answers once `after` settles: the test decides when an attempt in flight ends. */
  | { status: number; after: Promise<unknown> };

/** A promise the test resolves by hand (to hold a receiver's answer). */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

export class Receiver {
  readonly hits: Hit[] = [];
  respond: (hit: Hit, index: number) => Behaviour = () => ({ status: 200 });
  private server!: http.Server;
  private waiters: Array<() => void> = [];
  port = 0;

  static async start(port = 0): Promise<Receiver> {
    const r = new Receiver();
    await r.listen(port);
    return r;
  }

  async listen(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: Hit['json'];
        try {
          json = JSON.parse(body) as Hit['json'];
        } catch {
          json = { id: '', type: '', namespace: null, created_at: '', data: {} };
        }
        const hit: Hit = { path: req.url ?? '', headers: req.headers, body, json, receivedAt: Date.now() };
        const index = this.hits.push(hit) - 1;
        const b = this.respond(hit, index);
        for (const w of this.waiters.splice(0)) w();
        if ('hang' in b) return;
        const answer = () => {
          res.statusCode = b.status;
          res.end(b.status >= 300 ? 'nope' : 'ok');
        };
        if ('delayMs' in b) setTimeout(answer, b.delayMs);
        else if ('after' in b) void b.after.then(answer, answer);
        else answer();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Resolves once `pred(hits)` holds; rejects with what arrived after `timeoutMs`. */
  async waitFor(pred: (hits: Hit[]) => boolean, timeoutMs = 15_000, what = 'deliveries'): Promise<Hit[]> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.hits)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${what}; got ${this.hits.length}: ${this.hits.map((h) => h.json.type).join(', ')}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.hits;
  }

  async waitForCount(n: number, timeoutMs?: number): Promise<Hit[]> {
    return this.waitFor((h) => h.length >= n, timeoutMs, `${n} deliveries`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

/**
 * Re-reads until `ok` holds (or 15 s pass, returning the last value for the assertion to report):
 * the receiver answers before the server records the outcome.
 */
export async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}
