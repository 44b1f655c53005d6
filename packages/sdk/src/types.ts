/**
 * Wire models, camelCased. The server speaks snake_case (docs/protocol.md); the SDK
 * converts every response key, so `size_bytes` arrives here as `sizeBytes`.
 * Times are ISO-8601 UTC strings with millisecond precision (`2026-11-25T10:00:00.123Z`).
 */

/** Scope of an API key: `admin` manages keys and webhooks; `workspace` uses the runtime endpoints. */
export type KeyScope = 'admin' | 'workspace';

/** The key behind a client, from `GET /v1/me`. */
export interface Identity {
  /** The workspace the key belongs to (`ws-…`). */
  workspaceId: string;
  /** The key's id (`key-…`). */
  keyId: string;
  /** The name the key was created with. */
  keyName: string;
  /** What the key may do: `admin` or `workspace`. */
  scope: KeyScope;
  /** The namespace a workspace key is locked to, or `null`. */
  namespace: string | null;
}

/**
 * How a command ended: `exited` (it returned), `signaled` (a signal ended it; `exitCode` 128+N), `oom` (killed for
 * memory: the exec's or the namespace's limit), `timeout` (its wall-clock limit), `killed` (a signal sent through
 * `processes.signal()`), `server_restart` / `node_lost` (the server or its cluster node went away while it ran).
 * Servers may add reasons.
 */
export type ExitReason = 'exited' | 'signaled' | 'oom' | 'timeout' | 'killed' | 'server_restart' | 'node_lost';

/** Result of `execDetailed()`; a non-zero `exitCode` is a normal result, not an error. */
export interface ExecResult {
  /** The command's exit code (0 on success). */
  exitCode: number;
  /** Everything the command wrote to stdout. */
  stdout: string;
  /** Everything the command wrote to stderr. */
  stderr: string;
  /** Wall-clock run time measured by the server. */
  durationMs: number;
  /** Ours: how the command ended (`exited`, `signaled`, `oom`); absent from servers that do not report it. */
  exitReason?: ExitReason;
}

/** Which output stream of a command. */
export type OutputStreamName = 'stdout' | 'stderr';

/** Output of a running command as it arrives (`exec.stream()`, `processes.stream()`). */
export interface OutputChunk {
  /** The stream the bytes were written to. */
  type: OutputStreamName;
  /** Byte offset of `data` in its stream (offsets are absolute: a resumed stream continues them). */
  offset: number;
  /** The bytes, exactly as the command wrote them. */
  data: Uint8Array;
  /**
   * `data` decoded as UTF-8, with a character split across chunks completed in the chunk where it ends, so the
   * `text` of a stream's chunks joins into its whole text (invalid sequences become U+FFFD).
   */
  text: string;
}

/** The last event of `exec.stream()`: the command has ended. */
export interface ExecExitEvent {
  /** Always `exit`. */
  type: 'exit';
  /** The command's exit code (124 after a timeout). */
  exitCode: number;
  /** How the command ended (`timeout` past the server's exec limit). */
  exitReason: ExitReason;
  /** Wall-clock run time measured by the server. */
  durationMs: number;
  /** True when the server stopped sending stdout at its output cap. */
  stdoutTruncated?: boolean;
  /** True when the server stopped sending stderr at its output cap. */
  stderrTruncated?: boolean;
  /** What went wrong when the server ended the command itself, e.g. `{ code: 'exec_timeout', detail: 'Command timed out after 30s.' }`. */
  error?: { detail: string; code: string };
}

/** What `exec.stream()` yields: output chunks as they come, then one `exit`. */
export type ExecStreamEvent = OutputChunk | ExecExitEvent;

/** `running` until the process ends, then `exited` (whatever the reason). */
export type ProcessState = 'running' | 'exited';

/** The signals `processes.signal()` can send (to the whole process group). */
export type ProcessSignal =
  'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGHUP' | 'SIGQUIT' | 'SIGUSR1' | 'SIGUSR2' | 'SIGSTOP' | 'SIGCONT';

