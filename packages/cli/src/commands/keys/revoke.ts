/** `trove keys revoke ID`: effective immediately; asks first (or -y). */
import type { Context } from '../../context.js';

export async function run(ctx: Context, [keyId]: [string], opts: { yes?: boolean }): Promise<void> {
  const admin = await ctx.admin();
  await ctx.confirm(`Revoke ${keyId}? Anything using it stops working immediately.`, {
    yes: opts.yes,
    what: `revoke ${keyId}`,
  });
  const res = await admin.keys.revoke(keyId, { signal: ctx.io.signal });
  if (ctx.json) ctx.printJson(res);
  else ctx.note(`Revoked ${res.keyId}`);
}
