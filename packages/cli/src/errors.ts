/**
 * Errors the commands throw on purpose. Only bin.ts turns them (and the SDK's
 * errors) into a message and an exit code.
 */

/** Exit codes scripts can rely on. */
export const ExitCode = {
  ok: 0,
  error: 1,
  auth: 2,
  noProfile: 3,
  network: 4,
  interrupted: 130,
} as const;

/** A failure with a message for the user, an optional suggested fix and an exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(message: string, opts: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.error;
    this.hint = opts.hint;
  }
}

/** Bad arguments or flags. */
export class UsageError extends CliError {}

/** No credentials: no profile saved, no TROVE_API_KEY, or an unknown --profile. */
export class NoProfileError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, {
      exitCode: ExitCode.noProfile,
      hint: hint ?? 'run `trove login --api-key trove-sk-…` or set TROVE_API_KEY (and TROVE_WORKSPACE_ID)',
    });
  }
}

/** A destructive command without -y when nobody can be asked. */
export class ConfirmationRequiredError extends CliError {
  constructor(what: string) {
    super(`refusing to ${what} without confirmation`, {
      hint: 'pass -y/--yes (stdin is not a terminal, so there is nobody to ask)',
    });
  }
}

/** The user answered "no" to a confirmation prompt. */
export class DeclinedError extends CliError {
  constructor() {
    super('cancelled', { exitCode: ExitCode.error });
  }
}

/** Ctrl-C: stop quietly with 130. */
export class InterruptedError extends CliError {
  constructor() {
    super('interrupted', { exitCode: ExitCode.interrupted });
  }
}

/**
 * Not a failure of the CLI: `trove run` ends with the remote command's exit code.
 * Nothing is printed for it.
 */
export class RemoteExit extends Error {
  readonly exitCode: number;
  constructor(exitCode: number) {
    super(`remote command exited with ${exitCode}`);
    this.exitCode = exitCode;
  }
}