/** A background process started with `processes.start()`. */
export interface Process {
  /** The process's id (`proc-…`). */
  processId: string;
  /** The namespace it runs in. */
  namespace: string;
  /** The command's first 4 KiB (UTF-8). */
  command: string;
  /** The command's full size in bytes. */
  commandBytes: number;
  /** True when `command` is only the start of it. */
  commandTruncated: boolean;
  /** `running`, or `exited` once it has ended. */
  state: ProcessState;
  /** The exit code, `null` while running (128+N when a signal ended it). */
  exitCode: number | null;
  /** How it ended, `null` while running. */
  exitReason: ExitReason | null;
  /** The signal that ended it (`SIGTERM`, …), or `null`. */
  signal: string | null;
  /** When it started (ISO-8601 UTC). */
  startedAt: string;
  /** When it ended, or `null`. */
  endedAt: string | null;
  /** Its wall-clock limit, or `null` for none. */
  timeoutMs: number | null;
  /** Whether its stdin still accepts `writeStdin()`. */
  stdinOpen: boolean;
  /** Bytes written to stdout so far (stdout offsets run up to this). */
  stdoutBytes: number;
  /** Bytes written to stderr so far. */
  stderrBytes: number;
  /** Oldest stdout bytes the server no longer keeps (its per-stream cap, 16 MiB by default). */
  stdoutDroppedBytes: number;
  /** Oldest stderr bytes the server no longer keeps. */
  stderrDroppedBytes: number;
}

/** A slice of a process's output, from `processes.output()`. */
export interface ProcessOutput {
  /** The process. */
  processId: string;
  /** The stream read. */
  stream: OutputStreamName;
  /** Offset of `data`: the one asked for, or the oldest retained byte when that one is gone. */
  offset: number;
  /** Where the next read starts (`offset + data.length`). */
  nextOffset: number;
  /** The bytes. */
  data: Uint8Array;
  /** `data` decoded as UTF-8 (invalid sequences and characters cut at the ends become U+FFFD). */
  text: string;
  /** Bytes of this stream no longer retained (all before the oldest retained offset). */
  droppedBytes: number;
  /** True when the process has exited and nothing follows `nextOffset`. */
  eof: boolean;
}

/** The last event of `processes.stream()`: the process has ended. */
export interface ProcessExitEvent {
  /** Always `exit`. */
  type: 'exit';
  /** The process as it ended. */
  process: Process;
}

/** What `processes.stream()` yields: output chunks as they come, then one `exit`. */
export type ProcessStreamEvent = OutputChunk | ProcessExitEvent;

/** Result of `processes.writeStdin()`. */
export interface ProcessStdinResult {
  /** The process. */
  processId: string;
  /** Bytes written (0 for a close alone). */
  written: number;
  /** Whether stdin is still open. */
  stdinOpen: boolean;
}

/** Result of `processes.closeStdin()`. */
export interface ProcessCloseStdinResult {
  /** The process. */
  processId: string;
  /** Always `false`. */
  stdinOpen: false;
}

/** Result of `processes.signal()`. */
export interface ProcessSignalResult {
  /** The process. */
  processId: string;
  /** The signal sent. */
  signal: ProcessSignal;
  /** False when the process had already exited. */
  delivered: boolean;
}

/** Result of `write()` and `upload()`. */
export interface WriteResult {
  /** Always `workspace/<rel>`. */
  path: string;
  /** Size of the file as written, in bytes. */
  sizeBytes: number;
  /** The version written (`ETag`): pass it as `ifMatch` to change the file only if nobody else did meanwhile. */
  etag?: string;
}

/** Result of `delete()`. */
export interface DeleteResult {
  /** The deleted path, `workspace/<rel>`. */
  deleted: string;
}

/** One entry of a directory listing. */
export interface FileEntry {
  /** The last path segment. */
  name: string;
  /** Always `workspace/<rel>`. */
  path: string;
  /** True for directories. */
  isDir: boolean;
  /** `null` for directories. */
  sizeBytes: number | null;
  /** Last modification time (ISO-8601 UTC, milliseconds). */
  modifiedAt: string;
}

/** Result of `listDir()`: directories first, then files, alphabetical (depth-first and flat when recursive). */
export interface DirListing {
  /** The entries, in listing order. */
  entries: FileEntry[];
  /** True when a recursive listing hit the server's cap (1,000 entries or 20 levels). */
  truncated: boolean;
}

