/**
 * Client options, the request pipeline (auth, namespace, timeouts, error mapping)
 * and the retry policy, shared by `TroveClient` and `TroveAdminClient`.
 */
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  TroveError,
  parseRetryAfterMs,
} from './errors.js';
import { camelize } from './internal/camelize.js';
import { readEnv } from './internal/env.js';
import { sleep } from './internal/sleep.js';
import type { PreparedBody } from './internal/upload-body.js';
import type { UploadData, UploadProgress } from './internal/upload-body.js';
import { SDK_VERSION } from './internal/version.js';
import { Events } from './resources/events.js';
import { Exec, type ExecOptions } from './resources/exec.js';
import { Processes } from './resources/processes.js';
import { Files, type ListDirOptions, type UploadOptions, type WriteOptions } from './resources/files.js';
import { InitScript } from './resources/init-script.js';
import { Namespaces } from './resources/namespaces.js';
import { Snapshots } from './resources/snapshots.js';
import { bootstrapWorkspace, type WorkspaceSummary } from './resources/bootstrap.js';
import type {
  DeleteResult,
  DirListing,
  ExecResult,
  ExecStreamEvent,
  FileBytes,
  FileContent,
  FileStream,
  HealthStatus,
  Identity,
  WriteResult,
} from './types.js';

export type { UploadData, UploadProgress };

/** Where the clients connect when neither `baseUrl` nor `TROVE_BASE_URL` is set (a local `trove-server`). */
export const DEFAULT_BASE_URL = 'http://127.0.0.1:8080';
/** Per-attempt request timeout; above the server's default 30 s exec limit. */
export const DEFAULT_TIMEOUT_MS = 120_000;
/** Retries after the first attempt, for the failures listed in `BaseClient.request`. */
export const DEFAULT_MAX_RETRIES = 2;
/** A `Retry-After` longer than this is not waited for: the error is thrown instead. */
const MAX_RETRY_AFTER_MS = 60_000;

/** Options every call accepts as its last argument (alone or merged into the call's options). */
export interface RequestOptions {
  /** Aborts the call; it then rejects with `APIUserAbortError`. */
  signal?: AbortSignal;
  /** Overrides the client's per-attempt timeout. */
  timeoutMs?: number;
  /** Overrides the client's retry count. */
  maxRetries?: number;
  /** Extra headers for this call. */
  headers?: Record<string, string>;
}

/** Options shared by both clients. */
export interface BaseClientOptions {
  /** API key (`trove-sk-…`). */
  apiKey?: string;
  /** Server URL; default `TROVE_BASE_URL`, then `http://127.0.0.1:8080`. */
  baseUrl?: string;
  /** Per-attempt timeout in ms (default 120000). */
  timeoutMs?: number;
  /** Automatic retries of safe failures (default 2). */
  maxRetries?: number;
  /** A fetch implementation (default: the global `fetch`). */
  fetch?: typeof fetch;
  /** Headers sent with every request. */
  defaultHeaders?: Record<string, string>;
}

/** Options of `TroveClient`. */
export interface TroveClientOptions extends BaseClientOptions {
  /** Workspace runtime key; default `TROVE_API_KEY`. */
  apiKey?: string;
  /** Namespace sent as `X-Namespace` on runtime calls; default `TROVE_NAMESPACE`. A namespace-scoped key may omit it. */
  namespace?: string;
  /** Workspace id for the events API; discovered via `GET /v1/me` when omitted. */
  workspaceId?: string;
}

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** @internal A request as the resources describe it. */
export interface InternalRequest extends RequestOptions {
  method: HttpMethod;
  path: string;
  query?: Record<string, string | number | boolean | null | undefined>;
  json?: unknown;
  body?: PreparedBody;
  /** Send `X-Namespace` (runtime endpoints). */
  namespaced?: boolean;
  /** Omit `Authorization` (signup). */
  noAuth?: boolean;
  /** The timeout stops at the response headers; the caller reads the body as a stream. */
  stream?: boolean;
}

