/** `trove webhooks create URL [--events a,b] [--source exec] [-n ns] [--description d]`: the signing secret goes to stdout, once. */
import type { Context } from '../../context.js';
import { parseSources } from '../../parse/source.js';

export async function run(
  ctx: Context,
  [url]: [string],
  opts: { events?: string[]; source?: string[]; namespace?: string; description?: string },
): Promise<void> {
  const admin = await ctx.admin();
  const hook = await admin.webhooks.create({
    url,
    events: opts.events && opts.events.length > 0 ? opts.events : ['*'],
    namespace: opts.namespace ?? null,
    ...(opts.source && opts.source.length > 0 ? { sources: parseSources(opts.source) } : {}),
    description: opts.description ?? null,
    signal: ctx.io.signal,
  });
  if (ctx.json) {
    ctx.printJson(hook);
    return;
  }
  ctx.print(hook.signingSecret);
  ctx.note(
    `Created webhook ${hook.webhookId} → ${hook.url} (events: ${hook.events.join(', ')}${hook.sources ? `; made by ${hook.sources.join(', ')}` : ''}${hook.namespace ? `; namespace "${hook.namespace}"` : ''}).`,
  );
  ctx.note(
    ctx.err.yellow('The signing secret above is shown only once: store it where your receiver can verify with it.'),
  );
}