/** Result of `readFile()` (the content API). */
export interface FileContent {
  /** Always `workspace/<rel>`. */
  path: string;
  /** The full size of the file, even when `content` is truncated. */
  sizeBytes: number;
  /** Last modification time (ISO-8601 UTC, milliseconds). */
  modifiedAt: string;
  /** `utf-8` with the text in `content`, or `binary` with `content: null`. */
  encoding: 'utf-8' | 'binary';
  /** The text (`utf-8`), or `null` for binary files. */
  content: string | null;
  /** True when the text is only the first 1 MiB of the file. */
  truncated: boolean;
}

/** Result of `readBytesFull()`. */
export interface FileBytes {
  /** The bytes received. */
  content: Uint8Array;
  /** True when the server sent only the first part of the file (its read cap, 100 MiB by default). */
  truncated: boolean;
  /** The full size of the file. */
  sizeBytes: number;
  /** The version read (`ETag`), for `ifMatch` on a later write. */
  etag?: string;
}

/** Result of `readStream()`: the body is not buffered. */
export interface FileStream {
  /** The file's bytes, read as they arrive. */
  body: ReadableStream<Uint8Array>;
  /** True when the server will send only the first part of the file. */
  truncated: boolean;
  /** The full size of the file, when the server reported it. */
  sizeBytes: number | null;
}

/** A point-in-time copy of a namespace tree. */
export interface Snapshot {
  /** The snapshot's id (`snap-…`). */
  snapshotId: string;
  /** The namespace it was taken of. */
  namespace: string;
  /** The label given at creation, or `null`. */
  label: string | null;
  /** Bytes of the stored (compressed) archive. */
  sizeBytes: number;
  /** Ours: files and symlinks in the snapshot. */
  fileCount?: number;
  /** When it was taken (ISO-8601 UTC). */
  createdAt: string;
}

/** Result of `snapshots.restore()`. */
export interface SnapshotRestoreResult {
  /** Files (and symlinks) the namespace holds after the restore. */
  filesRestored: number;
}

/** Result of `snapshots.delete()`. */
export interface SnapshotDeleteResult {
  /** The deleted snapshot. */
  snapshotId: string;
  /** Always `true`. */
  deleted: true;
}

/** An API key as listed (the secret itself is only shown once, at creation). */
export interface ApiKey {
  /** The key's id (`key-…`), used to revoke it. */
  keyId: string;
  /** The name given at creation. */
  name: string;
  /** The first 12 characters of the key, to recognise it. */
  prefix: string;
  /** What the key may do: `admin` or `workspace`. */
  scope: KeyScope;
  /** The namespace the key is locked to, or `null` for every namespace. */
  namespace: string | null;
  /** When it was created (ISO-8601 UTC). */
  createdAt: string;
}

/** A freshly created API key, including the secret `apiKey` (shown only this once). */
export interface CreatedApiKey extends ApiKey {
  /** The secret key (`trove-sk-…`); store it now, it is not shown again. */
  apiKey: string;
}

/** Result of `revokeKey()`. */
export interface KeyRevokeResult {
  /** The revoked key. */
  keyId: string;
  /** Always `true`. */
  revoked: true;
}

/** A webhook endpoint. */
export interface Webhook {
  /** The endpoint's id (`wh-…`). */
  webhookId: string;
  /** Where deliveries are `POST`ed. */
  url: string;
  /** `["*"]` for every type (including future ones), or a list of event types. */
  events: string[];
  /** Only this namespace's events are delivered, or `null` for all. */
  namespace: string | null;
  /** Ours: only events whose `data.source` is one of these are delivered, or `null` for any (absent from servers without it). */
  sources?: EventSource[] | null;
  /** A free-form note, or `null`. */
  description: string | null;
  /** False after the server auto-disabled it for repeated failures, or after `updateWebhook({enabled: false})`. */
  enabled: boolean;
  /** When it was created (ISO-8601 UTC). */
  createdAt: string;
  /** Present in listings: whether the newest delivery succeeded (`null` before any). */
  lastDeliveryOk?: boolean | null;
  /** When the newest delivery was attempted (`null` before any). */
  lastDeliveryAt?: string | null;
  /** The receiver's HTTP status on the newest delivery (`null` before any, or when unreachable). */
  lastDeliveryStatus?: number | null;
  /** Ours: why the endpoint is disabled (`null` while enabled). */
  disabledReason?: string | null;
  /** Ours: deliveries in a row that failed for good; the server disables the endpoint past its limit. */
  consecutiveFailures?: number;
  /**
   * Ours, in the answers of `createWebhook()` and `updateWebhook()` only, and only when there is something to
   * note about the accepted URL, e.g. a host that does not resolve yet.
   */
  warnings?: WebhookWarning[];
}

