/** `trove ls [path] [-r]`: names on a pipe, a table (size, modified) on a terminal or with -l. */
import type { Context } from '../../context.js';
import { formatBytes } from '../../output/format.js';
import { formatTimestamp } from '../../output/time.js';
import { relativePath } from '../../paths.js';

export async function run(
  ctx: Context,
  [path]: [string | undefined],
  opts: { recursive?: boolean; long?: boolean },
): Promise<void> {
  const client = await ctx.client();
  const listing = await client.listDir(path ?? 'workspace/', {
    recursive: opts.recursive === true,
    signal: ctx.io.signal,
  });
  if (ctx.json) {
    ctx.printJson(listing);
    return;
  }
  const base = relativePath(path ?? '').replace(/\/+$/, '');
  const prefix = 'workspace/' + (base ? base + '/' : '');
  const display = (p: string, isDir: boolean) => {
    const rel = p.startsWith(prefix) ? p.slice(prefix.length) : p;
    return isDir ? rel + '/' : rel;
  };
  const now = ctx.io.now();
  if (opts.long || ctx.tty) {
    const rows = listing.entries.map((e) => [
      e.isDir ? ctx.out.blue(display(e.path, true)) : display(e.path, false),
      e.isDir ? '-' : formatBytes(e.sizeBytes),
      formatTimestamp(e.modifiedAt, now),
    ]);
    if (rows.length === 0 && ctx.tty) ctx.note(ctx.err.dim(`(empty) ${prefix}`));
    else ctx.printTable(['NAME', 'SIZE', 'MODIFIED'], rows);
  } else {
    for (const e of listing.entries) ctx.print(display(e.path, e.isDir));
  }
  if (listing.truncated) ctx.warn('listing truncated by the server (1,000 entries or 20 levels); list a subdirectory');
}
