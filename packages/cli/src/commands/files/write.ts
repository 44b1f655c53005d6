/** `trove write path text` (or `-` for stdin): UTF-8 text through `POST /write`. */
import type { Context } from '../../context.js';
import { readAll } from '../../input/stdin.js';
import { formatBytes } from '../../output/format.js';

export async function run(ctx: Context, [path, text]: [string, string]): Promise<void> {
  const content = text === '-' ? (await readAll(ctx.io.stdin)).toString('utf8') : text;
  const client = await ctx.client();
  const res = await client.write(path, content, { signal: ctx.io.signal });
  if (ctx.json) ctx.printJson(res);
  else ctx.note(`Wrote ${res.path} (${formatBytes(res.sizeBytes)})`);
}
