/** `trove snapshot list`: the namespace's snapshots, newest first. */
import type { Context } from '../../context.js';
import { formatBytes } from '../../output/format.js';
import { formatTimestamp } from '../../output/time.js';

export async function run(ctx: Context): Promise<void> {
  const client = await ctx.client();
  const snaps = await client.snapshots.list({ signal: ctx.io.signal });
  if (ctx.json) {
    ctx.printJson({ snapshots: snaps });
    return;
  }
  const now = ctx.io.now();
  ctx.printTable(
    ['SNAPSHOT ID', 'LABEL', 'SIZE', 'CREATED'],
    snaps.map((s) => [s.snapshotId, s.label ?? '-', formatBytes(s.sizeBytes), formatTimestamp(s.createdAt, now)]),
  );
}
