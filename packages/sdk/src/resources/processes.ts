/**
 * `/v1/processes`: background commands that outlive the request that started them, with their
 * output kept on the server (from any byte offset, or live over SSE with `Last-Event-ID` resume).
 */
import type { BaseClient, RequestOptions } from '../client.js';
import { APIConnectionError, APIUserAbortError, TroveError } from '../errors.js';
import { camelize } from '../internal/camelize.js';
import { ChunkDecoder, wireBytes, type WireChunk } from '../internal/output.js';
import { sleep } from '../internal/sleep.js';
import { readSseMessages } from '../internal/sse.js';
import type {
  OutputStreamName,
  Process,
  ProcessCloseStdinResult,
  ProcessOutput,
  ProcessSignal,
  ProcessSignalResult,
  ProcessState,
  ProcessStdinResult,
  ProcessStreamEvent,
} from '../types.js';

/** Parameters of `processes.start()`. */
export interface ProcessStartParams extends RequestOptions {
  /** UTF-8 text written to the process's stdin at the start; stdin then stays open unless `closeStdin`. */
  stdin?: string;
  /** Close stdin once `stdin` (if any) is written, so the command reads end-of-file. */
  closeStdin?: boolean;
  /** The process's wall-clock limit in ms (sent as `timeout_ms`; default none, the server caps it). */
  processTimeoutMs?: number | null;
  /** Environment variables for the command. */
  env?: Record<string, string>;
}

/** Filters of `processes.list()`. */
export interface ProcessListParams extends RequestOptions {
  /** Only running, or only exited, processes (default both). */
  state?: ProcessState;
  /** At most this many, newest first. */
  limit?: number;
}

/** Parameters of `processes.output()`. */
export interface ProcessOutputParams extends RequestOptions {
  /** `stdout` (default) or `stderr`. */
  stream?: OutputStreamName;
  /** First byte to read (default 0); below the oldest retained byte, reading starts there. */
  offset?: number;
  /** At most this many bytes (server default 1 MiB, max 4 MiB). */
  limit?: number;
}

/** Parameters of `processes.stream()`. */
export interface ProcessStreamParams {
  /** First stdout byte wanted (default 0: everything retained). */
  stdoutOffset?: number;
  /** First stderr byte wanted (default 0). */
  stderrOffset?: number;
  /** Resume after an event id seen earlier (`"<stdout>:<stderr>"` offsets); overrides the offsets. */
  lastEventId?: string;
  /**
   * Reconnections in a row without receiving anything before giving up with `APIConnectionError`
   * (default 5; 0 disables). Each one sends `Last-Event-ID`, so no byte is lost or repeated.
   */
  maxReconnects?: number;
  /** Stops the stream; the iteration then rejects with `APIUserAbortError`. */
  signal?: AbortSignal;
  /** Extra headers for each request. */
  headers?: Record<string, string>;
}

/** Parameters of `processes.writeStdin()`. */
export interface ProcessWriteStdinParams extends RequestOptions {
  /** Close stdin after writing (end-of-file for the command). */
  close?: boolean;
}

/** Parameters of `processes.wait()`. */
export interface ProcessWaitParams extends RequestOptions {
  /** Give up after this long and resolve with the process still `running` (default: wait until it exits). */
  maxWaitMs?: number;
}

/** The longest hold the server grants one `wait` request, in seconds. */
const MAX_WAIT_SECONDS = 60;

/** Background processes of the namespace (`client.processes`). */
export class Processes {
  constructor(private readonly client: BaseClient) {}

  /**
   * Starts `sh -c command` in the background (`POST /v1/processes`) and returns it at once.
   * Throws `RateLimitError` (429 `exec_busy`) when the namespace already runs its limit of processes.
   */
  async start(command: string, params: ProcessStartParams = {}): Promise<Process> {
    const { stdin, closeStdin, processTimeoutMs, env, ...req } = params;
    if (typeof command !== 'string' || command.trim() === '')
      throw new TypeError('processes.start() needs a non-empty command');
    const body: Record<string, unknown> = { command };
    if (stdin !== undefined) body.stdin = stdin;
    if (closeStdin !== undefined) body.close_stdin = closeStdin;
    if (processTimeoutMs !== undefined) body.timeout_ms = processTimeoutMs;
    // Variable names are the caller's own: sent as given, not converted.
    if (env !== undefined) body.env = env;
    return this.client.requestJson<Process>({
      ...req,
      method: 'POST',
      path: '/v1/processes',
      namespaced: true,
      json: body,
    });
  }

