/**
 * `trove attach ID`: shows a background process's output from now on and forwards this terminal's
 * (or pipe's) stdin to it; end-of-file (Ctrl-D, or the end of a pipe) closes its stdin. Exits
 * with the process's exit code when it ends; Ctrl-C detaches and leaves it running.
 */
import type { TroveClient } from 'trove-sdk';
import type { Context } from '../../context.js';
import { CliError, InterruptedError, RemoteExit } from '../../errors.js';
import { GapNotes, showChunk } from '../../output/chunks.js';
import { status } from './ps.js';

export async function run(ctx: Context, [processId]: [string], opts: { stdin?: boolean }): Promise<void> {
  const client = await ctx.client();
  const proc = await client.processes.get(processId, { signal: ctx.io.signal });
  if (proc.state !== 'running') {
    throw new CliError(`${processId} has ended (${status(proc)}); there is nothing to attach to`, {
      hint: `\`trove logs ${processId}\` shows its output`,
    });
  }
  const forward = opts.stdin !== false && proc.stdinOpen;
  if (!ctx.json && ctx.io.stderr.isTTY) {
    const input = forward ? ', Ctrl-D closes its stdin' : proc.stdinOpen ? '' : ' (its stdin is closed)';
    ctx.note(ctx.err.dim(`attached to ${processId}: output from now on; Ctrl-C detaches${input}`));
  }
  const stdin = forward ? forwardStdin(ctx, client, processId) : undefined;
  const start = { stdout: proc.stdoutBytes, stderr: proc.stderrBytes };
  const gaps = new GapNotes(start);
  try {
    for await (const event of client.processes.stream(processId, {
      stdoutOffset: start.stdout,
      stderrOffset: start.stderr,
      signal: ctx.io.signal,
    })) {
      if (event.type === 'exit') {
        const ended = event.process;
        if (ctx.json) ctx.printJsonLine({ type: 'exit', process: ended });
        else if (ctx.io.stderr.isTTY) ctx.note(ctx.err.dim(`[${processId} ended: ${status(ended)}]`));
        if (ended.exitCode !== 0) throw new RemoteExit(ended.exitCode ?? 1);
        return;
      }
      gaps.see(ctx, event);
      await showChunk(ctx, event);
    }
  } catch (err) {
    if ((err as Error)?.name === 'APIUserAbortError') {
      if (!ctx.json)
        ctx.note(
          ctx.err.dim(
            `detached; ${processId} keeps running (\`trove attach ${processId}\` again, \`trove kill ${processId}\` to stop it)`,
          ),
        );
      throw new InterruptedError();
    }
    throw err;
  } finally {
    stdin?.stop();
  }
}

/**
 * Sends what arrives on local stdin to the process, in order, one request per chunk read; the
 * end of local stdin closes the process's. Stops quietly once the process no longer takes input.
 */
function forwardStdin(ctx: Context, client: TroveClient, processId: string): { stop(): void } {
  const input = ctx.io.stdin;
  let chain: Promise<unknown> = Promise.resolve();
  let open = true;
  const send = (step: () => Promise<unknown>) => {
    chain = chain.then(async () => {
      if (!open) return;
      try {
        await step();
      } catch (err) {
        open = false;
        const e = err as { status?: number; name?: string };
        // 409: the process ended or its stdin was closed meanwhile; the output stream will say how it ended.
        if (e.status !== 409 && e.name !== 'APIUserAbortError')
          ctx.warn(`could not forward stdin: ${(err as Error).message}`);
      }
    });
  };
  const onData = (data: Buffer | string) => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    send(() => client.processes.writeStdin(processId, new Uint8Array(bytes), { signal: ctx.io.signal }));
  };
  const onEnd = () => send(() => client.processes.closeStdin(processId, { signal: ctx.io.signal }));
  input.on('data', onData);
  input.once('end', onEnd);
  input.resume();
  return {
    stop() {
      open = false;
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.pause();
    },
  };
}
