/** `POST /v1/exec`: `sh -c <command>` in the namespace, `workspace/` being the namespace tree. */
import type { BaseClient, RequestOptions } from '../client.js';
import { TroveExecError } from '../errors.js';
import type { ExecResult } from '../types.js';

/** Options of `exec()`, `execDetailed()` and `execChain()`. */
export interface ExecOptions extends RequestOptions {
  /** UTF-8 text fed to the command's stdin (at most 1 MiB; without it stdin is empty). */
  stdin?: string;
}

/** Exec calls; `TroveClient` exposes them as `exec`, `execDetailed` and `execChain`. */
export class Exec {
  constructor(private readonly client: BaseClient) {}

  /** Runs the command; a non-zero exit is a normal result. */
  async detailed(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const { stdin, ...req } = options;
    if (typeof command !== 'string' || command.trim() === '') throw new TypeError('exec() needs a non-empty command');
    return this.client.requestJson<ExecResult>({
      ...req,
      method: 'POST',
      path: '/v1/exec',
      namespaced: true,
      json: stdin === undefined ? { command } : { command, stdin },
    });
  }

  /** Runs the command and returns stdout; a non-zero exit throws `TroveExecError`. */
  async run(command: string, options?: ExecOptions): Promise<string> {
    const result = await this.detailed(command, options);
    if (result.exitCode !== 0) throw new TroveExecError({ command, ...result });
    return result.stdout;
  }

  /** Joins commands as `{ c1; } && { c2; }` (see `joinChain`) so each runs only if the previous one succeeded. */
  async chain(commands: string[], options?: ExecOptions): Promise<string> {
    if (!Array.isArray(commands) || commands.length === 0 || commands.some((c) => typeof c !== 'string' || !c.trim())) {
      throw new TypeError('execChain() needs a non-empty list of non-empty commands');
    }
    return this.run(joinChain(commands), options);
  }
}

/**
 * `{ c1; } && { c2; }`, written with a newline where the `;` goes (`{ c1\n} && { c2\n}`), which
 * the shell reads the same way but which also survives commands ending in `\;` (find -exec),
 * `;`, `&`, a `# comment` or a heredoc.
 */
export function joinChain(commands: string[]): string {
  return commands.map((c) => `{ ${c}\n}`).join(' && ');
}
