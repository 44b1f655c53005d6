/** `trove snapshot delete ID`: asks first (or -y). */
import type { Context } from '../../context.js';

export async function run(ctx: Context, [id]: [string], opts: { yes?: boolean }): Promise<void> {
  const client = await ctx.client();
  await ctx.confirm(`Delete snapshot ${id}? It cannot be restored afterwards.`, {
    yes: opts.yes,
    what: `delete ${id}`,
  });
  const res = await client.snapshots.delete(id, { signal: ctx.io.signal });
  if (ctx.json) ctx.printJson(res);
  else ctx.note(`Deleted ${res.snapshotId}`);
}
