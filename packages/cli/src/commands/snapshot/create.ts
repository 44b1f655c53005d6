/** `trove snapshot create [--label]`: the new id goes to stdout. */
import type { Context } from '../../context.js';
import { formatBytes } from '../../output/format.js';

export async function run(ctx: Context, _args: unknown[], opts: { label?: string }): Promise<void> {
  const client = await ctx.client();
  const snap = await client.snapshots.create({ label: opts.label ?? null, signal: ctx.io.signal });
  if (ctx.json) {
    ctx.printJson(snap);
    return;
  }
  ctx.print(snap.snapshotId);
  ctx.note(
    `Created snapshot ${snap.snapshotId}${snap.label ? ` "${snap.label}"` : ''} of namespace "${snap.namespace}" (${formatBytes(snap.sizeBytes)})`,
  );
}