/** Transport shared by both clients: auth, timeouts, retries, error mapping. */
export abstract class BaseClient {
  /** Server URL without a trailing slash. */
  readonly baseUrl: string;
  /** Per-attempt timeout in ms. */
  readonly timeoutMs: number;
  /** Automatic retries of safe failures. */
  readonly maxRetries: number;
  /** Events of the workspace: `list` (paged), `tail` (live), `stream` (SSE). */
  readonly events: Events;
  /** Namespaces of the workspace. */
  readonly namespaces: Namespaces;

  readonly #apiKey: string;
  readonly #fetch: typeof fetch;
  readonly #defaultHeaders: Record<string, string>;
  #workspaceId: string | undefined;
  #workspaceIdPromise: Promise<string> | undefined;

  protected constructor(
    opts: BaseClientOptions & { workspaceId?: string },
    apiKey: string | undefined,
    clientName: string,
  ) {
    if (!apiKey) {
      throw new TroveError(
        `${clientName}: no API key. Pass { apiKey } or set ${clientName === 'TroveAdminClient' ? 'TROVE_ADMIN_API_KEY (or TROVE_API_KEY)' : 'TROVE_API_KEY'}.`,
      );
    }
    this.#apiKey = apiKey;
    this.baseUrl = (opts.baseUrl ?? readEnv('TROVE_BASE_URL') ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = opts.maxRetries ?? DEFAULT_MAX_RETRIES;
    const f = opts.fetch ?? (globalThis.fetch as typeof fetch | undefined);
    if (!f) throw new TroveError('No global fetch: pass { fetch } (Node 18+, Bun, Deno and edge runtimes have one).');
    // Unbound global fetch throws "Illegal invocation" in browsers and some edge runtimes.
    this.#fetch = opts.fetch ?? f.bind(globalThis);
    this.#defaultHeaders = { ...opts.defaultHeaders };
    this.#workspaceId = opts.workspaceId;
    this.events = new Events(this);
    this.namespaces = new Namespaces(this);
  }

  /** The key behind this client (`GET /v1/me`). */
  async me(options?: RequestOptions): Promise<Identity> {
    const identity = await this.requestJson<Identity>({ ...options, method: 'GET', path: '/v1/me' });
    this.#workspaceId ??= identity.workspaceId;
    return identity;
  }

  /** Server liveness (`GET /healthz`); needs no valid key. */
  health(options?: RequestOptions): Promise<HealthStatus> {
    return this.requestJson<HealthStatus>({ ...options, method: 'GET', path: '/healthz', noAuth: true });
  }

  /** The workspace id: the one passed to the constructor, else discovered once via `GET /v1/me`. */
  async getWorkspaceId(options?: RequestOptions): Promise<string> {
    if (this.#workspaceId) return this.#workspaceId;
    this.#workspaceIdPromise ??= this.me(options).then(
      (me) => me.workspaceId,
      (err: unknown) => {
        this.#workspaceIdPromise = undefined;
        throw err;
      },
    );
    return this.#workspaceIdPromise;
  }

  /** @internal The workspace id if already known, without a request. */
  protected knownWorkspaceId(): string | undefined {
    return this.#workspaceId;
  }

  /** @internal The namespace sent as `X-Namespace` on runtime calls. */
  protected namespaceHeader(): string | undefined {
    return undefined;
  }

  /** @internal Sends a request and parses the camelCased JSON body. */
  async requestJson<T>(req: InternalRequest): Promise<T> {
    return this.request(req, async (res) => {
      const text = await res.text();
      if (text === '') return undefined as T;
      try {
        return camelize<T>(JSON.parse(text));
      } catch (err) {
        throw new TroveError(`Expected JSON from ${req.method} ${req.path}, got: ${text.slice(0, 200)}`, {
          status: res.status,
          requestId: res.headers.get('x-request-id') ?? undefined,
          cause: err,
        });
      }
    });
  }

  /**
   * @internal Sends `req`, retrying where that is safe, and hands a 2xx response to
   * `handle` (inside the timeout, unless `req.stream`). Non-2xx becomes an `APIError`.
   */
  async request<T>(req: InternalRequest, handle: (res: Response) => Promise<T>): Promise<T> {
    const maxRetries = req.maxRetries ?? this.maxRetries;
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const url = this.buildUrl(req);
    const idempotent = req.method === 'GET';
    // A one-shot stream has been consumed by the first attempt and cannot be sent again.
    const replayable = req.body === undefined || req.body.replayable;

    for (let attempt = 0; ; attempt++) {
      const retriesLeft = maxRetries - attempt;
      const controller = new AbortController();
      let timedOut = false;
      const onUserAbort = () => controller.abort(req.signal?.reason);
      if (req.signal?.aborted) throw new APIUserAbortError();
      req.signal?.addEventListener('abort', onUserAbort, { once: true });
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onUserAbort);
      };

      let response: Response;
      try {
        response = await this.#fetch(url, this.buildInit(req, controller.signal));
      } catch (err) {
        cleanup();
        if (req.signal?.aborted) throw new APIUserAbortError(undefined, err);
        // No response arrived, so the server may or may not have acted on the request:
        // only GET (which cannot double an effect) with a replayable body is sent again.
        if (idempotent && replayable && retriesLeft > 0) {
          await sleep(backoffMs(attempt), req.signal);
          continue;
        }
        throw timedOut
          ? new APIConnectionTimeoutError(`Request timed out after ${timeoutMs} ms: ${req.method} ${req.path}`, err)
          : new APIConnectionError(`Connection error: ${req.method} ${url}: ${describe(err)}`, err);
      }

      if (!response.ok) {
        const delay = replayable && retriesLeft > 0 ? retryDelayMs(req.method, response, attempt) : null;
        if (delay !== null) {
          cleanup();
          await response.body?.cancel().catch(() => {});
          await sleep(delay, req.signal);
          continue;
        }
        let body: unknown;
        try {
          body = await readErrorBody(response);
        } catch (err) {
          throw mapBodyError(err, req, timedOut, timeoutMs);
        } finally {
          cleanup();
        }
        throw APIError.generate(response.status, body, response.headers);
      }

      if (req.stream) {
        // The caller reads the body for as long as it likes; only the user's signal still applies.
        clearTimeout(timer);
        return handle(response);
      }
      try {
        return await handle(response);
      } catch (err) {
        throw mapBodyError(err, req, timedOut, timeoutMs);
      } finally {
        cleanup();
      }
    }
  }

  private buildUrl(req: InternalRequest): string {
    let url = this.baseUrl + req.path;
    if (req.query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(req.query)) if (v !== undefined && v !== null) params.set(k, String(v));
      const qs = params.toString();
      if (qs) url += '?' + qs;
    }
    return url;
  }

  private buildInit(req: InternalRequest, signal: AbortSignal): RequestInit {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': `trove-sdk-ts/${SDK_VERSION}`,
      ...this.#defaultHeaders,
    };
    if (!req.noAuth) headers.authorization = `Bearer ${this.#apiKey}`;
    const ns = req.namespaced ? this.namespaceHeader() : undefined;
    if (ns !== undefined) headers['x-namespace'] = ns;
    let body: BodyInit | undefined;
    let duplex: 'half' | undefined;
    if (req.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.json);
    } else if (req.body) {
      headers['content-type'] = 'application/octet-stream';
      body = req.body.make();
      // Fetch requires duplex: 'half' to send a ReadableStream request body.
      if (req.body.streaming) duplex = 'half';
    }
    Object.assign(headers, req.headers);
    const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers, body, signal };
    if (duplex) init.duplex = duplex;
    return init;
  }
}

