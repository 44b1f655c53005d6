/** `trove webhooks delete ID`: asks first (or -y). */
import type { Context } from '../../context.js';

export async function run(ctx: Context, [id]: [string], opts: { yes?: boolean }): Promise<void> {
  const admin = await ctx.admin();
  await ctx.confirm(`Delete webhook ${id}? Pending deliveries are dropped.`, { yes: opts.yes, what: `delete ${id}` });
  const res = await admin.webhooks.delete(id, { signal: ctx.io.signal });
  if (ctx.json) ctx.printJson(res);
  else ctx.note(`Deleted ${res.webhookId}`);
}
