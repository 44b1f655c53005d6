/** `trove webhooks deliveries ID`: the delivery log, newest first. */
import type { Context } from '../../context.js';
import { formatTimestamp } from '../../output/time.js';

export async function run(ctx: Context, [id]: [string], opts: { limit?: number }): Promise<void> {
  const admin = await ctx.admin();
  const deliveries = await admin.webhooks.listDeliveries(id, { limit: opts.limit, signal: ctx.io.signal });
  if (ctx.json) {
    ctx.printJson({ deliveries });
    return;
  }
  const c = ctx.out;
  const now = ctx.io.now();
  const status = (s: string) => (s === 'delivered' ? c.green(s) : s === 'failed' ? c.red(s) : c.yellow(s));
  ctx.printTable(
    ['DELIVERY ID', 'EVENT', 'TYPE', 'STATUS', 'ATTEMPTS', 'HTTP', 'LAST ATTEMPT', 'ERROR'],
    deliveries.map((d) => [
      d.deliveryId,
      d.eventId,
      d.eventType,
      status(d.status),
      String(d.attempts),
      d.lastStatusCode === null ? '-' : String(d.lastStatusCode),
      formatTimestamp(d.lastAttemptAt, now),
      d.lastError ?? '',
    ]),
  );
}
