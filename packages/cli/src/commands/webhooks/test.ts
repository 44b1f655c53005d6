/** `trove webhooks test ID`: one signed `webhook.test` delivery now; a receiver failure exits 1. */
import type { Context } from '../../context.js';
import { CliError } from '../../errors.js';

export async function run(ctx: Context, [id]: [string]): Promise<void> {
  const admin = await ctx.admin();
  const res = await admin.webhooks.test(id, { signal: ctx.io.signal });
  if (ctx.json) ctx.printJson(res);
  else if (res.ok) ctx.note(`${ctx.err.green('✓')} Delivered ${res.eventId}: receiver answered ${res.status}`);
  if (!res.ok) {
    throw new CliError(
      `test delivery failed: ${res.status !== null ? `receiver answered ${res.status}` : (res.error ?? 'receiver unreachable')}`,
      {
        hint: 'check that the receiver is up and answers 2xx; `trove webhooks deliveries ' + id + '` shows the log',
      },
    );
  }
}
