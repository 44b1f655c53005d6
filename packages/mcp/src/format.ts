/** How tool results read: plain text an agent can act on, errors as `trove error (HTTP <status>): <detail>`. */
import type { ExecResult } from 'trove-sdk';

/** Tool output beyond this many characters is cut (with a note), so one call cannot flood the context. */
export const MAX_TOOL_OUTPUT = 100_000;

/** `[exit N]`, stdout, then `--- stderr ---` and stderr when there is any. */
export function formatExecResult(result: ExecResult): string {
  let text = `[exit ${result.exitCode}]\n${result.stdout}`;
  if (result.stderr) text += `${result.stdout && !result.stdout.endsWith('\n') ? '\n' : ''}--- stderr ---\n${result.stderr}`;
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
    const detail = typeof e.detail === 'string' && e.detail ? e.detail : typeof e.message === 'string' ? e.message : 'request failed';
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
