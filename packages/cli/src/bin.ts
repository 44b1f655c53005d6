#!/usr/bin/env node
/**
 * The entry point and the only place that prints errors and chooses the exit
 * code. Commands throw; `main` turns what they throw into `error: …` + a hint.
 */
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { IO } from './context.js';
import { CliError, ExitCode, RemoteExit } from './errors.js';
import { colorEnabled, palette } from './output/color.js';
import { buildProgram } from './program.js';

interface Failure {
  message: string | null;
  hint?: string;
  exitCode: number;
  details?: string[];
  /** Not a failure the CLI anticipated: suggest --debug. */
  unexpected?: boolean;
}

/** Runs the CLI with `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[], io: IO): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.ok;
  } catch (err) {
    const debug = argv.includes('--debug') || io.env.TROVE_DEBUG === '1';
    const f = describe(err, io);
    if (f.message !== null) {
      // The same rule as every command's output: a terminal, unless NO_COLOR (FORCE_COLOR wins over a pipe).
      const { red, dim } = palette(colorEnabled(io.stderr, io.env));
      io.stderr.write(`${red('error:')} ${f.message}\n`);
      if (f.hint) io.stderr.write(`${dim('hint:')} ${f.hint}\n`);
      if (debug) {
        for (const line of f.details ?? []) io.stderr.write(dim(`debug: ${line}`) + '\n');
        if (err instanceof Error && err.stack) io.stderr.write(dim(err.stack) + '\n');
        const cause = err instanceof Error ? (err as { cause?: unknown }).cause : undefined;
        if (cause instanceof Error && cause.stack) io.stderr.write(dim(`cause: ${cause.stack}`) + '\n');
      } else if (f.unexpected) {
        io.stderr.write(dim('hint: run again with --debug for details') + '\n');
      }
    }
    return f.exitCode;
  }
}

/** The message, suggested fix and exit code for anything a command can throw. */
function describe(err: unknown, io: IO): Failure {
  const e = err as {
    name?: string;
    code?: string;
    exitCode?: number;
    status?: number;
    detail?: string;
    requestId?: string;
    message?: string;
    hint?: string;
  };
  const name = e?.name ?? '';

  // `trove run`: the remote command's own exit code, nothing to print.
  if (err instanceof RemoteExit) return { message: null, exitCode: err.exitCode };
  // commander already printed its own usage message (or the help/version text).
  if (name === 'CommanderError') {
    const quiet = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help';
    return { message: null, exitCode: quiet ? 0 : (e.exitCode ?? 1) };
  }
  if (name === 'APIUserAbortError' || name === 'InterruptedError' || io.signal.aborted) {
    return { message: null, exitCode: ExitCode.interrupted };
  }
  if (err instanceof CliError) {
    if (err.exitCode === ExitCode.interrupted) return { message: null, exitCode: err.exitCode };
    return { message: err.message, hint: err.hint, exitCode: err.exitCode };
  }
  if (name === 'APIConnectionError' || name === 'APIConnectionTimeoutError') {
    return {
      message: e.message ?? 'cannot reach the server',
      hint:
        name === 'APIConnectionTimeoutError'
          ? 'the server did not answer in time; `trove doctor` checks latency'
          : 'is the server running? check --base-url / TROVE_BASE_URL, or run `trove doctor`',
      exitCode: ExitCode.network,
    };
  }
  if (typeof e?.status === 'number' && (name.endsWith('Error') || e.detail !== undefined)) {
    return describeApiError(e as Required<Pick<typeof e, 'status'>> & typeof e);
  }
  const message = err instanceof Error ? err.message : String(err);
  return { message: message || 'unexpected error', exitCode: ExitCode.error, unexpected: true };
}