/** Ours: a note on an accepted webhook URL. */
export interface WebhookWarning {
  /**
   * `dns_unresolved`: the host did not resolve when the URL was saved; each delivery resolves and checks it again,
   * and fails (to be retried) until it resolves. Other codes may be added.
   */
  code: 'dns_unresolved' | (string & {});
  /** What happened, for people. */
  detail: string;
}

/** A freshly created webhook, including its `signingSecret` (`trove-whsec-…`). */
export interface CreatedWebhook extends Webhook {
  /** The secret deliveries are signed with (`trove-whsec-…`); pass it to `verifyWebhook`. */
  signingSecret: string;
}

/** Result of `deleteWebhook()`. */
export interface WebhookDeleteResult {
  /** The deleted endpoint. */
  webhookId: string;
  /** Always `true`. */
  deleted: true;
}

/** Result of `testWebhook()`: a receiver failure is `ok: false`, not an exception. */
export interface WebhookTestResult {
  /** True when the receiver answered 2xx. */
  ok: boolean;
  /** The `webhook.test` event that was delivered. */
  eventId: string;
  /** The receiver's HTTP status, or `null` when it could not be reached. */
  status: number | null;
  /** Why the delivery failed (connection error, timeout), or `null`. */
  error: string | null;
  /** Ours: the delivery log entry of this test. */
  deliveryId?: string;
}

/** One entry of a webhook's delivery log. */
export interface WebhookDelivery {
  /** The delivery's id. */
  deliveryId: string;
  /** The endpoint it goes to. */
  webhookId: string;
  /** The event it carries. */
  eventId: string;
  /** The type of that event. */
  eventType: string;
  /** `pending` while retries remain, then `delivered` or `failed`. */
  status: 'pending' | 'delivered' | 'failed';
  /** Attempts made so far. */
  attempts: number;
  /** The receiver's HTTP status on the last attempt (`null`: none, or unreachable). */
  lastStatusCode: number | null;
  /** Why the last attempt failed, or `null`. */
  lastError: string | null;
  /** When the last attempt was made, or `null`. */
  lastAttemptAt: string | null;
  /** When the next retry is due, or `null`. */
  nextAttemptAt: string | null;
  /** When a 2xx was received, or `null`. */
  deliveredAt: string | null;
  /** When the delivery was queued. */
  createdAt: string;
}

/** One attempt of a delivery. */
export interface WebhookDeliveryAttempt {
  /** When the attempt was made. */
  attemptedAt: string;
  /** The receiver's HTTP status, or `null` when it could not be reached. */
  statusCode: number | null;
  /** Why it failed (connection error, timeout), or `null`. */
  error: string | null;
  /** How long the receiver took to answer. */
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
  /** The namespace name. */
  name: string;
  /** When it was first used. */
  createdAt: string;
  /** When it was last used, or `null`. */
  lastActivityAt: string | null;
  /** Ours: bytes stored in the namespace tree. */
  sizeBytes?: number;
  /** Ours: files in the namespace tree. */
  fileCount?: number;
}

/** Result of `deleteNamespace()`. */
export interface NamespaceDeleteResult {
  /** The deleted namespace. */
  namespace: string;
  /** Always `true`. */
  deleted: true;
}

/** Result of `health()` (`GET /healthz`). */
export interface HealthStatus {
  /** `ok` when the server is healthy. */
  status: 'ok';
  [key: string]: unknown;
}

/** Result of `createWorkspace()` (open signup). */
export interface SignupResult {
  /** The new workspace (`ws-…`). */
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
  /** The event type, e.g. `file.written`. */
  type: TType;
  /** The envelope version. */
  apiVersion: ApiVersion;
  /** The workspace it happened in. */
  workspaceId: string;
  /** The namespace it happened in, or `null` for workspace-level events. */
  namespace: string | null;
  /** Unique and strictly increasing within a workspace, so it can be used as `since`. */
  createdAt: string;
  /** Type-specific details (see each event type). */
  data: TData;
}

/**
 * Who made a change: `write` and `upload` (the files API's writes), `api` (its deletes), `exec` (a
 * command, ours); as a filter, `api` stands for all three of the files API's.
 */
