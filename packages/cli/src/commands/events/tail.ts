/** `trove tail`: follows events live through the SDK's long-poll tail (an event shows as soon as it happens). */
import type { Context } from '../../context.js';
import { InterruptedError } from '../../errors.js';
import { colorType, summarizeEvent } from '../../output/events.js';
import { toWire } from '../../output/json.js';
import { formatTimestamp } from '../../output/time.js';
import { parseSince } from '../../parse/since.js';
import { parseSources } from '../../parse/source.js';

export async function run(
  ctx: Context,
  _args: unknown[],
  opts: { type?: string[]; source?: string[]; verbose?: boolean; namespace?: string; since?: string },
): Promise<void> {
  const since = opts.since !== undefined ? parseSince(opts.since, ctx.io.now()) : undefined;
  const client = await ctx.admin();
  // -n filters the feed; the profile's namespace does not, so the default is everything the key may see.
  const namespace = opts.namespace;
  const types = opts.type && opts.type.length > 0 ? opts.type : undefined;
  const source = parseSources(opts.source);
  // Resolve the workspace (and check the key) before saying we are waiting.
  await client.getWorkspaceId({ signal: ctx.io.signal });
  if (!ctx.json && ctx.io.stderr.isTTY) {
    const what = [
      types ? types.join(', ') : 'all events',
      source ? `made by ${source.join(', ')}` : '',
      namespace ? `in namespace "${namespace}"` : '',
    ]
      .filter(Boolean)
      .join(' ');
    ctx.note(ctx.err.dim(`Waiting for ${what}… (Ctrl-C to stop)`));
  }
  const c = ctx.out;
  for await (const ev of client.events.tail({ types, namespace, source, since, signal: ctx.io.signal })) {
    if (ctx.json) {
      ctx.printJsonLine(ev);
      continue;
    }
    const ns = ev.namespace ?? '-';
    ctx.print(
      `${c.dim(formatTimestamp(ev.createdAt, ctx.io.now()))}  ${colorType(ev.type.padEnd(17), c)} ${ns.padEnd(12)} ${summarizeEvent(ev)}`,
    );
    if (opts.verbose) {
      const body = JSON.stringify({ id: ev.id, ...(toWire(ev.data) as object) }, null, 2);
      ctx.print(c.dim(body.replace(/^/gm, '    ')));
    }
  }
  // The tail only ends when Ctrl-C aborted it.
  throw new InterruptedError();
}
