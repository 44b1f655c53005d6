/**
 * The `processes` table: every query filters on the workspace (and the
 * namespace for a tenant's own view), except the node-wide maintenance ones
 * (restart recovery, node liveness, retention).
 */
import type { Selectable } from 'kysely';
import type { Db } from '../db/index.js';
import type { ProcessTable } from '../db/schema.js';

export type ProcessRow = Selectable<ProcessTable>;

/** What an ended process's row gets. */
export interface EndFields {
  exit_code: number | null;
  exit_reason: string;
  signal: string | null;
  ended_at: string;
  ended_ms: number;
  stdout_bytes: number;
  stderr_bytes: number;
  stdout_dropped_bytes: number;
  stderr_dropped_bytes: number;
}

export class ProcessRepository {
  constructor(private readonly db: Db) {}

  async insert(row: ProcessTable): Promise<void> {
    await this.db.insertInto('processes').values(row).execute();
  }

  async remove(workspaceId: string, id: string): Promise<void> {
    await this.db.deleteFrom('processes').where('workspace_id', '=', workspaceId).where('id', '=', id).execute();
  }

  async get(workspaceId: string, namespace: string, id: string): Promise<ProcessRow | undefined> {
    return this.db
      .selectFrom('processes')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('namespace', '=', namespace)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  async list(
    workspaceId: string,
    namespace: string,
    state: 'running' | 'exited' | null,
    limit: number,
  ): Promise<ProcessRow[]> {
    let q = this.db
      .selectFrom('processes')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('namespace', '=', namespace);
    if (state) q = q.where('state', '=', state);
    return q.orderBy('started_ms', 'desc').orderBy('id', 'desc').limit(limit).execute();
  }

  /** Running processes of a namespace on nodes other than `node` (the cluster-wide count). */
  async countRunningElsewhere(workspaceId: string, namespace: string, node: string): Promise<number> {
    const r = await this.db
      .selectFrom('processes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('workspace_id', '=', workspaceId)
      .where('namespace', '=', namespace)
      .where('state', '=', 'running')
      .where('node', '!=', node)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Running rows of a namespace (any node). */
  async running(workspaceId: string, namespace: string): Promise<ProcessRow[]> {
    return this.db
      .selectFrom('processes')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('namespace', '=', namespace)
      .where('state', '=', 'running')
      .execute();
  }

  /** Marks a running row ended; false when it was not running (another node ended it first). */
  async end(workspaceId: string, id: string, f: EndFields): Promise<boolean> {
    const r = await this.db
      .updateTable('processes')
      .set({ ...f, state: 'exited', stdin_open: 0 })
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', id)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async setStdinOpen(workspaceId: string, id: string, open: boolean): Promise<void> {
    await this.db
      .updateTable('processes')
      .set({ stdin_open: open ? 1 : 0 })
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', id)
      .where('state', '=', 'running')
      .execute();
  }

  /** Node liveness: this node still runs its processes. */
  async heartbeat(node: string, nowMs: number): Promise<void> {
    await this.db
      .updateTable('processes')
      .set({ heartbeat_ms: nowMs })
      .where('state', '=', 'running')
      .where('node', '=', node)
      .execute();
  }

  /**
   * Running rows of other nodes not vouched for since `beforeMs` (their node is gone), or all of them
   * (`beforeMs` null); a page of `limit` in id order after `afterId`.
   */
  async orphans(beforeMs: number | null, exceptNode: string, limit: number, afterId = ''): Promise<ProcessRow[]> {
    let q = this.db
      .selectFrom('processes')
      .selectAll()
      .where('state', '=', 'running')
      .where('node', '!=', exceptNode)
      .where('id', '>', afterId);
    if (beforeMs !== null) q = q.where('heartbeat_ms', '<', beforeMs);
    return q.orderBy('id').limit(limit).execute();
  }

  /** Ended rows whose retention has passed. */
  async expired(endedBeforeMs: number, limit: number): Promise<Array<Pick<ProcessRow, 'id' | 'workspace_id'>>> {
    return this.db
      .selectFrom('processes')
      .select(['id', 'workspace_id'])
      .where('state', '=', 'exited')
      .where('ended_ms', '<', endedBeforeMs)
      .limit(limit)
      .execute();
  }

  /** Every row of a namespace (its deletion). */
  async ofNamespace(workspaceId: string, namespace: string): Promise<Array<Pick<ProcessRow, 'id' | 'state'>>> {
    return this.db
      .selectFrom('processes')
      .select(['id', 'state'])
      .where('workspace_id', '=', workspaceId)
      .where('namespace', '=', namespace)
      .execute();
  }
}
