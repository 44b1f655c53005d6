/**
 * `TroveShell`: the OpenAI Agents SDK's `Shell` (what `shellTool({ shell })` runs) over one Trove namespace.
 * Each command is a background process with its own time limit, started in the namespace directory; its
 * output is streamed and kept within the action's `maxOutputLength`.
 */
import type { Shell, ShellAction, ShellOutputResult, ShellResult } from '@openai/agents-core';
import type { TroveClient } from 'trove-sdk';
import { OutputBuffer } from './output-buffer.js';
import { WORKING_DIRECTORY } from './paths.js';

/** Options of `new TroveShell()`. */
export interface TroveShellOptions {
  /** Time limit of one command in ms when the action sets none (default 120000). */
  timeoutMs?: number;
  /** Characters kept of each of stdout and stderr when the action sets no `maxOutputLength` (default 100000). */
  maxOutputLength?: number;
}

/** Runs the model's shell commands in a Trove namespace. */
export class TroveShell implements Shell {
  readonly #timeoutMs: number;
  readonly #maxOutputLength: number;

  /** `client` is bound to the namespace (`new TroveClient({ namespace })` or `client.withNamespace(ns)`). */
  constructor(
    readonly client: TroveClient,
    options: TroveShellOptions = {},
  ) {
    this.#timeoutMs = options.timeoutMs ?? 120_000;
    this.#maxOutputLength = options.maxOutputLength ?? 100_000;
  }

  /**
   * Runs the action's commands one after another, each in a fresh shell in the namespace directory (so `cd`
   * does not carry over; files do). A command past its time limit is killed, reported as `timeout`, and the
   * commands after it are not run. A command that cannot be started is reported with exit code `null` and
   * the reason on stderr.
   */
  async run(action: ShellAction): Promise<ShellResult> {
    const timeoutMs = action.timeoutMs ?? this.#timeoutMs;
    const limit = action.maxOutputLength ?? this.#maxOutputLength;
    const output: ShellOutputResult[] = [];
    for (const command of action.commands) {
      const result = await this.#runOne(command, timeoutMs, limit);
      output.push(result);
      if (result.outcome.type === 'timeout') break;
    }
    return { output, maxOutputLength: limit, providerData: { working_directory: WORKING_DIRECTORY } };
  }

  async #runOne(command: string, timeoutMs: number, limit: number): Promise<ShellOutputResult> {
    let processId: string;
    try {
      const proc = await this.client.processes.start(`cd workspace || exit 1\n${command}`, {
        closeStdin: true,
        processTimeoutMs: timeoutMs,
      });
      processId = proc.processId;
    } catch (err) {
      return {
        command,
        stdout: '',
        stderr: `Could not start the command: ${describe(err)}`,
        outcome: { type: 'exit', exitCode: null },
      };
    }
    const stdout = new OutputBuffer(limit);
    const stderr = new OutputBuffer(limit);
    try {
      for await (const event of this.client.processes.stream(processId)) {
        if (event.type === 'exit') {
          const { exitCode, exitReason } = event.process;
          return {
            command,
            stdout: stdout.toString(),
            stderr: stderr.toString(),
            outcome: exitReason === 'timeout' ? { type: 'timeout' } : { type: 'exit', exitCode },
          };
        }
        (event.type === 'stdout' ? stdout : stderr).append(event.text);
      }
      throw new Error('the output stream ended before the command did');
    } catch (err) {
      // Lost track of it: it must not run on unseen.
      await this.client.processes.signal(processId, 'SIGKILL').catch(() => {});
      return {
        command,
        stdout: stdout.toString(),
        stderr: `${stderr.toString()}${stderr.toString() ? '\n' : ''}Lost the command's output: ${describe(err)}`,
        outcome: { type: 'exit', exitCode: null },
      };
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
