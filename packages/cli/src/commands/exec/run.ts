/** `trove run "<cmd>"`: runs `sh -c` in the namespace and exits with the command's exit code. */
import type { Context } from '../../context.js';
import { RemoteExit, UsageError } from '../../errors.js';
import { readAll } from '../../input/stdin.js';

/** PROTOCOL.md: exec stdin is at most 1 MiB of UTF-8. */
const MAX_STDIN = 1024 * 1024;

export async function run(ctx: Context, [words]: [string[]], opts: { stdin?: boolean }): Promise<void> {
  const command = words.join(' ');
  if (command.trim() === '') throw new UsageError('the command is empty', { hint: 'trove run "ls -la workspace"' });
  let stdin: string | undefined;
  // Piped input is forwarded; a terminal is never read (the command would wait for nothing).
  if (opts.stdin !== false && ctx.io.stdin.isTTY !== true) {
    const bytes = await readAll(ctx.io.stdin);
    if (bytes.length > MAX_STDIN) {
      throw new UsageError(`stdin is ${bytes.length} bytes; exec takes at most 1 MiB`, {
        hint: 'upload it first (`trove put - workspace/input.bin`) and read the file in the command',
      });
    }
    if (bytes.length > 0) stdin = bytes.toString('utf8');
  }
  const client = await ctx.client();
  const result = await client.execDetailed(command, { stdin, signal: ctx.io.signal });
  if (ctx.json) ctx.printJson(result);
  else {
    if (result.stdout) ctx.io.stdout.write(result.stdout);
    if (result.stderr) ctx.io.stderr.write(result.stderr);
  }
  if (result.exitCode !== 0) throw new RemoteExit(result.exitCode);
}
