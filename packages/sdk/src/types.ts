/**
 * Wire models, camelCased. The server speaks snake_case (PROTOCOL.md); the SDK
 * converts every response key, so `size_bytes` arrives here as `sizeBytes`.
 * Times are ISO-8601 UTC strings with millisecond precision (`2026-11-25T10:00:00.123Z`).
 */

/** Scope of an API key: `admin` manages keys and webhooks; `workspace` uses the runtime endpoints. */
export type KeyScope = 'admin' | 'workspace';

/** The key behind a client, from `GET /v1/me`. */
export interface Identity {
  workspaceId: string;
  keyId: string;
  keyName: string;
  scope: KeyScope;
  /** The namespace a workspace key is locked to, or `null`. */
  namespace: string | null;
}

/** Result of `execDetailed()`; a non-zero `exitCode` is a normal result, not an error. */
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Result of `write()` and `upload()`. */
export interface WriteResult {
  /** Always `workspace/<rel>`. */
  path: string;
  sizeBytes: number;
}

/** Result of `delete()`. */
export interface DeleteResult {
  /** The deleted path, `workspace/<rel>`. */
  deleted: string;
}

/** One entry of a directory listing. */
export interface FileEntry {
  name: string;
  /** Always `workspace/<rel>`. */
  path: string;
  isDir: boolean;
  /** `null` for directories. */
  sizeBytes: number | null;
  modifiedAt: string;
}

/** Result of `listDir()`: directories first, then files, alphabetical (depth-first and flat when recursive). */
export interface DirListing {
  entries: FileEntry[];
  /** True when a recursive listing hit the server's cap (1,000 entries or 20 levels). */
  truncated: boolean;
}

/** Result of `readFile()` (the content API). */
export interface FileContent {
  path: string;
  /** The full size of the file, even when `content` is truncated. */
  sizeBytes: number;
  modifiedAt: string;
  /** `utf-8` with the text in `content`, or `binary` with `content: null`. */
  encoding: 'utf-8' | 'binary';
  content: string | null;
  /** True when the text is only the first 1 MiB of the file. */
  truncated: boolean;
}

/** Result of `readBytesFull()`. */
export interface FileBytes {
  content: Uint8Array;
  /** True when the server sent only the first part of the file (its read cap, 100 MiB by default). */
  truncated: boolean;
  /** The full size of the file. */
  sizeBytes: number;
}

/** Result of `readStream()`: the body is not buffered. */
export interface FileStream {
  body: ReadableStream<Uint8Array>;
  /** True when the server will send only the first part of the file. */
  truncated: boolean;
  /** The full size of the file, when the server reported it. */
  sizeBytes: number | null;
}

/** A point-in-time copy of a namespace tree. */
export interface Snapshot {
  snapshotId: string;
  namespace: string;
  label: string | null;
  /** Bytes of the stored (compressed) archive. */
  sizeBytes: number;
  /** Ours: files and symlinks in the snapshot. */
  fileCount?: number;
  createdAt: string;
}

/** Result of `snapshots.restore()`. */
export interface SnapshotRestoreResult {
  filesRestored: number;
}

/** Result of `snapshots.delete()`. */
export interface SnapshotDeleteResult {
  snapshotId: string;
  deleted: true;
}

/** An API key as listed (the secret itself is only shown once, at creation). */
export interface ApiKey {
  keyId: string;
  name: string;
  /** The first 12 characters of the key, to recognise it. */
  prefix: string;
  scope: KeyScope;
  namespace: string | null;
  createdAt: string;
}

/** A freshly created API key, including the secret `apiKey` (shown only this once). */
export interface CreatedApiKey extends ApiKey {
  apiKey: string;
}

/** Result of `revokeKey()`. */
export interface KeyRevokeResult {
  keyId: string;
  revoked: true;
}

/** A webhook endpoint. */
export interface Webhook {
  webhookId: string;
  url: string;
  /** `["*"]` for every type (including future ones), or a list of event types. */
  events: string[];
  namespace: string | null;
  description: string | null;
  /** False after the server auto-disabled it for repeated failures, or after `updateWebhook({enabled: false})`. */
  enabled: boolean;
  createdAt: string;
  /** Present in listings: whether the newest delivery succeeded (`null` before any). */
  lastDeliveryOk?: boolean | null;
  lastDeliveryAt?: string | null;
  lastDeliveryStatus?: number | null;
  /** Ours: why the endpoint is disabled (`null` while enabled). */
  disabledReason?: string | null;
  /** Ours: deliveries in a row that failed for good; the server disables the endpoint past its limit. */
  consecutiveFailures?: number;
}

/** A freshly created webhook, including its `signingSecret` (`trove-whsec-…`). */
export interface CreatedWebhook extends Webhook {
  signingSecret: string;
}

/** Result of `deleteWebhook()`. */
export interface WebhookDeleteResult {
  webhookId: string;
  deleted: true;
}

