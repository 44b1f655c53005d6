/** `POST /v1/exec`: `sh -c <command>` in the namespace, `workspace/` being the namespace tree. */
import type { BaseClient, RequestOptions } from '../client.js';
import { APIConnectionError, APIUserAbortError, TroveError, TroveExecError } from '../errors.js';
import { camelize } from '../internal/camelize.js';
import { ChunkDecoder, type WireChunk } from '../internal/output.js';
import { readSseMessages } from '../internal/sse.js';
import type { ExecExitEvent, ExecResult, ExecStreamEvent } from '../types.js';

/** Options of `exec()`, `execDetailed()` and `execChain()`. */
export interface ExecOptions extends RequestOptions {
  /** UTF-8 text fed to the command's stdin (at most 1 MiB; without it stdin is empty). */
  stdin?: string;
}

/** Exec calls; `TroveClient` exposes them as `exec`, `exec.stream`, `execDetailed` and `execChain`. */
export class Exec {
  constructor(private readonly client: BaseClient) {}

  /**
   * Runs the command and yields its output as it is produced, then one `exit` event
   * (`POST /v1/exec` with `Accept: text/event-stream`). A non-zero exit, and the server's time
   * limit (`exitReason: 'timeout'`, `exitCode` 124, with `error`), are events, not exceptions.
   * The request is sent once, never retried after the server has accepted it; the timeout
   * covers the response headers only (stop a long command with `signal`).
   */
  async *stream(command: string, options: ExecOptions = {}): AsyncGenerator<ExecStreamEvent, void, undefined> {
    const { stdin, ...req } = options;
    assertCommand(command);
    const res = await this.client.request(
      {
        ...req,
        method: 'POST',
        path: '/v1/exec',
        namespaced: true,
        json: stdin === undefined ? { command, stream: true } : { command, stdin, stream: true },
        headers: { accept: 'text/event-stream', ...req.headers },
        stream: true,
      },
      async (r) => r,
    );
    try {
      if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
        // A server without live exec answers with its JSON result: the same events, all at once.
        yield* resultEvents(camelize<ExecResult>(JSON.parse(await res.text())));
        return;
      }
      if (!res.body) throw new TroveError('The exec stream has no body');
      const decoder = new ChunkDecoder();
      let exit: ExecExitEvent | undefined;
      let error: { detail: string; code: string } | undefined;
      for await (const message of readSseMessages(res.body)) {
        if (message.event === 'stdout' || message.event === 'stderr') {
          yield decoder.chunk(message.event, parseData<WireChunk>(message.data, message.event));
        } else if (message.event === 'exit') {
          exit = { type: 'exit', ...camelize<Omit<ExecExitEvent, 'type'>>(parseData(message.data, 'exit')) };
        } else if (message.event === 'error') {
          error = parseData<{ detail: string; code: string }>(message.data, 'error');
        }
        // Other events are from a newer server; skipping them keeps this client working.
      }
      // The server ends the stream after `exit`; an `error` event may come on either side of it.
      if (!exit) throw new APIConnectionError('The exec stream ended before the command did (connection lost?)');
      yield error ? { ...exit, error } : exit;
    } catch (err) {
      if (req.signal?.aborted) throw new APIUserAbortError(undefined, err);
      if (err instanceof TroveError) throw err;
      throw new APIConnectionError(
        `Connection lost while streaming exec output: ${(err as Error)?.message ?? String(err)}`,
        err,
      );
    }
  }

  /** Runs the command; a non-zero exit is a normal result. */
  async detailed(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const { stdin, ...req } = options;
    assertCommand(command);
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

function assertCommand(command: unknown): void {
  if (typeof command !== 'string' || command.trim() === '') throw new TypeError('exec() needs a non-empty command');
}

function parseData<T>(data: string, event: string): T {
  try {
    return JSON.parse(data) as T;
  } catch (err) {
    throw new TroveError(`Malformed "${event}" event from the server: ${data.slice(0, 200)}`, { cause: err });
  }
}

function* resultEvents(result: ExecResult): Generator<ExecStreamEvent> {
  const encoder = new TextEncoder();
  for (const type of ['stdout', 'stderr'] as const) {
    if (result[type]) yield { type, offset: 0, data: encoder.encode(result[type]), text: result[type] };
  }
  yield {
    type: 'exit',
    exitCode: result.exitCode,
    exitReason: result.exitReason ?? 'exited',
    durationMs: result.durationMs,
  };
}
