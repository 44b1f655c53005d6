/**
 * `trove webhooks listen --forward-to http://localhost:PORT/path`: follows the
 * server's SSE feed and POSTs each event, signed like a real delivery, to a
 * local receiver (like `stripe listen`). After a dropped connection it
 * reconnects and backfills what it missed from the events API.
 */
import type { TroveAdminClient } from 'trove-sdk';
import type { Context } from '../../context.js';
import { InterruptedError } from '../../errors.js';
import { colorType } from '../../output/events.js';
import { formatTimestamp } from '../../output/time.js';
import { CLI_VERSION } from '../../version.js';
import { newSigningSecret, signatureHeaders } from '../../webhooks/sign.js';
import { readSseData } from 'trove-sdk';
import { parseLocalTarget } from '../../webhooks/target.js';

interface RawEvent {
  id: string;
  type: string;
  namespace: string | null;
  created_at: string;
}

const FORWARD_TIMEOUT_MS = 10_000;

export async function run(
  ctx: Context,
  _args: unknown[],
  opts: { forwardTo: string; secret?: string; type?: string[]; namespace?: string },
): Promise<void> {
  const target = parseLocalTarget(opts.forwardTo);
  const secret = opts.secret ?? newSigningSecret();
  const signal = ctx.io.signal;
  const admin = await ctx.admin();
  const ws = encodeURIComponent(await admin.getWorkspaceId({ signal }));
  const types = opts.type && opts.type.length > 0 ? new Set(opts.type) : null;
  const wanted = (ev: RawEvent) =>
    (types === null || types.has('*') || types.has(ev.type)) &&
    (opts.namespace === undefined || ev.namespace === opts.namespace);

  // Asked of the server (stream and backfill) where it supports it; `wanted()` checks again.
  const filter = { namespace: opts.namespace, types: types && !types.has('*') ? [...types].join(',') : undefined };
  const seen = new RecentIds(5000);
  let lastCreatedAt: string | undefined;
  let connectedOnce = false;
  const c = ctx.out;

  const forward = async (raw: string, ev: RawEvent) => {
    if (seen.has(ev.id)) return;
    seen.add(ev.id);
    if (!lastCreatedAt || ev.created_at > lastCreatedAt) lastCreatedAt = ev.created_at;
    if (!wanted(ev)) return;
    const timestamp = Math.floor(Date.now() / 1000);
    const started = Date.now();
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(target, {
        method: 'POST',
        body: raw,
        headers: {
          'content-type': 'application/json',
          'user-agent': `trove-cli-listen/${CLI_VERSION}`,
          'x-trove-event': ev.type,
          'x-trove-event-id': ev.id,
          ...signatureHeaders({ secret, body: raw, eventId: ev.id, timestamp }),
        },
        signal: AbortSignal.any([signal, AbortSignal.timeout(FORWARD_TIMEOUT_MS)]),
        redirect: 'manual',
      });
      status = res.status;
      await res.body?.cancel().catch(() => {});
    } catch (err) {
      if (signal.aborted) return;
      error = describe(err);
    }
    const ok = status !== null && status >= 200 && status < 300;
    const ms = Date.now() - started;
    if (ctx.json) {
      ctx.printJsonLine({
        eventId: ev.id,
        type: ev.type,
        namespace: ev.namespace,
        createdAt: ev.created_at,
        status,
        ok,
        durationMs: ms,
        error,
      });
    } else {
      const result = ok ? c.green(`[${status}]`) : status !== null ? c.red(`[${status}]`) : c.red(`[failed: ${error}]`);
      ctx.print(
        `${c.dim(formatTimestamp(ev.created_at, ctx.io.now()))}  ${colorType(ev.type.padEnd(17), c)} ${ev.id}  → ${result} ${c.dim(`${ms} ms`)}`,
      );
    }
  };

  const backfill = async () => {
    if (!lastCreatedAt) return;
    const missed: { raw: string; ev: RawEvent }[] = [];
    let cursor: string | null = null;
    // Newest first, page by page down to where the feed stopped.
    do {
      const page: { events: Record<string, unknown>[]; next_cursor: string | null } = await admin.request(
        {
          method: 'GET',
          path: `/v1/workspaces/${ws}/events`,
          query: { ...filter, since: lastCreatedAt, limit: 200, cursor: cursor ?? undefined },
          signal,
        },
        async (res) => (await res.json()) as { events: Record<string, unknown>[]; next_cursor: string | null },
      );
      for (const e of page.events) missed.push({ raw: JSON.stringify(e), ev: e as unknown as RawEvent });
      cursor = page.next_cursor;
    } while (cursor !== null);
    for (const m of missed.reverse()) await forward(m.raw, m.ev);
  };

  for (let attempt = 0; !signal.aborted;) {
    let body: ReadableStream<Uint8Array>;
    try {
      body = await openStream(admin, ws, filter, signal);
    } catch (err) {
      if (signal.aborted) break;
      // The first connection's failure is the answer (bad key, server down); later ones are retried.
      if (!connectedOnce || isAuthError(err)) throw err;
      await pause(backoffMs(attempt++), signal);
      continue;
    }
    try {
      for await (const data of readSseData(body)) {
        let msg: { type?: string; id?: string };
        try {
          msg = JSON.parse(data) as { type?: string };
        } catch {
          continue;
        }
        if (msg.type === 'connected') {
          attempt = 0;
          if (!connectedOnce) {
            connectedOnce = true;
            // The newest existing event marks where a backfill after a dropped connection starts.
            lastCreatedAt ??= await newestCreatedAt(admin, ws, signal);
            announce(ctx, target.href, secret, opts.secret === undefined);
          } else {
            ctx.note(ctx.err.dim('Reconnected; forwarding events missed meanwhile.'));
            await backfill();
          }
          continue;
        }
        if (typeof msg.id === 'string' && typeof msg.type === 'string') await forward(data, msg as RawEvent);
      }
    } catch (err) {
      if (signal.aborted) break;
      if (isAuthError(err)) throw err;
    }
    if (signal.aborted) break;
    ctx.note(ctx.err.yellow('Connection to the event stream lost; reconnecting…'));
    await pause(backoffMs(attempt++), signal);
  }
  throw new InterruptedError();
}

