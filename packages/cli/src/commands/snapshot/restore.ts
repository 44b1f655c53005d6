/** `trove snapshot restore ID`: the namespace becomes exactly the snapshot; asks first (or -y). */
import type { Context } from '../../context.js';

export async function run(ctx: Context, [id]: [string], opts: { yes?: boolean }): Promise<void> {
  const client = await ctx.client();
  const ns = client.namespace ? `namespace "${client.namespace}"` : 'the namespace';
  await ctx.confirm(`Restore ${ns} to ${id}? Files written since the snapshot are lost.`, {
    yes: opts.yes,
    what: `restore ${id}`,
  });
  const res = await client.snapshots.restore(id, { signal: ctx.io.signal });
  if (ctx.json) ctx.printJson({ snapshotId: id, ...res });
  else ctx.note(`Restored ${res.filesRestored} files from ${id}`);
}
