/**
 * One HTTP attempt: POST the signed body to the endpoint and classify the
 * outcome. Never follows redirects (a 3xx is a failure: following it would
 * bypass the SSRF check of the first URL). Every new connection resolves the
 * host through the SSRF guard and connects to the very address it checked.
 */
import { Agent, request } from 'undici';
import {
  DestinationRefusedError,
  ResolutionError,
  guardedLookup,
  resolveDestination,
  systemResolver,
  type Resolver,
} from './ssrf.js';
import { linkedAbort } from '../abort.js';

export interface AttemptResult {
  ok: boolean;
  /** The receiver's HTTP status, or null when no response arrived. */
  statusCode: number | null;
  /** Why it failed (null on 2xx); never contains the body we sent or the secret. */
  error: string | null;
  durationMs: number;
}

export interface SenderOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  resolve?: Resolver;
}

const MAX_RESPONSE_READ = 64 * 1024;

function printable(text: string, max: number): string {
  const flat = text
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? flat.slice(0, max) + '…' : flat;
}

function findCause<T>(err: unknown, ctor: new (...args: never[]) => T): T | null {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ctor) return e;
  }
  return null;
}

function describeError(err: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `Timed out after ${timeoutMs} ms`;
  const refused = findCause(err, DestinationRefusedError);
  if (refused) return refused.message;
  const dns = findCause(err, ResolutionError);
  if (dns) return dns.message;
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e.code ?? e.cause?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'Connection refused (ECONNREFUSED)';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'Connection closed by the receiver before a response';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `DNS lookup failed (${code})`;
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'Connect timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `Host unreachable (${code})`;
  }
  const msg = printable(e.message ?? String(err), 300);
  if (/certificate|SSL|TLS/i.test(msg)) return `TLS error: ${msg}`;
  return code ? `${msg} (${code})` : msg || 'Request failed';
}

export class DeliverySender {
  private readonly agent: Agent;
  private readonly resolve: Resolver;

  constructor(private readonly opts: SenderOptions) {
    this.resolve = opts.resolve ?? systemResolver;
    this.agent = new Agent({
      connect: {
        // Security: the socket connects to the address this lookup checked (no DNS rebinding).
        lookup: guardedLookup({ allowPrivate: opts.allowPrivate, resolve: this.resolve }),
        timeout: Math.min(opts.timeoutMs, 10_000),
      } as Record<string, unknown>,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      keepAliveTimeout: 4_000,
    });
  }

  async send(input: {
    url: string;
    body: string;
    headers: Record<string, string>;
    signal?: AbortSignal;
  }): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    // One controller for the attempt, aborted by its timeout or by the caller's signal (shutdown).
    const attempt = linkedAbort([input.signal]);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.controller.abort(new Error('attempt timed out'));
    }, this.opts.timeoutMs);
    const signal = attempt.controller.signal;
    try {
      const url = new URL(input.url);
      if (!this.opts.allowPrivate) {
        // Security: IP literals never reach the lookup hook, so every URL is checked here too.
        await resolveDestination(url.hostname, {
          allowPrivate: false,
          resolve: this.resolve,
          timeoutMs: this.opts.timeoutMs,
        });
      }
      const res = await request(url, {
        method: 'POST',
        headers: input.headers,
        body: input.body,
        dispatcher: this.agent,
        signal,
      });
      let text = '';
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (text.length < 1024) text += chunk.toString('utf8');
        if (size > MAX_RESPONSE_READ) {
          // Nobody needs a big response body; dropping the connection is cheaper than reading it.
          res.body.destroy();
          break;
        }
      }
      const status = res.statusCode;
      if (status >= 200 && status < 300) return { ok: true, statusCode: status, error: null, durationMs: elapsed() };
      if (status >= 300 && status < 400) {
        const location = res.headers.location;
        return {
          ok: false,
          statusCode: status,
          error: `Redirects are not followed: HTTP ${status}${location ? ` to ${printable(String(location), 200)}` : ''}; use the final URL`,
          durationMs: elapsed(),
        };
      }
      const snippet = printable(text, 200);
      return {
        ok: false,
        statusCode: status,
        error: `Receiver answered HTTP ${status}${snippet ? `: ${snippet}` : ''}`,
        durationMs: elapsed(),
      };
    } catch (err) {
      if (!timedOut && input.signal?.aborted) {
        return { ok: false, statusCode: null, error: 'Interrupted by server shutdown', durationMs: elapsed() };
      }
      return {
        ok: false,
        statusCode: null,
        error: describeError(err, timedOut, this.opts.timeoutMs),
        durationMs: elapsed(),
      };
    } finally {
      clearTimeout(timer);
      attempt.dispose();
    }
  }

  async close(): Promise<void> {
    await this.agent.destroy().catch(() => {});
  }
}
