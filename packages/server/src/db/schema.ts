/**
 * Kysely table types. Times are stored twice where they are queried by range:
 * `*_at` ISO strings (what the wire shows) and `*_ms` integers (what SQL compares).
 * Booleans are integers (0/1) so both dialects agree.
 */
import type { Generated } from 'kysely';

export interface WorkspaceTable {
  id: string;
  name: string;
  created_at: string;
  /** Last event time handed out, so created_at is strictly increasing per workspace. */
  last_event_ms: number;
}

export interface ApiKeyTable {
  id: string;
  workspace_id: string;
  name: string;
  prefix: string;
  /** sha256 hex of the whole key; the key itself is never stored. */
  key_hash: string;
  scope: 'admin' | 'workspace';
  namespace: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface NamespaceTable {
  workspace_id: string;
  name: string;
  created_at: string;
  last_activity_at: string;
}

export interface EventTable {
  seq: Generated<number>;
  id: string;
  workspace_id: string;
  namespace: string | null;
  type: string;
  created_at: string;
  created_ms: number;
  /** JSON text of the event's `data`. */
  data: string;
}

export interface WebhookTable {
  id: string;
  workspace_id: string;
  url: string;
  /** JSON array of types, or ["*"]. */
  events: string;
  namespace: string | null;
  /** JSON array of data.source values the endpoint wants (events/source-filter.ts); null: any event. */
  sources: string | null;
  description: string | null;
  enabled: number;
  secret: string;
  created_at: string;
  consecutive_failures: number;
  disabled_reason: string | null;
  last_delivery_ok: number | null;
  last_delivery_at: string | null;
  last_delivery_status: number | null;
}

export interface WebhookDeliveryTable {
  id: string;
  workspace_id: string;
  webhook_id: string;
  event_seq: number;
  event_id: string;
  event_type: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_ms: number;
  lease_owner: string | null;
  lease_until_ms: number | null;
  last_status_code: number | null;
  last_error: string | null;
  last_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
  created_ms: number;
}

export interface WebhookAttemptTable {
  id: Generated<number>;
  delivery_id: string;
  workspace_id: string;
  attempted_at: string;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  next_attempt_at: string | null;
}

export interface SnapshotTable {
  id: string;
  workspace_id: string;
  namespace: string;
  label: string | null;
  size_bytes: number;
  file_count: number;
  blob_key: string;
  created_at: string;
  created_ms: number;
}

/** A background process (processes/): its record while it runs and for its retention after. */
export interface ProcessTable {
  id: string;
  workspace_id: string;
  namespace: string;
  /** The first 4 KiB of the command. */
  command: string;
  command_bytes: number;
  command_truncated: number;
  state: 'running' | 'exited';
  exit_code: number | null;
  exit_reason: string | null;
  signal: string | null;
  started_at: string;
  started_ms: number;
  ended_at: string | null;
  ended_ms: number | null;
  timeout_ms: number | null;
  stdin_open: number;
  /** Output totals, written when the process ends (while it runs, its ring files say). */
  stdout_bytes: number;
  stderr_bytes: number;
  stdout_dropped_bytes: number;
  stderr_dropped_bytes: number;
  /** The node running it (a per-start id); only that node can write its stdin or signal it. */
  node: string;
  /** When its node last said it still runs it (cluster: a stale one is marked node_lost). */
  heartbeat_ms: number;
}

export interface Database {
  workspaces: WorkspaceTable;
  api_keys: ApiKeyTable;
  namespaces: NamespaceTable;
  events: EventTable;
  webhooks: WebhookTable;
  webhook_deliveries: WebhookDeliveryTable;
  webhook_attempts: WebhookAttemptTable;
  snapshots: SnapshotTable;
  processes: ProcessTable;
}
