/**
 * The shell text the sandbox runs: limits first, then the namespace's
 * init.sh, then the caller's command, all in one `sh -c` so functions,
 * aliases and variables from init.sh are visible to the command.
 */
import { FD } from './bwrap.js';

export interface ScriptLimits {
  cpuSeconds: number;
  maxFileBytes: number;
  maxOpenFiles: number;
  maxProcs: number;
  /** RLIMIT_DATA (private writable memory per process), 0 = none. */
  dataBytes: number;
}

export const INIT_SCRIPT = 'workspace/.trove/init.sh';

/**
 * Commands longer than this travel in a file instead of argv: Linux caps a
 * single argument at 128 KiB (MAX_ARG_STRLEN), and agents do send large
 * heredocs.
 */
export const MAX_INLINE_COMMAND_BYTES = 64 * 1024;

/**
 * Builds `<limits line>\n<init line>\n<command>`.
 *
 * The limits are set by the sandbox's own shell, before any user code runs,
 * as hard limits (dash sets soft and hard together), so nothing later can
 * raise them. Setting them here rather than with prlimit(1) saves a process
 * per exec. The shell then writes one byte on the ready descriptor and closes
 * it: the server knows the sandbox came up, so a later non-zero exit is the
 * command's and never a sandbox failure. The command comes after a newline at
 * top level and is parsed only once init.sh has run (aliases work).
 */
export function buildScript(
  command: string,
  limits: ScriptLimits,
  sourceInit: boolean,
  /** Source the command from this file instead of inlining it (see MAX_INLINE_COMMAND_BYTES). */
  commandFile?: string,
  /** Variables exported before init.sh and the command (background processes); names are checked by the caller. */
  env?: Record<string, string>,
): string {
  // Security: hard limits (dash sets soft and hard together) so the command cannot raise them.
  const ulimits: string[] = ['ulimit -c 0'];
  // Hard one second above soft: the soft limit sends a catchable SIGXCPU, the hard one SIGKILL.
  if (limits.cpuSeconds > 0) ulimits.push(`ulimit -S -t ${limits.cpuSeconds} && ulimit -H -t ${limits.cpuSeconds + 1}`);
  // dash counts -f in 512-byte blocks and -d in KiB.
  if (limits.maxFileBytes > 0) ulimits.push(`ulimit -f ${Math.max(1, Math.floor(limits.maxFileBytes / 512))}`);
  if (limits.maxOpenFiles > 0) ulimits.push(`ulimit -n ${limits.maxOpenFiles}`);
  // dash names RLIMIT_NPROC -p, bash and busybox -u (bash's -p is the read-only pipe size, so it fails over).
  if (limits.maxProcs > 0)
    ulimits.push(`{ ulimit -p ${limits.maxProcs} 2>/dev/null || ulimit -u ${limits.maxProcs}; }`);
  if (limits.dataBytes > 0) ulimits.push(`ulimit -d ${Math.max(1, Math.floor(limits.dataBytes / 1024))}`);
  const fd = FD.ready;
  const lines = [`${ulimits.join(' && ')} || exit 125; umask 022; printf . >&${fd}; exec ${fd}>&-`];
  // Security: exported by the sandbox's unprivileged shell, never given to bwrap or trove-enter: they run as
  // root before the command drops to the exec uid, and must not see LD_PRELOAD and the like.
  const exports = exportLine(env);
  if (exports) lines.push(exports);
  // `if` rather than `&&` so a missing init.sh leaves $? at 0 for the command.
  if (sourceInit) lines.push(`if [ -f ${INIT_SCRIPT} ]; then . ./${INIT_SCRIPT}; fi`);
  lines.push(commandFile ? `. ${commandFile}` : command);
  return lines.join('\n');
}

/** Shell-safe name: letters, digits and `_`, not starting with a digit. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `export A='x' B='y'`, values single-quoted (a quote becomes '\''); null when there is nothing to export. */
export function exportLine(env: Record<string, string> | undefined): string | null {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(env ?? {})) {
    // Security: anything else could inject shell syntax; the API refuses such names before this.
    if (!ENV_NAME.test(name) || value.includes('\0'))
      throw new Error(`invalid environment variable ${JSON.stringify(name)}`);
    parts.push(`${name}='${value.replace(/'/g, `'\\''`)}'`);
  }
  return parts.length > 0 ? `export ${parts.join(' ')}` : null;
}