function announce(ctx: Context, target: string, secret: string, generated: boolean): void {
  const standard = 'whsec_' + Buffer.from(secret, 'utf8').toString('base64');
  if (ctx.json) {
    ctx.printJsonLine({ ready: true, forwardTo: target, signingSecret: secret, standardWebhooksSecret: standard });
    return;
  }
  const c = ctx.err;
  ctx.note(`${c.green('Ready!')} Forwarding events to ${c.bold(target)} (Ctrl-C to stop)`);
  ctx.note(`Signing secret${generated ? ' (generated; pass --secret to reuse one)' : ''}: ${c.bold(secret)}`);
  ctx.note(c.dim(`Standard Webhooks verifiers take: ${standard}`));
}

async function openStream(
  admin: TroveAdminClient,
  ws: string,
  filter: { namespace?: string; types?: string },
  signal: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  return admin.request(
    {
      method: 'GET',
      path: `/v1/workspaces/${ws}/webhooks/stream`,
      query: filter,
      headers: { accept: 'text/event-stream' },
      signal,
      stream: true,
      maxRetries: 0,
    },
    async (res) => {
      if (!res.body) throw new Error('the event stream has no body');
      return res.body;
    },
  );
}

async function newestCreatedAt(admin: TroveAdminClient, ws: string, signal: AbortSignal): Promise<string | undefined> {
  const page = await admin.request(
    { method: 'GET', path: `/v1/workspaces/${ws}/events`, query: { limit: 1 }, signal },
    async (res) => (await res.json()) as { events: { created_at: string }[] },
  );
  return page.events[0]?.created_at;
}

function isAuthError(err: unknown): boolean {
  const s = (err as { status?: number }).status;
  return s === 401 || s === 403 || s === 404;
}

/** 1 s, 2 s, 4 s … capped at 15 s. */
function backoffMs(attempt: number): number {
  return Math.min(1000 * 2 ** attempt, 15_000);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer in ${FORWARD_TIMEOUT_MS / 1000} s`;
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** The ids of the last `max` events, so a backfill after a reconnect sends nothing twice. */
class RecentIds {
  readonly #set = new Set<string>();
  constructor(private readonly max: number) {}
  has(id: string): boolean {
    return this.#set.has(id);
  }
  add(id: string): void {
    this.#set.add(id);
    if (this.#set.size > this.max) this.#set.delete(this.#set.values().next().value!);
  }
}