/** Result of `testWebhook()`: a receiver failure is `ok: false`, not an exception. */
export interface WebhookTestResult {
  ok: boolean;
  eventId: string;
  /** The receiver's HTTP status, or `null` when it could not be reached. */
  status: number | null;
  error: string | null;
  /** Ours: the delivery log entry of this test. */
  deliveryId?: string;
}

/** One entry of a webhook's delivery log. */
export interface WebhookDelivery {
  deliveryId: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  createdAt: string;
}

/** One attempt of a delivery. */
export interface WebhookDeliveryAttempt {
  attemptedAt: string;
  /** The receiver's HTTP status, or `null` when it could not be reached. */
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  /** When the next attempt was scheduled after this one (`null`: none). */
  nextAttemptAt: string | null;
}

/** A delivery with every attempt, from `retrieveWebhookDelivery()`. */
export interface WebhookDeliveryDetail extends WebhookDelivery {
  /** Oldest first. */
  attemptHistory: WebhookDeliveryAttempt[];
}

/** A namespace of the workspace; it exists from its first use. */
export interface Namespace {
  name: string;
  createdAt: string;
  lastActivityAt: string | null;
  /** Ours: bytes stored in the namespace tree. */
  sizeBytes?: number;
  /** Ours: files in the namespace tree. */
  fileCount?: number;
}

/** Result of `deleteNamespace()`. */
export interface NamespaceDeleteResult {
  namespace: string;
  deleted: true;
}

/** Result of `health()` (`GET /healthz`). */
export interface HealthStatus {
  status: 'ok';
  [key: string]: unknown;
}

/** Result of `createWorkspace()` (open signup). */
export interface SignupResult {
  workspaceId: string;
  /** Ours: the workspace name as stored. */
  name?: string;
  /** A workspace-scope runtime key. */
  apiKey: string;
  /** An admin key for the new workspace (ours; absent on servers that do not send it). */
  adminApiKey?: string;
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/** The API version stamped on every event envelope. */
export type ApiVersion = '2026-04-30';

/** Fields every event shares; `type` and `data` vary. */
export interface EventEnvelope<TType extends string, TData> {
  /** `evt-…`. */
  id: string;
  /** Repeats `id`. */
  eventId: string;
  type: TType;
  apiVersion: ApiVersion;
  workspaceId: string;
  namespace: string | null;
  /** Unique and strictly increasing within a workspace, so it can be used as `since`. */
  createdAt: string;
  data: TData;
}

/** A file was written by `write` or `upload`. */
export type FileWrittenEvent = EventEnvelope<
  'file.written',
  { path: string; sizeBytes: number; source: 'write' | 'upload' }
>;
/** A file or directory was deleted. */
export type FileDeletedEvent = EventEnvelope<'file.deleted', { path: string }>;
/** An exec command finished (any exit code). */
export type ExecCompletedEvent = EventEnvelope<
  'exec.completed',
  { command: string; exitCode: number; durationMs: number; stdout: string }
>;
/** A snapshot was taken. */
export type SnapshotCreatedEvent = EventEnvelope<'snapshot.created', { snapshotId: string; label: string | null }>;
/** A namespace was restored from a snapshot. */
export type SnapshotRestoredEvent = EventEnvelope<
  'snapshot.restored',
  { snapshotId: string; filesRestored: number }
>;
/** A snapshot was deleted. */
export type SnapshotDeletedEvent = EventEnvelope<'snapshot.deleted', { snapshotId: string }>;
/** A namespace was deleted. */
export type NamespaceDeletedEvent = EventEnvelope<'namespace.deleted', { namespace: string }>;
/** The workspace was created. */
export type WorkspaceCreatedEvent = EventEnvelope<'workspace.created', { name: string }>;
/** An API key was created. */
export type KeyCreatedEvent = EventEnvelope<'key.created', { keyId: string; name: string }>;
/** An API key was revoked. */
export type KeyRevokedEvent = EventEnvelope<'key.revoked', { keyId: string }>;
/** A test delivery from `testWebhook()`. */
export type WebhookTestEvent = EventEnvelope<'webhook.test', { message: string }>;

/**
 * Every event, discriminated on `type`. Servers may add types later; those arrive
 * with their `data` keys camelCased and a `type` outside this union.
 */
export type TroveEvent =
  | FileWrittenEvent
  | FileDeletedEvent
  | ExecCompletedEvent
  | SnapshotCreatedEvent
  | SnapshotRestoredEvent
  | SnapshotDeletedEvent
  | NamespaceDeletedEvent
  | WorkspaceCreatedEvent
  | KeyCreatedEvent
  | KeyRevokedEvent
  | WebhookTestEvent;

/** Alias of `TroveEvent`. */
export type Event = TroveEvent;

/** The event a webhook delivery carries (the same envelope as the events API). */
export type WebhookEvent = TroveEvent;

/** Every known event type. */
export type EventType = TroveEvent['type'];

/** The `data` of the event of type `T`. */
export type EventData<T extends EventType> = Extract<TroveEvent, { type: T }>['data'];
