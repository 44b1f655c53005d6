/** `trove keys list`: the workspace's active keys (admin key). */
import type { Context } from '../../context.js';
import { formatTimestamp } from '../../output/time.js';

export async function run(ctx: Context): Promise<void> {
  const admin = await ctx.admin();
  const keys = await admin.keys.list({ signal: ctx.io.signal });
  if (ctx.json) {
    ctx.printJson({ keys });
    return;
  }
  const now = ctx.io.now();
  ctx.printTable(
    ['KEY ID', 'NAME', 'SCOPE', 'NAMESPACE', 'PREFIX', 'CREATED'],
    keys.map((k) => [k.keyId, k.name, k.scope, k.namespace ?? '-', k.prefix + '…', formatTimestamp(k.createdAt, now)]),
  );
}
