/**
 * The SDK's error hierarchy. Every error the SDK throws is a `TroveError`; HTTP
 * failures are `APIError`s whose subclass is chosen by status in `APIError.generate`.
 */
import type { ExitReason } from './types.js';

/** Base class of every error thrown by the SDK. */
export class TroveError extends Error {
  /** HTTP status of the response, when there was one. */
  readonly status: number | undefined;
  /** The server's human-readable `detail`, when there was a response body. */
  readonly detail: string | undefined;
  /** The server's stable machine-readable `code` (e.g. `path_not_found`), when present. */
  readonly code: string | undefined;
  /** The `x-request-id` of the response, to quote when reporting a problem. */
  readonly requestId: string | undefined;

  constructor(
    message: string,
    init: { status?: number; detail?: string; code?: string; requestId?: string; cause?: unknown } = {},
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.detail = init.detail;
    this.code = init.code;
    this.requestId = init.requestId;
  }
}

/** Thrown when the server answers with a non-2xx status; see the subclasses for specific statuses. */
export class APIError extends TroveError {
  declare readonly status: number;
  /** Response headers of the failed request. */
  readonly headers: Headers;
  /** The parsed JSON error body (or the raw text when it was not JSON). */
  readonly body: unknown;

  constructor(
    status: number,
    body: unknown,
    headers: Headers,
    init: { detail?: string; code?: string; requestId?: string; message?: string } = {},
  ) {
    const detail = init.detail;
    super(init.message ?? detail ?? `Request failed with status ${status}`, {
      status,
      detail,
      code: init.code,
      requestId: init.requestId,
    });
    this.headers = headers;
    this.body = body;
  }

  /** Builds the subclass that matches `status` from a response's parsed body and headers. */
  static generate(status: number, body: unknown, headers: Headers): APIError {
    const { detail, code } = parseErrorBody(body);
    const init = { detail, code, requestId: headers.get('x-request-id') ?? undefined };
    const cls = STATUS_CLASSES[status] ?? (status >= 500 ? InternalServerError : APIError);
    return new cls(status, body, headers, init);
  }
}

/** Thrown on 400: the request was malformed (bad path, missing `X-Namespace`, invalid query). */
export class BadRequestError extends APIError {}

/** Thrown on 401: the API key is missing, invalid or revoked. */
export class AuthenticationError extends APIError {}

/** Thrown on 403: the key's scope forbids the call (e.g. an admin key on a runtime endpoint). */
export class PermissionDeniedError extends APIError {}

/** Thrown on 404: the path, snapshot, key, webhook or delivery does not exist. */
export class NotFoundError extends APIError {}

/** Thrown on 408: an exec command ran past the server's wall-clock limit. */
export class ExecTimeoutError extends APIError {}

/** Thrown on 409: the request conflicts with the current state. */
export class ConflictError extends APIError {}

/** Thrown on 412: a write's `ifMatch` / `ifNoneMatch` condition did not hold (someone else changed the file). */
export class PreconditionFailedError extends APIError {}

/** Thrown on 413: the body is larger than the server accepts, or a quota would be exceeded. */
export class PayloadTooLargeError extends APIError {}

/** Thrown on 422: the body failed validation (e.g. exec stdin over 1 MiB). */
export class UnprocessableEntityError extends APIError {}

/** Thrown on 429 once retries are exhausted: the key is rate limited or the exec queue is full. */
export class RateLimitError extends APIError {
  /** Seconds the server asked to wait (`Retry-After`), or `null` when it did not say. */
  readonly retryAfter: number | null;

  constructor(
    status: number,
    body: unknown,
    headers: Headers,
    init: { detail?: string; code?: string; requestId?: string; message?: string } = {},
  ) {
    super(status, body, headers, init);
    const ms = parseRetryAfterMs(headers);
    this.retryAfter = ms === null ? null : ms / 1000;
  }
}

/** Thrown on any 5xx once retries are exhausted: a server-side failure or an unavailable sandbox (503). */
export class InternalServerError extends APIError {}