/**
 * Milliseconds to wait before retrying a failed response, or `null` to throw.
 * Every branch is a case where sending the request again cannot double its effect.
 */
function retryDelayMs(method: HttpMethod, response: Response, attempt: number): number | null {
  const status = response.status;
  const retryAfter = parseRetryAfterMs(response.headers);
  // The server asked for a longer pause than a caller would want to block on: surface it.
  if (retryAfter !== null && retryAfter > MAX_RETRY_AFTER_MS) return null;
  // 429 is answered before the request is acted on (rate limit, full exec queue): safe for
  // every method. Retry-After is honoured exactly; without it, exponential backoff.
  if (status === 429) return retryAfter ?? backoffMs(attempt);
  // 503 with Retry-After is the server saying "not now, nothing was done": safe for every method.
  if (status === 503 && retryAfter !== null) return retryAfter;
  // Other gateway failures may hide a request that did run upstream, so only GET is repeated.
  if ((status === 502 || status === 503 || status === 504) && method === 'GET') return retryAfter ?? backoffMs(attempt);
  // Everything else (4xx, 500, 408 exec timeout) is an answer, not a transient failure.
  return null;
}

/** 0.5 s, 1 s, 2 s, … capped at 8 s, minus up to 25% jitter so clients do not retry in lockstep. */
function backoffMs(attempt: number): number {
  const base = Math.min(500 * 2 ** attempt, 8000);
  return base * (1 - Math.random() * 0.25);
}

