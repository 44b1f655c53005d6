/** `trove keys create NAME [-n ns] [--admin]`: the secret goes to stdout, once. */
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';

export async function run(
  ctx: Context,
  [name]: [string],
  opts: { namespace?: string; admin?: boolean },
): Promise<void> {
  if (opts.admin && opts.namespace !== undefined) {
    throw new UsageError('an admin key cannot be locked to a namespace', { hint: 'drop --namespace or --admin' });
  }
  const admin = await ctx.admin();
  const key = await admin.keys.create(name, {
    namespace: opts.namespace ?? null,
    admin: opts.admin === true,
    signal: ctx.io.signal,
  });
  if (ctx.json) {
    ctx.printJson(key);
    return;
  }
  ctx.print(key.apiKey);
  const where = key.namespace ? `, locked to namespace "${key.namespace}"` : '';
  ctx.note(`Created ${key.scope} key ${key.keyId} "${key.name}"${where}.`);
  ctx.note(ctx.err.yellow('Save the key now: it is not shown again.'));
}
