/**
 * Every deliberate error the server answers with. The wire body is
 * `{"detail": "<message>", "code": "<code>"}` (docs/protocol.md + our stable `code`).
 * docs/errors.md documents the codes; a test fails when the two drift apart.
 */
export const ERROR_CODES = {
  bad_request: 400,
  namespace_required: 400,
  namespace_invalid: 400,
  path_invalid: 400,
  path_is_directory: 400,
  path_is_root: 400,
  path_outside_namespace: 400,
  query_invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  scope_forbidden: 403,
  namespace_forbidden: 403,
  signup_disabled: 403,
  not_found: 404,
  path_not_found: 404,
  key_not_found: 404,
  webhook_not_found: 404,
  delivery_not_found: 404,
  snapshot_not_found: 404,
  process_not_found: 404,
  namespace_not_found: 404,
  workspace_not_found: 404,
  method_not_allowed: 405,
  exec_timeout: 408,
  request_timeout: 408,
  conflict: 409,
  not_a_directory: 400,
  precondition_failed: 412,
  payload_too_large: 413,
  quota_exceeded: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  snapshot_invalid: 422,
  tree_too_deep: 422,
  rate_limited: 429,
  exec_busy: 429,
  internal_error: 500,
  storage_full: 507,
  over_quota: 507,
  sandbox_unavailable: 503,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string;
  /** Seconds for a `Retry-After` header (429/503). */
  readonly retryAfter?: number;

  constructor(code: ErrorCode, detail: string, opts: { retryAfter?: number; status?: number } = {}) {
    super(detail);
    this.name = 'AppError';
    this.code = code;
    this.status = opts.status ?? ERROR_CODES[code];
    this.detail = detail;
    this.retryAfter = opts.retryAfter;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