type APIErrorClass = new (
  status: number,
  body: unknown,
  headers: Headers,
  init: { detail?: string; code?: string; requestId?: string },
) => APIError;

/** The one place a status picks its error class (5xx without an entry: `InternalServerError`). */
const STATUS_CLASSES: Record<number, APIErrorClass> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  408: ExecTimeoutError,
  409: ConflictError,
  412: PreconditionFailedError,
  413: PayloadTooLargeError,
  422: UnprocessableEntityError,
  429: RateLimitError,
};

/** Thrown when no response arrived: DNS failure, refused or reset connection. */
export class APIConnectionError extends TroveError {
  constructor(message = 'Connection error.', cause?: unknown) {
    super(message, { cause });
  }
}

/** Thrown when a request took longer than `timeoutMs` (the client's or the call's). */
export class APIConnectionTimeoutError extends APIConnectionError {
  constructor(message = 'Request timed out.', cause?: unknown) {
    super(message, cause);
  }
}

/** Thrown when the caller's `AbortSignal` aborted the request. */
export class APIUserAbortError extends TroveError {
  constructor(message = 'Request was aborted.', cause?: unknown) {
    super(message, { cause });
  }
}

/** Thrown by `exec()` and `execChain()` when the command exits with a non-zero code. */
export class TroveExecError extends TroveError {
  /** The command as sent to the server. */
  readonly command: string;
  /** The command's exit code (never 0). */
  readonly exitCode: number;
  /** Everything the command wrote to stdout. */
  readonly stdout: string;
  /** Everything the command wrote to stderr. */
  readonly stderr: string;
  /** Wall-clock run time reported by the server. */
  readonly durationMs: number;
  /** How the command ended (`exited`, `signaled`, `oom`), when the server reports it. */
  readonly exitReason: ExitReason | undefined;

  constructor(result: {
    command: string;
    exitCode: number;
    stdout: string;
    stderr: string;
    durationMs: number;
    exitReason?: ExitReason;
  }) {
    const firstLine = result.stderr.trim().split('\n')[0] ?? '';
    super(`Command exited with code ${result.exitCode}${firstLine ? `: ${firstLine}` : ''}`);
    this.command = result.command;
    this.exitCode = result.exitCode;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
    this.durationMs = result.durationMs;
    this.exitReason = result.exitReason;
  }
}

/** Why a webhook failed verification; stable for programmatic handling. */
export type WebhookSignatureErrorReason =
  | 'missing_header'
  | 'malformed_header'
  | 'timestamp_out_of_tolerance'
  | 'no_matching_signature'
  | 'body_not_raw'
  | 'invalid_secret'
  | 'invalid_json'
  | 'crypto_unavailable';

/** Thrown by `verifyWebhook` when a delivery cannot be trusted; the message says how to fix it. */
export class WebhookSignatureError extends TroveError {
  /** Machine-readable reason for the failure. */
  readonly reason: WebhookSignatureErrorReason;

  constructor(reason: WebhookSignatureErrorReason, message: string) {
    super(message, { code: reason });
    this.reason = reason;
  }
}

function parseErrorBody(body: unknown): { detail?: string; code?: string } {
  if (typeof body === 'string') return body.trim() ? { detail: body.trim().slice(0, 2000) } : {};
  if (body === null || typeof body !== 'object') return {};
  const b = body as Record<string, unknown>;
  let detail: string | undefined;
  if (typeof b.detail === 'string') detail = b.detail;
  else if (b.detail !== undefined) detail = JSON.stringify(b.detail);
  else if (typeof b.message === 'string') detail = b.message;
  const code = typeof b.code === 'string' ? b.code : undefined;
  return { detail, code };
}

/**
 * Milliseconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date);
 * `null` when absent or unparseable.
 */
export function parseRetryAfterMs(headers: Headers): number | null {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Number(ms);
  const ra = headers.get('retry-after');
  if (ra === null) return null;
  if (/^\d+(\.\d+)?$/.test(ra.trim())) return Number(ra) * 1000;
  const date = Date.parse(ra);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - Date.now());
}
