/**
 * Schema migrations, in order. Dialect differences (auto-increment keys) are
 * confined to this folder. Kysely's Migrator takes a database-level lock
 * (an advisory lock on PostgreSQL), so several nodes may start at once.
 */
import { sql, type Kysely, type Migration } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

function serialPk(dialect: DialectName) {
  return dialect === 'postgres' ? ('bigserial' as const) : ('integer' as const);
}

export function migrations(dialect: DialectName): Record<string, Migration> {
  return {
    '0001-core': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('workspaces')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('last_event_ms', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();

        await db.schema
          .createTable('api_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('prefix', 'text', (c) => c.notNull())
          .addColumn('key_hash', 'text', (c) => c.notNull().unique())
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('namespace', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema.createIndex('api_keys_ws').on('api_keys').columns(['workspace_id', 'created_at']).execute();

        await db.schema
          .createTable('namespaces')
          .addColumn('workspace_id', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('last_activity_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('namespaces_pk', ['workspace_id', 'name'])
          .execute();

        await db.schema
          .createTable('events')
          .addColumn('seq', serialPk(dialect), (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('workspace_id', 'text', (c) => c.notNull())
          .addColumn('namespace', 'text')
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_ms', 'bigint', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('events_ws_seq').on('events').columns(['workspace_id', 'seq']).execute();
        await db.schema
          .createIndex('events_ws_ns_seq')
          .on('events')
          .columns(['workspace_id', 'namespace', 'seq'])
          .execute();

        await db.schema
          .createTable('webhooks')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('workspace_id', 'text', (c) => c.notNull())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('namespace', 'text')
          .addColumn('description', 'text')
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('secret', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('disabled_reason', 'text')
          .addColumn('last_delivery_ok', 'integer')
          .addColumn('last_delivery_at', 'text')
          .addColumn('last_delivery_status', 'integer')
          .execute();
        await db.schema.createIndex('webhooks_ws').on('webhooks').column('workspace_id').execute();

        await db.schema
          .createTable('webhook_deliveries')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('workspace_id', 'text', (c) => c.notNull())
          .addColumn('webhook_id', 'text', (c) => c.notNull())
          .addColumn('event_seq', 'bigint', (c) => c.notNull())
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addColumn('event_type', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_ms', 'bigint', (c) => c.notNull())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until_ms', 'bigint')
          .addColumn('last_status_code', 'integer')
          .addColumn('last_error', 'text')
          .addColumn('last_attempt_at', 'text')
          .addColumn('delivered_at', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_ms', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('deliveries_due')
          .on('webhook_deliveries')
          .columns(['status', 'next_attempt_ms'])
          .execute();
        await db.schema
          .createIndex('deliveries_webhook')
          .on('webhook_deliveries')
          .columns(['webhook_id', 'event_seq'])
          .execute();

        await db.schema
          .createTable('webhook_attempts')
          .addColumn('id', serialPk(dialect), (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('delivery_id', 'text', (c) => c.notNull())
          .addColumn('workspace_id', 'text', (c) => c.notNull())
          .addColumn('attempted_at', 'text', (c) => c.notNull())
          .addColumn('status_code', 'integer')
          .addColumn('error', 'text')
          .addColumn('duration_ms', 'integer', (c) => c.notNull())
          .addColumn('next_attempt_at', 'text')
          .execute();
        await db.schema.createIndex('attempts_delivery').on('webhook_attempts').column('delivery_id').execute();

        await db.schema
          .createTable('snapshots')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('workspace_id', 'text', (c) => c.notNull())
          .addColumn('namespace', 'text', (c) => c.notNull())
          .addColumn('label', 'text')
          .addColumn('size_bytes', 'bigint', (c) => c.notNull())
          .addColumn('file_count', 'integer', (c) => c.notNull())
          .addColumn('blob_key', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_ms', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('snapshots_ns')
          .on('snapshots')
          .columns(['workspace_id', 'namespace', 'created_ms'])
          .execute();
        void sql;
      },
    },
    // Webhooks: a resend restarts the retry window (start + backoff step), and the
    // claim query finds each endpoint's oldest pending delivery with one index seek.
    '0002-webhooks': {
      async up(db: Kysely<any>) {
        await db.schema.alterTable('webhook_deliveries').addColumn('window_start_ms', 'bigint').execute();
        await db.schema
          .alterTable('webhook_deliveries')
          .addColumn('window_attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .createIndex('deliveries_head')
          .on('webhook_deliveries')
          .columns(['webhook_id', 'status', 'event_seq', 'id'])
          .execute();
      },
    },
    // Events `since`: every long-poll tail re-queries `created_ms > ?` on each wake-up.
    // With only (workspace_id, seq) that walks the whole workspace log backwards
    // (7 ms at 10,000 events, linear in the log, once per tail per write); a range
    // seek on created_ms reads just the new rows. The namespace variant serves
    // `trove tail --namespace` without scanning other namespaces' events.
    '0003-events-since': {
      async up(db: Kysely<any>) {
        await db.schema.createIndex('events_ws_created').on('events').columns(['workspace_id', 'created_ms']).execute();
        await db.schema
          .createIndex('events_ws_ns_created')
          .on('events')
          .columns(['workspace_id', 'namespace', 'created_ms'])
          .execute();
      },
    },
    // Background processes (processes/): one row per process, running or kept for its retention.
    '0004-processes': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('processes')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('workspace_id', 'text', (c) => c.notNull())
          .addColumn('namespace', 'text', (c) => c.notNull())
          .addColumn('command', 'text', (c) => c.notNull())
          .addColumn('command_bytes', 'integer', (c) => c.notNull())
          .addColumn('command_truncated', 'integer', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('exit_code', 'integer')
          .addColumn('exit_reason', 'text')
          .addColumn('signal', 'text')
          .addColumn('started_at', 'text', (c) => c.notNull())
          .addColumn('started_ms', 'bigint', (c) => c.notNull())
          .addColumn('ended_at', 'text')
          .addColumn('ended_ms', 'bigint')
          .addColumn('timeout_ms', 'bigint')
          .addColumn('stdin_open', 'integer', (c) => c.notNull())
          .addColumn('stdout_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('stderr_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('stdout_dropped_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('stderr_dropped_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('node', 'text', (c) => c.notNull())
          .addColumn('heartbeat_ms', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('processes_ns')
          .on('processes')
          .columns(['workspace_id', 'namespace', 'started_ms'])
          .execute();
        await db.schema.createIndex('processes_state').on('processes').columns(['state', 'node']).execute();
        await db.schema.createIndex('processes_ended').on('processes').columns(['ended_ms']).execute();
      },
    },
    // Webhook endpoints filtered on data.source (changes made by commands vs the files API's): JSON array, null = any.
    '0005-webhook-sources': {
      async up(db: Kysely<any>) {
        await db.schema.alterTable('webhooks').addColumn('sources', 'text').execute();
      },
    },
  };
}