function describeApiError(e: {
  status: number;
  code?: string;
  detail?: string;
  message?: string;
  requestId?: string;
}): Failure {
  const detail = e.detail ?? e.message ?? `HTTP ${e.status}`;
  const details = [
    `HTTP ${e.status}${e.code ? ` (${e.code})` : ''}`,
    ...(e.requestId ? [`request id ${e.requestId}`] : []),
  ];
  const base = { message: detail, details };
  switch (e.status) {
    case 401:
      return {
        ...base,
        hint: 'the key is invalid or revoked: run `trove login --api-key trove-sk-…` (or fix TROVE_API_KEY)',
        exitCode: ExitCode.auth,
      };
    case 403:
      if (e.code === 'namespace_forbidden' || /locked to namespace/i.test(detail)) {
        return {
          ...base,
          hint: 'drop -n/--namespace (the key uses its own) or use a key for that namespace',
          exitCode: ExitCode.auth,
        };
      }
      if (/admin keys cannot use runtime/i.test(detail)) {
        return {
          ...base,
          hint: 'files, run and snapshots need a workspace key: use --profile with a runtime key',
          exitCode: ExitCode.auth,
        };
      }
      if (/cannot manage|admin/i.test(detail)) {
        return {
          ...base,
          hint: 'this needs an admin key: `trove login --api-key <admin key> --save-as admin`, then add --profile admin',
          exitCode: ExitCode.auth,
        };
      }
      return { ...base, exitCode: ExitCode.auth };
    case 400:
      if (e.code === 'namespace_required' || /X-Namespace header required/i.test(detail)) {
        return {
          ...base,
          message: 'this key needs a namespace',
          hint: 'pass -n NAMESPACE, set TROVE_NAMESPACE, or save one with `trove login --namespace NAMESPACE`',
          exitCode: ExitCode.error,
        };
      }
      if (e.code === 'path_is_directory')
        return { ...base, hint: 'it is a directory: use `trove ls`, or -r', exitCode: 1 };
      return { ...base, exitCode: ExitCode.error };
    case 404:
      if (e.code === 'path_not_found' || /^Path not found/.test(detail))
        return { ...base, hint: '`trove ls` shows what exists', exitCode: 1 };
      if (e.code === 'snapshot_not_found')
        return { ...base, hint: '`trove snapshot list` shows the snapshots of this namespace', exitCode: 1 };
      if (e.code === 'key_not_found') return { ...base, hint: '`trove keys list` shows the active keys', exitCode: 1 };
      if (e.code === 'webhook_not_found')
        return { ...base, hint: '`trove webhooks list` shows the endpoints', exitCode: 1 };
      return { ...base, exitCode: ExitCode.error };
    case 408:
      return {
        ...base,
        hint: 'the server stops commands at its time limit (TROVE_EXEC_TIMEOUT_MS, 30 s by default)',
        exitCode: 1,
      };
    case 413:
      return { ...base, hint: 'the file or the namespace is over the server’s size limit or quota', exitCode: 1 };
    case 429:
      return { ...base, hint: 'rate limited: wait a moment and try again', exitCode: 1 };
  }
  if (e.status >= 500) {
    return {
      ...base,
      hint: `the server failed${e.requestId ? `; quote request id ${e.requestId} when reporting it` : ''} (\`trove doctor\` checks its health)`,
      exitCode: ExitCode.error,
    };
  }
  return { ...base, exitCode: ExitCode.error };
}

function nodeIO(signal: AbortSignal): IO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    home: homedir(),
    cwd: process.cwd(),
    now: () => new Date(),
    signal,
  };
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/** Runs `trove` as a process: signals, exit code. Also called by the package's `bin/trove.js`. */
export async function runCli(): Promise<void> {
  const controller = new AbortController();
  // First Ctrl-C: commands stop cleanly (tail, listen, serve end their loops); a second one,
  // or a command that does not stop within 2 s, exits at once.
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(ExitCode.interrupted);
    controller.abort();
    setTimeout(() => process.exit(ExitCode.interrupted), 2000).unref();
  });
  process.on('SIGTERM', () => {
    controller.abort();
    setTimeout(() => process.exit(143), 2000).unref();
  });
  // A closed pipe (`trove cat big | head`) is a normal way for a reader to stop.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(ExitCode.ok);
  });
  const code = await main(process.argv.slice(2), nodeIO(controller.signal));
  // Exit explicitly (keep-alive sockets would hold the process open) once output is flushed.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

if (isEntryPoint()) void runCli();
