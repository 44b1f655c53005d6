/** `trove events list`: recent events, newest first; `--all` follows pages down to `--since`. */
import type { TroveEvent } from 'trove-sdk';
import type { Context } from '../../context.js';
import { colorType, summarizeEvent } from '../../output/events.js';
import { formatTimestamp } from '../../output/time.js';
import { parseSince } from '../../parse/since.js';
import { parseSources } from '../../parse/source.js';

/** The server's page size cap. */
const MAX_PAGE = 200;

export async function run(
  ctx: Context,
  _args: unknown[],
  opts: { since?: string; type?: string[]; source?: string[]; limit?: number; all?: boolean; namespace?: string },
): Promise<void> {
  const since = opts.since !== undefined ? parseSince(opts.since, ctx.io.now()) : undefined;
  const types = opts.type && opts.type.length > 0 ? opts.type : undefined;
  const client = await ctx.admin();
  const filters = { since, types, source: parseSources(opts.source), namespace: opts.namespace, signal: ctx.io.signal };
  let events: TroveEvent[] = [];
  let nextCursor: string | null = null;

  const limit = opts.limit ?? (opts.all ? Infinity : 20);
  if (limit <= MAX_PAGE && !opts.all) {
    const page = await client.events.list({ ...filters, limit: Math.max(1, limit) });
    events = page.events;
    nextCursor = page.nextCursor;
  } else {
    for await (const ev of client.events.list({ ...filters, limit: MAX_PAGE })) {
      events.push(ev);
      if (events.length >= limit) break;
    }
  }

  if (ctx.json) {
    ctx.printJson({ events, nextCursor });
    return;
  }
  const now = ctx.io.now();
  ctx.printTable(
    ['TIME', 'TYPE', 'NAMESPACE', 'DETAILS'],
    events.map((ev) => [
      formatTimestamp(ev.createdAt, now),
      colorType(ev.type, ctx.out),
      ev.namespace ?? '-',
      summarizeEvent(ev),
    ]),
  );
  if (events.length === 0 && ctx.tty) ctx.note(ctx.err.dim('no events'));
  if (nextCursor !== null && ctx.io.stderr.isTTY)
    ctx.note(ctx.err.dim('more events are older: add --all, or a larger --limit'));
}
