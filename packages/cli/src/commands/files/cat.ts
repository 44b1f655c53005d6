/** `trove cat path`: the raw bytes on stdout (`--json`: the content API's text and metadata). */
import type { Context } from '../../context.js';
import { CliError } from '../../errors.js';
import { formatBytes } from '../../output/format.js';
import { pipeToOut } from '../../output/stream.js';

export async function run(ctx: Context, [path]: [string]): Promise<void> {
  const client = await ctx.client();
  if (ctx.json) {
    ctx.printJson(await client.readFile(path, { signal: ctx.io.signal }));
    return;
  }
  const file = await client.readStream(path, { signal: ctx.io.signal });
  const written = await pipeToOut(file.body, ctx.io.stdout, ctx.io.signal);
  if (file.truncated) {
    throw new CliError(
      `output truncated: the server sent the first ${formatBytes(written)} of ${formatBytes(file.sizeBytes)}`,
      {
        hint: 'the server caps a single read (100 MiB by default); split the file with `trove run "split …"`',
      },
    );
  }
}
