/** `trove write path text` (or `-` for stdin): UTF-8 text through `POST /write`. */
import type { Command } from 'commander';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { readAll } from '../../input/stdin.js';
import { formatBytes } from '../../output/format.js';

/** `--jsn`, `-x`: a flag the user probably mistyped, unless it came after `--`. */
const FLAG_LIKE = /^--?[A-Za-z][\w-]*(=.*)?$/;

export async function run(
  ctx: Context,
  [path, text]: [string, string],
  _opts: unknown,
  command: Command,
): Promise<void> {
  // The command accepts unknown options so that text like "- item" works; flag-like words before `--` stay errors.
  const raw: string[] = (command.parent as (Command & { rawArgs?: string[] }) | null)?.rawArgs ?? [];
  const dashDash = raw.indexOf('--');
  for (const word of [path, text]) {
    const afterDashDash = dashDash !== -1 && raw.lastIndexOf(word) > dashDash;
    if (FLAG_LIKE.test(word) && !afterDashDash) {
      throw new UsageError(`unknown option '${word.split('=')[0]}'`, {
        hint: `to write text that starts with "-", put it after --: trove write PATH -- '${word}'`,
      });
    }
  }
  const content = text === '-' ? (await readAll(ctx.io.stdin)).toString('utf8') : text;
  const client = await ctx.client();
  const res = await client.write(path, content, { signal: ctx.io.signal });
  if (ctx.json) ctx.printJson(res);
  else ctx.note(`Wrote ${res.path} (${formatBytes(res.sizeBytes)})`);
}
