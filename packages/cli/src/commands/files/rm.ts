/** `trove rm path...`: deletes files or whole directories; several paths need a confirmation or -y. */
import type { Context } from '../../context.js';

export async function run(ctx: Context, [paths]: [string[]], opts: { yes?: boolean }): Promise<void> {
  const client = await ctx.client();
  if (paths.length > 1) {
    const ns = client.namespace ? ` in namespace "${client.namespace}"` : '';
    await ctx.confirm(`Delete ${paths.length} paths${ns} (${paths.join(', ')}), directories with everything in them?`, {
      yes: opts.yes,
      what: `delete ${paths.length} paths`,
    });
  }
  const deleted: string[] = [];
  // Sequential and stopping at the first failure, so what was deleted is exactly what was reported.
  for (const p of paths) {
    const res = await client.delete(p, { signal: ctx.io.signal });
    deleted.push(res.deleted);
    if (!ctx.json) ctx.note(`Deleted ${res.deleted}`);
  }
  if (ctx.json) ctx.printJson({ deleted });
}
