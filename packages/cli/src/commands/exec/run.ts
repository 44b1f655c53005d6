/**
 * `trove run "<cmd>"`: runs `sh -c` in the namespace and exits with the command's exit code.
 * On a terminal (or with `--stream`) output shows as it is produced; `--background` starts it as
 * a background process instead and prints its id.
 */
import type { ExecExitEvent, TroveClient } from 'trove-sdk';
import type { Context } from '../../context.js';
import { CliError, RemoteExit, UsageError } from '../../errors.js';
import { readAll } from '../../input/stdin.js';
import { showChunk } from '../../output/chunks.js';
import { parseDuration } from '../../parse/duration.js';

/** docs/protocol.md: exec stdin is at most 1 MiB of UTF-8. */
const MAX_STDIN = 1024 * 1024;

/** The hint for the server's exec time limit, whichever way it is reported. */
export const EXEC_TIMEOUT_HINT =
  'the server stops commands at its time limit (TROVE_EXEC_TIMEOUT_MS, 30 s by default); `trove run --background` has none';

interface RunOptions {
  stdin?: boolean;
  stream?: boolean;
  background?: boolean;
  timeout?: string;
  env?: string[];
}

export async function run(ctx: Context, [words]: [string[]], opts: RunOptions): Promise<void> {
  const command = words.join(' ');
  if (command.trim() === '') throw new UsageError('the command is empty', { hint: 'trove run "ls -la workspace"' });
  if (!opts.background && (opts.timeout !== undefined || opts.env !== undefined)) {
    throw new UsageError(`${opts.timeout !== undefined ? '--timeout' : '--env'} needs --background`, {
      hint: 'a one-shot command runs under the server’s exec limit and environment',
    });
  }
  if (opts.background && opts.stream)
    throw new UsageError('--stream and --background do not go together', {
      hint: 'follow a background process with `trove logs -f ID`',
    });
  const processTimeoutMs = opts.timeout === undefined ? undefined : parseDuration(opts.timeout, '--timeout');
  const env = opts.env === undefined ? undefined : parseEnv(opts.env);

  let stdin: string | undefined;
  let piped = false;
  // Piped input is forwarded; a terminal is never read (the command would wait for nothing).
  if (opts.stdin !== false && ctx.io.stdin.isTTY !== true) {
    piped = true;
    const bytes = await readAll(ctx.io.stdin);
    if (bytes.length > MAX_STDIN) {
      throw new UsageError(`stdin is ${bytes.length} bytes; exec takes at most 1 MiB`, {
        hint: 'upload it first (`trove put - workspace/input.bin`) and read the file in the command',
      });
    }
    if (bytes.length > 0) stdin = bytes.toString('utf8');
  }
  const client = await ctx.client();

  if (opts.background) {
    // Piped input ends like a pipe does (EOF after it); from a terminal, stdin stays open for `trove attach`.
    const proc = await client.processes.start(command, {
      stdin,
      closeStdin: piped ? true : undefined,
      processTimeoutMs,
      env,
      signal: ctx.io.signal,
    });
    if (ctx.json) ctx.printJson(proc);
    else {
      ctx.print(proc.processId);
      if (ctx.io.stderr.isTTY) {
        ctx.note(
          ctx.err.dim(
            `started in the background; follow it with \`trove logs -f ${proc.processId}\`, stop it with \`trove kill ${proc.processId}\``,
          ),
        );
      }
    }
    return;
  }

  // Live on a terminal, where a person watches; buffered into one result on a pipe, as before.
  const live = opts.stream ?? (ctx.tty && !ctx.json);
  if (live) return runLive(ctx, client, command, stdin);

  const result = await client.execDetailed(command, { stdin, signal: ctx.io.signal });
  if (ctx.json) ctx.printJson(result);
  else {
    if (result.stdout) ctx.io.stdout.write(result.stdout);
    if (result.stderr) ctx.io.stderr.write(result.stderr);
  }
  if (result.exitCode !== 0) throw new RemoteExit(result.exitCode);
}

async function runLive(ctx: Context, client: TroveClient, command: string, stdin: string | undefined): Promise<void> {
  let exit: ExecExitEvent | undefined;
  for await (const event of client.exec.stream(command, { stdin, signal: ctx.io.signal })) {
    if (event.type === 'exit') exit = event;
    else await showChunk(ctx, event);
  }
  if (!exit) throw new CliError('the server ended the command’s output without its exit status');
  if (ctx.json) ctx.printJsonLine(exit);
  // The same outcome as the buffered path, where the server answers 408: exit 1 with its message.
  if (exit.error)
    throw new CliError(exit.error.detail, { hint: exit.error.code === 'exec_timeout' ? EXEC_TIMEOUT_HINT : undefined });
  if (exit.exitCode !== 0) throw new RemoteExit(exit.exitCode);
}

function parseEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? '' : pair.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new UsageError(`--env: "${pair}" is not NAME=VALUE`, { hint: '--env PORT=3000 (repeat for more)' });
    }
    env[name] = pair.slice(eq + 1);
  }
  return env;
}
