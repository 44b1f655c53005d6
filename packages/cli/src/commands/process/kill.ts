/** `trove kill ID [--signal S]`: sends a signal (default SIGTERM) to a background process and all it started. */
import type { ProcessSignal } from 'trove-sdk';
import type { Context } from '../../context.js';
import { CliError, RemoteExit, UsageError } from '../../errors.js';

/** The signals the server sends, with their Linux numbers (as `kill -9` users type them). */
const SIGNALS: Record<ProcessSignal, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
  SIGCONT: 18,
  SIGSTOP: 19,
};

/** `TERM`, `sigterm`, `SIGTERM` and `15` all name SIGTERM. */
export function parseSignal(value: string): ProcessSignal {
  const v = value.trim().toUpperCase();
  if (/^\d+$/.test(v)) {
    const byNumber = (Object.keys(SIGNALS) as ProcessSignal[]).find((s) => SIGNALS[s] === Number(v));
    if (byNumber) return byNumber;
  } else {
    const name = (v.startsWith('SIG') ? v : `SIG${v}`) as ProcessSignal;
    if (name in SIGNALS) return name;
  }
  throw new UsageError(`--signal: "${value}" is not a signal the server sends`, {
    hint: `one of ${Object.keys(SIGNALS)
      .map((s) => s.slice(3))
      .join(', ')} (or their numbers)`,
  });
}

export async function run(ctx: Context, [processId]: [string], opts: { signal?: string }): Promise<void> {
  const signal = parseSignal(opts.signal ?? 'TERM');
  const client = await ctx.client();
  const result = await client.processes.signal(processId, signal, { signal: ctx.io.signal });
  if (ctx.json) {
    ctx.printJson(result);
    // Same exit status as kill(1) for a process that is gone; the JSON already says why.
    if (!result.delivered) throw new RemoteExit(1);
    return;
  }
  if (!result.delivered) {
    throw new CliError(`${processId} has already exited; no signal was sent`, {
      hint: `\`trove ps -a\` shows how it ended`,
    });
  }
  ctx.note(`sent ${signal} to ${processId}`);
}