export type EventSource = 'exec' | 'api' | 'write' | 'upload';

/** The command that made a change (`source: 'exec'`): a one-shot exec or a background process. */
export interface ChangeAttribution {
  /** The one-shot exec that made it (its `exec.completed` carries the same id). */
  execId?: string;
  /** The background process that made it. */
  processId?: string;
}

/** A file was written by `write` or `upload`, or (ours) by a command (`source: 'exec'`). */
export type FileWrittenEvent = EventEnvelope<
  'file.written',
  | { path: string; sizeBytes: number; source: 'write' | 'upload' }
  /** A command's write: `sizeBytes` is the size when the change was recorded, null when not a regular file any more. */
  | ({ path: string; sizeBytes: number | null; source: 'exec' } & ChangeAttribution)
>;
/** A file or directory was deleted: by the files API (`source: 'api'`, ours) or by a command (`source: 'exec'`). */
export type FileDeletedEvent = EventEnvelope<
  'file.deleted',
  { path: string; source?: 'api' | 'exec' } & ChangeAttribution
>;
/** Ours: a command created a directory. */
export type DirCreatedEvent = EventEnvelope<'dir.created', { path: string; source: 'exec' } & ChangeAttribution>;
/** Ours: a command removed a directory. */
export type DirDeletedEvent = EventEnvelope<'dir.deleted', { path: string; source: 'exec' } & ChangeAttribution>;
/**
 * Ours: a command changed more paths than the server records one by one (or some could not be
 * seen): the counts of everything it changed, after the `recorded` path events.
 */
export type FilesChangedEvent = EventEnvelope<
  'files.changed',
  {
    source: 'exec';
    written: number;
    deleted: number;
    dirsCreated: number;
    dirsDeleted: number;
    /** Path events recorded for this command (or window) before this summary. */
    recorded: number;
    /** Paths changed in all. */
    total: number;
    /** True when the cap cut the path events short. */
    truncated: boolean;
    /** Some changes could not be attributed a path or were dropped by the kernel: the counts are a lower bound. */
    incomplete?: boolean;
    /** The counts are an upper bound (more paths than the server holds per command). */
    approximate?: boolean;
    /** Changes whose path could not be found. */
    unresolved?: number;
    /** Found by comparing the tree before and after (servers without fanotify). */
    scan?: boolean;
  } & ChangeAttribution
>;
/** An exec command finished (any exit code). */
export type ExecCompletedEvent = EventEnvelope<
  'exec.completed',
  {
    /** The command's first 4 KiB (UTF-8); `commandBytes` and `commandSha256` identify the whole of it. */
    command: string;
    commandBytes: number;
    commandSha256: string;
    commandTruncated: boolean;
    /** Ours: the id its file change events carry (`source: 'exec'`); they are in the log before this event. */
    execId?: string;
    exitCode: number;
    /** How it ended (`exited`, `signaled`, `oom`); absent from servers that do not report it. */
    exitReason?: ExitReason;
    durationMs: number;
    stdout: string;
  }
>;
/** A background process started (`processes.start()`). */
export type ProcessStartedEvent = EventEnvelope<
  'process.started',
  {
    processId: string;
    /** The command's first 4 KiB (UTF-8). */
    command: string;
    commandBytes: number;
  }
>;
/** A background process ended. */
export type ProcessExitedEvent = EventEnvelope<
  'process.exited',
  {
    processId: string;
    exitCode: number;
    exitReason: ExitReason;
    /** The signal that ended it, or `null`. */
    signal: string | null;
    durationMs: number;
  }
>;
/** A snapshot was taken (or imported: `snapshots.import()`). */
export type SnapshotCreatedEvent = EventEnvelope<
  'snapshot.created',
  {
    snapshotId: string;
    label: string | null;
    /** Ours: `true` when the snapshot was created from an uploaded archive. */
    imported?: boolean;
  }
>;
/** A namespace was restored from a snapshot. */
export type SnapshotRestoredEvent = EventEnvelope<'snapshot.restored', { snapshotId: string; filesRestored: number }>;
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
  | DirCreatedEvent
  | DirDeletedEvent
  | FilesChangedEvent
  | ExecCompletedEvent
  | ProcessStartedEvent
  | ProcessExitedEvent
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
