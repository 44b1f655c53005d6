/** How tool results read: plain text an agent can act on, errors as `trove error (HTTP <status>): <detail>`. */
import type { ExecResult, Process, ProcessOutput } from 'trove-sdk';

/** Tool output beyond this many characters is cut (with a note), so one call cannot flood the context. */
export const MAX_TOOL_OUTPUT = 100_000;

/** `[exit N]`, stdout, then `--- stderr ---` and stderr when there is any. */
export function formatExecResult(result: ExecResult): string {
  let text = `[exit ${result.exitCode}]\n${result.stdout}`;
  if (result.stderr)
    text += `${result.stdout && !result.stdout.endsWith('\n') ? '\n' : ''}--- stderr ---\n${result.stderr}`;
  return clip(text);
}

export function clip(text: string, max = MAX_TOOL_OUTPUT): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}\n… [output cut: ${text.length - max} more characters; narrow the command, e.g. with head, tail or grep]`;
}

/** The text of a failed call; never throws. */
export function formatError(err: unknown): string {
  const e = err as { status?: unknown; detail?: unknown; message?: unknown; name?: unknown };
  if (typeof e?.status === 'number') {
    const detail =
      typeof e.detail === 'string' && e.detail
        ? e.detail
        : typeof e.message === 'string'
          ? e.message
          : 'request failed';
    return `trove error (HTTP ${e.status}): ${detail}`;
  }
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  return `trove error: ${message}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/** `running`, or how a process ended: `exited with 3`, `killed by SIGTERM (exit 143)`, `timeout (exit 124)`. */
export function formatProcessState(p: Process): string {
  if (p.state === 'running') return 'running';
  switch (p.exitReason) {
    case 'exited':
      return `exited with ${p.exitCode}`;
    case 'killed':
    case 'signaled':
      return `${p.exitReason} by ${p.signal ?? 'a signal'} (exit ${p.exitCode})`;
    default:
      return `ended: ${p.exitReason ?? 'unknown'} (exit ${p.exitCode})`;
  }
}

/**
 * A process's state, each stream's new output with its byte range, and the offsets to pass next;
 * clipped so that one call cannot flood the context (the offsets still say where to go on).
 */
export function formatProcessOutput(
  p: Process,
  out: { stdout: ProcessOutput; stderr: ProcessOutput },
  asked: { stdout: number; stderr: number },
): string {
  const parts = [`${p.processId}: ${formatProcessState(p)}`];
  for (const name of ['stdout', 'stderr'] as const) {
    const o = out[name];
    const total = Math.max(name === 'stdout' ? p.stdoutBytes : p.stderrBytes, o.nextOffset);
    if (o.offset > asked[name])
      parts.push(`[${o.offset - asked[name]} bytes of ${name} before byte ${o.offset} are no longer kept]`);
    if (o.data.length === 0) {
      parts.push(`--- ${name}: nothing new (${total} bytes in all) ---`);
      continue;
    }
    parts.push(`--- ${name} [bytes ${o.offset}-${o.nextOffset} of ${total}] ---`);
    parts.push(o.text.endsWith('\n') ? o.text.slice(0, -1) : o.text);
  }
  const more = out.stdout.nextOffset < p.stdoutBytes || out.stderr.nextOffset < p.stderrBytes;
  const next = `stdout_offset=${out.stdout.nextOffset}, stderr_offset=${out.stderr.nextOffset}`;
  parts.push(
    more
      ? `more output is waiting: call again with ${next}`
      : p.state === 'running'
        ? `next call: ${next} (the process is still running)`
        : `that is all: the process has ended`,
  );
  return clip(parts.join('\n'));
}
