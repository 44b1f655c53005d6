/** `trove webhooks list`: endpoints with their last delivery (admin key). */
import type { Context } from '../../context.js';
import { formatTimestamp } from '../../output/time.js';

export async function run(ctx: Context): Promise<void> {
  const admin = await ctx.admin();
  const hooks = await admin.webhooks.list({ signal: ctx.io.signal });
  if (ctx.json) {
    ctx.printJson({ webhooks: hooks });
    return;
  }
  const c = ctx.out;
  const now = ctx.io.now();
  ctx.printTable(
    ['WEBHOOK ID', 'URL', 'EVENTS', 'NAMESPACE', 'ENABLED', 'LAST DELIVERY'],
    hooks.map((h) => [
      h.webhookId,
      h.url,
      h.events.join(','),
      h.namespace ?? '-',
      h.enabled ? 'yes' : c.red('no'),
      h.lastDeliveryAt
        ? `${h.lastDeliveryOk ? c.green('ok') : c.red('failed')} ${h.lastDeliveryStatus ?? ''} ${formatTimestamp(h.lastDeliveryAt, now)}`.replace(
            /\s+/g,
            ' ',
          )
        : '-',
    ]),
  );
}
