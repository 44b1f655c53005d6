/**
 * `trove logs ID`: a background process's output so far (stdout to stdout, stderr to stderr);
 * `-f` follows it live until the process ends, resuming by itself if the connection drops.
 */
import type { Process, TroveClient } from 'trove-sdk';
import type { Context } from '../../context.js';
import { InterruptedError, UsageError } from '../../errors.js';
import { GapNotes, chunkLine, showChunk } from '../../output/chunks.js';
import { writeChunk } from '../../output/stream.js';
import { status } from './ps.js';

type StreamName = 'stdout' | 'stderr';

interface LogsOptions {
  follow?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}

export async function run(ctx: Context, [processId]: [string], opts: LogsOptions): Promise<void> {
  if (opts.stdout && opts.stderr)
    throw new UsageError('--stdout and --stderr together are the default', { hint: 'give one of them, or neither' });
  const wanted: StreamName[] = opts.stdout ? ['stdout'] : opts.stderr ? ['stderr'] : ['stdout', 'stderr'];
  const client = await ctx.client();
  if (opts.follow) return follow(ctx, client, processId, wanted);

  const proc = await client.processes.get(processId, { signal: ctx.io.signal });
  for (const stream of wanted) await printStream(ctx, client, proc, stream);
}

/** Everything retained of one stream, up to what the process had written when the command started. */
async function printStream(ctx: Context, client: TroveClient, proc: Process, stream: StreamName): Promise<void> {
  const end = stream === 'stdout' ? proc.stdoutBytes : proc.stderrBytes;
  const gaps = new GapNotes({ stdout: 0, stderr: 0 });
  let offset = 0;
  while (offset < end) {
    const page = await client.processes.output(proc.processId, { stream, offset, signal: ctx.io.signal });
    if (page.data.length === 0) break;
    const chunk = { type: stream, offset: page.offset, data: page.data };
    gaps.see(ctx, chunk);
    if (ctx.json) ctx.printJsonLine(chunkLine(chunk));
    else await writeChunk(stream === 'stdout' ? ctx.io.stdout : ctx.io.stderr, page.data);
    offset = page.nextOffset;
    if (page.eof) break;
  }
}

async function follow(ctx: Context, client: TroveClient, processId: string, wanted: StreamName[]): Promise<void> {
  const gaps = new GapNotes({ stdout: 0, stderr: 0 });
  try {
    for await (const event of client.processes.stream(processId, { signal: ctx.io.signal })) {
      if (event.type === 'exit') {
        if (ctx.json) ctx.printJsonLine({ type: 'exit', process: event.process });
        else if (ctx.io.stderr.isTTY) ctx.note(ctx.err.dim(`[${processId} ended: ${status(event.process)}]`));
        return;
      }
      if (!wanted.includes(event.type)) continue;
      gaps.see(ctx, event);
      await showChunk(ctx, event);
    }
  } catch (err) {
    // Ctrl-C stops following; the process itself is not touched.
    if ((err as Error)?.name === 'APIUserAbortError') throw new InterruptedError();
    throw err;
  }
}
