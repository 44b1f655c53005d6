/** `trove ps`: the namespace's background processes, newest first (running ones; `-a` also those that ended). */
import type { Process } from 'trove-sdk';
import type { Context } from '../../context.js';
import { formatBytes } from '../../output/format.js';
import { formatTimestamp } from '../../output/time.js';

export async function run(ctx: Context, _args: unknown[], opts: { all?: boolean; limit?: number }): Promise<void> {
  const client = await ctx.client();
  const processes = await client.processes.list({
    state: opts.all ? undefined : 'running',
    limit: opts.limit,
    signal: ctx.io.signal,
  });
  if (ctx.json) {
    ctx.printJson({ processes });
    return;
  }
  const now = ctx.io.now();
  const width = Math.max(20, (ctx.io.stdout.columns ?? 100) - 70);
  ctx.printTable(
    ['PROCESS ID', 'STATUS', 'STARTED', 'OUTPUT', 'COMMAND'],
    processes.map((p) => [
      p.processId,
      status(p, ctx),
      formatTimestamp(p.startedAt, now),
      formatBytes(p.stdoutBytes + p.stderrBytes),
      oneLine(p.command, p.commandTruncated, ctx.tty ? width : Infinity),
    ]),
  );
  if (processes.length === 0 && ctx.io.stderr.isTTY) {
    ctx.note(
      ctx.err.dim(opts.all ? 'no processes' : 'no running processes (`trove ps -a` also lists those that ended)'),
    );
  }
}

/** `running`, or how it ended with its exit code: `exited 0`, `killed 143 (SIGTERM)`, `oom 137`. */
export function status(p: Process, ctx?: Context): string {
  if (p.state === 'running') return ctx ? ctx.out.green('running') : 'running';
  const text = `${p.exitReason ?? 'exited'} ${p.exitCode ?? '-'}${p.signal ? ` (${p.signal})` : ''}`;
  if (!ctx) return text;
  return p.exitReason === 'exited' && p.exitCode === 0 ? text : ctx.out.red(text);
}

function oneLine(command: string, truncated: boolean, max: number): string {
  const flat = command.replace(/\s+/g, ' ').trim();
  if (flat.length <= max && !truncated) return flat;
  return flat.slice(0, Math.max(1, Math.min(flat.length, max) - 1)) + '…';
}
