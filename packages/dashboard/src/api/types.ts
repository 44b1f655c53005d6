/** Shapes of the public Trove API (docs/protocol.md plus the dashboard's extensions). */

export type Scope = 'admin' | 'workspace';

export interface Me {
  workspace_id: string;
  key_id: string;
  key_name: string;
  scope: Scope;
  namespace: string | null;
}

export interface Namespace {
  name: string;
  created_at: string;
  last_activity_at: string | null;
  size_bytes?: number | null;
  file_count?: number | null;
}

export interface FileEntry {
  name: string;
  path: string;
  is_dir: boolean;
  size_bytes: number | null;
  modified_at: string;
}

export interface FileList {
  entries: FileEntry[];
  truncated: boolean;
}

export interface FileContent {
  path: string;
  size_bytes: number;
  modified_at: string;
  encoding: 'utf-8' | 'binary';
  content: string | null;
  truncated: boolean;
}

export type ExitReason = 'exited' | 'signaled' | 'oom' | 'timeout' | 'killed' | 'server_restart' | 'node_lost';

export interface ExecResult {
  exit_code: number;
  stdout: string;
  stderr: string;
  duration_ms: number;
  /** How it ended; absent from servers that do not report it. */
  exit_reason?: ExitReason;
}

/** Output of a running command, decoded for display. */
export interface OutputChunk {
  type: 'stdout' | 'stderr';
  /** Byte offset in its stream. */
  offset: number;
  /** Bytes in this chunk. */
  bytes: number;
  text: string;
}

/** The last event of a streamed exec. */
export interface ExecExit {
  type: 'exit';
  exit_code: number;
  exit_reason: ExitReason;
  duration_ms: number;
  /** Set when the server ended the command itself (its time limit: `exec_timeout`). */
  error?: { detail: string; code: string };
}

/** A background process (`/v1/processes`). */
export interface Process {
  process_id: string;
  namespace: string;
  command: string;
  command_bytes: number;
  command_truncated: boolean;
  state: 'running' | 'exited';
  exit_code: number | null;
  exit_reason: ExitReason | null;
  signal: string | null;
  started_at: string;
  ended_at: string | null;
  timeout_ms: number | null;
  stdin_open: boolean;
  stdout_bytes: number;
  stderr_bytes: number;
  stdout_dropped_bytes: number;
  stderr_dropped_bytes: number;
}

export interface Snapshot {
  snapshot_id: string;
  namespace: string;
  label: string | null;
  size_bytes: number;
  created_at: string;
}

export interface TroveEvent {
  id: string;
  event_id: string;
  type: string;
  api_version: string;
  workspace_id: string;
  namespace: string | null;
  created_at: string;
  data: Record<string, unknown>;
}

export interface EventPage {
  events: TroveEvent[];
  next_cursor: string | null;
}

export interface ApiKey {
  key_id: string;
  name: string;
  prefix: string;
  scope: Scope;
  namespace: string | null;
  created_at: string;
}

export interface CreatedApiKey extends ApiKey {
  api_key: string;
}

export interface Webhook {
  webhook_id: string;
  url: string;
  events: string[];
  namespace: string | null;
  description: string | null;
  enabled: boolean;
  created_at: string;
  last_delivery_ok?: boolean | null;
  last_delivery_at?: string | null;
  last_delivery_status?: number | string | null;
  /** Why the endpoint is disabled (by an admin, or automatically after a failure streak); null while enabled. */
  disabled_reason?: string | null;
  /** Deliveries in a row that failed for good; the server disables the endpoint at its limit. */
  consecutive_failures?: number;
}

export interface CreatedWebhook extends Webhook {
  signing_secret: string;
}

export interface WebhookTestResult {
  ok: boolean;
  event_id: string;
  status: number | null;
  error: string | null;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface Delivery {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
}

/** One HTTP attempt of a delivery (oldest first in `attempt_history`). */
export interface DeliveryAttempt {
  attempted_at: string;
  /** The receiver's HTTP status, or null when it could not be reached. */
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  /** When the next attempt was scheduled after this one (null after a success or the last failure). */
  next_attempt_at: string | null;
}

export interface DeliveryDetail extends Delivery {
  attempt_history: DeliveryAttempt[];
}

/**
 * Every event type the server emits, for filters and webhook subscriptions: the server's own
 * list, bundled at build time, so the dashboard can never offer a type the server rejects.
 */
export { EVENT_TYPES } from '../../../server/src/webhooks/event-types';