async function readErrorBody(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function mapBodyError(err: unknown, req: InternalRequest, timedOut: boolean, timeoutMs: number): unknown {
  if (err instanceof TroveError) return err;
  if (req.signal?.aborted) return new APIUserAbortError(undefined, err);
  if (timedOut)
    return new APIConnectionTimeoutError(`Request timed out after ${timeoutMs} ms: ${req.method} ${req.path}`, err);
  return new APIConnectionError(`Connection error while reading the response: ${describe(err)}`, err);
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
}

/** `client.exec`: call it for a command's stdout, or use `exec.stream()` for its output as it comes. */
export interface ExecCall {
  /**
   * Runs `sh -c command` in the namespace and returns its stdout.
   * Throws `TroveExecError` on a non-zero exit and `ExecTimeoutError` past the server's limit.
   */
  (command: string, options?: ExecOptions): Promise<string>;
  /**
   * Runs the command and yields `stdout`/`stderr` chunks as they are produced, then one `exit` event
   * (`exitCode`, `exitReason`, `durationMs`). A non-zero exit or a timeout is an event, not an exception.
   */
  stream(command: string, options?: ExecOptions): AsyncGenerator<ExecStreamEvent, void, undefined>;
}

/**
 * Client for the runtime API: exec, files, snapshots, events, with a workspace key.
 * @example
 * const trove = new TroveClient({ apiKey: process.env.TROVE_API_KEY, namespace: 'agent-1' });
 * await trove.write('notes/todo.md', '- ship it');
 * console.log(await trove.exec('cat workspace/notes/todo.md'));
 */
export class TroveClient extends BaseClient {
  /** The namespace sent as `X-Namespace`, or `undefined` (a namespace-scoped key then uses its own). */
  readonly namespace: string | undefined;
  /** Snapshots of the namespace: create, list, restore, delete. */
  readonly snapshots: Snapshots;
  /** Background processes of the namespace: start, list, get, output, stream, writeStdin, signal, wait. */
  readonly processes: Processes;
  /**
   * Runs `sh -c command` in the namespace and returns its stdout (`exec(cmd)`), or streams its output
   * live (`exec.stream(cmd)`). Throws `TroveExecError` on a non-zero exit and `ExecTimeoutError` past the
   * server's limit.
   */
  readonly exec: ExecCall;

  readonly #options: TroveClientOptions;
  readonly #files: Files;
  readonly #exec: Exec;
  readonly #init: InitScript;

  constructor(options: TroveClientOptions = {}) {
    super(options, options.apiKey ?? readEnv('TROVE_API_KEY'), 'TroveClient');
    this.#options = options;
    this.namespace = options.namespace ?? readEnv('TROVE_NAMESPACE');
    this.snapshots = new Snapshots(this);
    this.processes = new Processes(this);
    this.#files = new Files(this);
    const exec = (this.#exec = new Exec(this));
    this.exec = Object.assign((command: string, opts?: ExecOptions) => exec.run(command, opts), {
      stream: (command: string, opts?: ExecOptions) => exec.stream(command, opts),
    });
    this.#init = new InitScript(this.#files);
  }

  /** A client with the same settings that works in another namespace. */
  withNamespace(namespace: string): TroveClient {
    return new TroveClient({ ...this.#options, workspaceId: this.knownWorkspaceId(), namespace });
  }

  protected override namespaceHeader(): string | undefined {
    return this.namespace;
  }

  /** Runs a command and returns exit code, stdout, stderr and duration; a non-zero exit does not throw. */
  execDetailed(command: string, options?: ExecOptions): Promise<ExecResult> {
    return this.#exec.detailed(command, options);
  }

  /**
   * Runs commands in one shell, each only if the previous succeeded (`{ c1; } && { c2; }`), and returns stdout.
   * Throws `TroveExecError` (with the joined command) when one fails.
   */
  execChain(commands: string[], options?: ExecOptions): Promise<string> {
    return this.#exec.chain(commands, options);
  }

  /** Writes UTF-8 text to a file (parent directories are created; an existing file is replaced). */
  write(path: string, content: string, options?: WriteOptions): Promise<WriteResult> {
    return this.#files.write(path, content, options);
  }

  /**
   * Streams bytes to a file (`PUT /files/{path}`) with optional `onProgress`.
   * A stream body is never retried (it cannot be replayed); strings, bytes and Blobs are.
   */
  upload(path: string, data: UploadData, options?: UploadOptions): Promise<WriteResult> {
    return this.#files.upload(path, data, options);
  }

  /** Reads a file's bytes (only the first part past the server's read cap; see `readBytesFull`). */
  async readBytes(path: string, options?: RequestOptions): Promise<Uint8Array> {
    return (await this.#files.readBytesFull(path, options)).content;
  }

  /** Reads a file's bytes with `truncated` and the full `sizeBytes` (from `X-Trove-Truncated` / `X-Trove-Size`). */
  readBytesFull(path: string, options?: RequestOptions): Promise<FileBytes> {
    return this.#files.readBytesFull(path, options);
  }

  /** Reads a file as UTF-8 text, exactly (a byte-order mark is kept; invalid sequences become U+FFFD). */
  async readText(path: string, options?: RequestOptions): Promise<string> {
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(await this.readBytes(path, options));
  }

  /** Opens a file as a stream without buffering it. */
  readStream(path: string, options?: RequestOptions): Promise<FileStream> {
    return this.#files.readStream(path, options);
  }

  /** Reads a file through the content API: text up to 1 MiB with metadata, or `encoding: "binary"`. */
  readFile(path: string, options?: RequestOptions): Promise<FileContent> {
    return this.#files.readFile(path, options);
  }

  /** Lists a directory (default the namespace root); `recursive` is depth-first and capped at 1,000 entries. */
  listDir(path?: string, options?: ListDirOptions): Promise<DirListing> {
    return this.#files.listDir(path, options);
  }

  /** Deletes a file or a directory (recursively). */
  delete(path: string, options?: RequestOptions): Promise<DeleteResult> {
    return this.#files.delete(path, options);
  }

  /** Writes `.trove/init.sh`, which the server sources before every exec. */
  setInit(script: string, options?: RequestOptions): Promise<WriteResult> {
    return this.#init.set(script, options);
  }

  /** Reads `.trove/init.sh`, or `null` when there is none. */
  getInit(options?: RequestOptions): Promise<string | null> {
    return this.#init.get(options);
  }

  /** Removes `.trove/init.sh`; resolves `false` when there was none. */
  clearInit(options?: RequestOptions): Promise<boolean> {
    return this.#init.clear(options);
  }

  /**
   * Summarises the namespace for an agent's first turn: file count, the 10 most recently
   * modified files, the init script and `.trove/agent.md` notes; see `asSystemPromptBlock()`.
   */
  bootstrap(options?: RequestOptions): Promise<WorkspaceSummary> {
    return bootstrapWorkspace(this, options);
  }
}