  /** Running and recently exited processes of the namespace, newest first. */
  async list(params: ProcessListParams = {}): Promise<Process[]> {
    const { state, limit, ...req } = params;
    const res = await this.client.requestJson<{ processes: Process[] }>({
      ...req,
      method: 'GET',
      path: '/v1/processes',
      query: { state, limit },
      namespaced: true,
    });
    return res.processes;
  }

  /** One process; `NotFoundError` (`process_not_found`) for unknown ids and other namespaces' processes. */
  async get(processId: string, options?: RequestOptions): Promise<Process> {
    return this.client.requestJson<Process>({
      ...options,
      method: 'GET',
      path: processPath(processId),
      namespaced: true,
    });
  }

  /**
   * Reads output from a byte offset (`GET …/output`). Read on from `nextOffset` until `eof`; a
   * returned `offset` above the one asked for means the bytes between were dropped (`droppedBytes`).
   */
  async output(processId: string, params: ProcessOutputParams = {}): Promise<ProcessOutput> {
    const { stream = 'stdout', offset = 0, limit, ...req } = params;
    const raw = await this.client.requestJson<
      Omit<ProcessOutput, 'data' | 'text'> & { data: string; encoding: string }
    >({
      ...req,
      method: 'GET',
      path: `${processPath(processId)}/output`,
      query: { stream, offset, limit },
      namespaced: true,
    });
    const { data, encoding, ...rest } = raw;
    const bytes = wireBytes({ data, encoding });
    return { ...rest, data: bytes, text: new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes) };
  }

  /**
   * Yields the process's output live (SSE), both streams as they are written, then one `exit`
   * event with the ended process. A dropped connection is resumed with `Last-Event-ID`, so the
   * iteration continues exactly after the last byte it yielded. Break out of the loop to detach:
   * the process keeps running.
   */
  async *stream(
    processId: string,
    params: ProcessStreamParams = {},
  ): AsyncGenerator<ProcessStreamEvent, void, undefined> {
    const { signal, maxReconnects = 5, headers } = params;
    const decoder = new ChunkDecoder();
    let lastEventId = params.lastEventId;
    // Where to resume when the server sent no id yet.
    const next = { stdout: params.stdoutOffset ?? 0, stderr: params.stderrOffset ?? 0 };
    let failures = 0;
    for (;;) {
      let failure: unknown;
      let received = false;
      try {
        const res = await this.client.request(
          {
            method: 'GET',
            path: `${processPath(processId)}/stream`,
            query: lastEventId === undefined ? { stdout_offset: next.stdout, stderr_offset: next.stderr } : undefined,
            namespaced: true,
            headers: {
              accept: 'text/event-stream',
              ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
              ...headers,
            },
            signal,
            stream: true,
          },
          async (r) => r,
        );
        if (!res.body) throw new TroveError('The process stream has no body');
        for await (const message of readSseMessages(res.body)) {
          received = true;
          if (message.event === 'stdout' || message.event === 'stderr') {
            const chunk = decoder.chunk(message.event, parseData<WireChunk>(message.data, message.event));
            next[chunk.type] = chunk.offset + chunk.data.length;
            if (message.id !== undefined) lastEventId = message.id;
            yield chunk;
          } else if (message.event === 'exit') {
            yield { type: 'exit', process: camelize<Process>(parseData(message.data, 'exit')) };
            return;
          } else if (message.id !== undefined) {
            lastEventId = message.id;
          }
        }
        failure = new APIConnectionError(`The stream of ${processId} ended before the process did`);
      } catch (err) {
        if (signal?.aborted) throw new APIUserAbortError(undefined, err);
        // Answers (404, 401, …) and malformed events are final; only a lost connection is retried.
        if (err instanceof TroveError && !(err instanceof APIConnectionError)) throw err;
        failure = err;
      }
      if (received) failures = 0;
      if (failures >= maxReconnects) {
        throw failure instanceof TroveError
          ? failure
          : new APIConnectionError(
              `Connection lost while streaming ${processId}: ${(failure as Error)?.message ?? String(failure)}`,
              failure,
            );
      }
      failures++;
      await sleep(reconnectDelayMs(failures), signal);
    }
  }

  /**
   * Writes to the process's stdin (`POST …/stdin`): text as UTF-8, bytes exactly. `ConflictError`
   * (409) when stdin is closed or the process has exited. Never retried once sent.
   */
  async writeStdin(
    processId: string,
    data: string | Uint8Array,
    params: ProcessWriteStdinParams = {},
  ): Promise<ProcessStdinResult> {
    const { close, ...req } = params;
    const path = `${processPath(processId)}/stdin`;
    if (typeof data === 'string') {
      return this.client.requestJson<ProcessStdinResult>({
        ...req,
        method: 'POST',
        path,
        namespaced: true,
        json: close === undefined ? { data } : { data, close },
      });
    }
    const bytes = data;
    const written = await this.client.requestJson<ProcessStdinResult>({
      ...req,
      method: 'POST',
      path,
      namespaced: true,
      body: { make: () => bytes as unknown as BodyInit, replayable: true, streaming: false, total: bytes.length },
    });
    if (!close) return written;
    // Raw bytes cannot carry the close flag: it is its own request.
    const closed = await this.closeStdin(processId, req);
    return { ...written, stdinOpen: closed.stdinOpen };
  }

  /** Closes the process's stdin (end-of-file for the command); closing it again is not an error. */
  async closeStdin(processId: string, options?: RequestOptions): Promise<ProcessCloseStdinResult> {
    return this.client.requestJson<ProcessCloseStdinResult>({
      ...options,
      method: 'POST',
      path: `${processPath(processId)}/stdin/close`,
      namespaced: true,
    });
  }

  /**
   * Sends a signal (default `SIGTERM`) to the process and everything it started. Resolves with
   * `delivered: false` when the process had already exited.
   */
  async signal(
    processId: string,
    signal: ProcessSignal = 'SIGTERM',
    options?: RequestOptions,
  ): Promise<ProcessSignalResult> {
    return this.client.requestJson<ProcessSignalResult>({
      ...options,
      method: 'POST',
      path: `${processPath(processId)}/signal`,
      namespaced: true,
      json: { signal },
    });
  }

  /**
   * Resolves with the process once it has exited (long-polls `GET …/wait`, up to 60 s a request),
   * or after `maxWaitMs` with the process still `running`.
   */
  async wait(processId: string, params: ProcessWaitParams = {}): Promise<Process> {
    const { maxWaitMs, ...req } = params;
    const deadline = maxWaitMs === undefined ? Infinity : Date.now() + Math.max(0, maxWaitMs);
    for (;;) {
      const seconds = Math.min(MAX_WAIT_SECONDS, Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
      const proc = await this.client.requestJson<Process>({
        ...req,
        // The request is held up to `seconds` by design: its own timeout must outlast the hold.
        timeoutMs: Math.max(req.timeoutMs ?? this.client.timeoutMs, seconds * 1000 + 15_000),
        method: 'GET',
        path: `${processPath(processId)}/wait`,
        query: { timeout: seconds },
        namespaced: true,
      });
      if (proc.state !== 'running' || Date.now() >= deadline) return proc;
    }
  }
}

function processPath(processId: string): string {
  if (typeof processId !== 'string' || processId === '') throw new TypeError('a process id (proc-…) is required');
  return `/v1/processes/${encodeURIComponent(processId)}`;
}

function parseData<T>(data: string, event: string): T {
  try {
    return JSON.parse(data) as T;
  } catch (err) {
    throw new TroveError(`Malformed "${event}" event from the server: ${data.slice(0, 200)}`, { cause: err });
  }
}

/** 0.25 s, 0.5 s, 1 s, … capped at 5 s, with jitter so many clients do not reconnect in step. */
function reconnectDelayMs(failures: number): number {
  return Math.min(250 * 2 ** (failures - 1), 5000) * (1 - Math.random() * 0.25);
}
