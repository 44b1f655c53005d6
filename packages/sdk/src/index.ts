/**
 * trove-sdk: the TypeScript client for Trove. Zero dependencies; runs on Node 20+,
 * Bun, Deno and edge runtimes (global fetch and Web streams).
 */
export {
  TroveClient,
  BaseClient,
  DEFAULT_BASE_URL,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_MAX_RETRIES,
  type TroveClientOptions,
  type BaseClientOptions,
  type ExecCall,
  type RequestOptions,
  type UploadData,
  type UploadProgress,
} from './client.js';
export {
  TroveAdminClient,
  createWorkspace,
  type TroveAdminClientOptions,
  type CreateWorkspaceOptions,
} from './admin-client.js';
export {
  TroveError,
  APIError,
  BadRequestError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  ExecTimeoutError,
  ConflictError,
  PreconditionFailedError,
  PayloadTooLargeError,
  UnprocessableEntityError,
  RateLimitError,
  InternalServerError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  TroveExecError,
  WebhookSignatureError,
  type WebhookSignatureErrorReason,
} from './errors.js';
export {
  verifyWebhook,
  verifyWebhookAsync,
  generateTestHeader,
  generateTestHeaderAsync,
  SIGNATURE_HEADER,
  DEFAULT_TOLERANCE_SECONDS,
  type VerifyWebhookParams,
  type GenerateTestHeaderParams,
  type WebhookBody,
  type WebhookHeaders,
} from './webhooks.js';
export { type ExecOptions, joinChain } from './resources/exec.js';
export { type UploadOptions, type ListDirOptions, type WriteOptions } from './resources/files.js';
export {
  Processes,
  type ProcessStartParams,
  type ProcessListParams,
  type ProcessOutputParams,
  type ProcessStreamParams,
  type ProcessWriteStdinParams,
  type ProcessWaitParams,
} from './resources/processes.js';
export {
  Snapshots,
  type SnapshotCreateParams,
  type SnapshotImportParams,
  type SnapshotArchive,
} from './resources/snapshots.js';
export {
  Events,
  EventPage,
  EventPagePromise,
  type EventListParams,
  type EventTailParams,
  type EventStreamParams,
} from './resources/events.js';
export { Keys, type KeyCreateOptions } from './resources/keys.js';
export {
  Webhooks,
  type WebhookCreateParams,
  type WebhookUpdateParams,
  type WebhookDeliveryListOptions,
} from './resources/webhooks.js';
export { Namespaces } from './resources/namespaces.js';
export { WorkspaceSummary, AGENT_NOTES_PATH } from './resources/bootstrap.js';
export { INIT_SCRIPT_PATH } from './resources/init-script.js';
export type * from './types.js';

/** Reads a Server-Sent Events body and yields each message's raw `data` (comments and other fields skipped). */
export { readSseData } from './internal/sse.js';
/** Reads a Server-Sent Events body and yields each message's `event`, `data` and `id`. */
export { readSseMessages, type SseMessage } from './internal/sse.js';
