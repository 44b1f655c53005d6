/**
 * The `snapshots` index: one row per stored archive. Queries that serve a
 * tenant filter on the workspace and namespace; the sweeper's (retention,
 * count limit, orphan blobs) work across workspaces. A row is written and
 * deleted in the caller's transaction, with its snapshot.* event.
 */
import type { Selectable, Transaction } from 'kysely';
import type { Db } from '../db/index.js';
import type { Database, SnapshotTable } from '../db/schema.js';

export type SnapshotRow = Selectable<SnapshotTable>;

export class SnapshotRepository {
  constructor(private readonly db: Db) {}

  /** Runs `fn` as one transaction; the service puts the row change and its event in it. */
  async transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  async insert(trx: Transaction<Database>, row: SnapshotRow): Promise<void> {
    await trx.insertInto('snapshots').values(row).execute();
  }

  /** Deletes the row; false when it was already gone. */
  async delete(trx: Transaction<Database>, workspaceId: string, id: string): Promise<boolean> {
    const res = await trx
      .deleteFrom('snapshots')
      .where('id', '=', id)
      .where('workspace_id', '=', workspaceId)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Every row of one namespace (the start of the namespace's queries). */
  private inNamespace(workspaceId: string, namespace: string) {
    return this.db
      .selectFrom('snapshots')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('namespace', '=', namespace);
  }

  async get(workspaceId: string, namespace: string, id: string): Promise<SnapshotRow | undefined> {
    return this.inNamespace(workspaceId, namespace).where('id', '=', id).executeTakeFirst();
  }

  /** Newest first. */
  async list(workspaceId: string, namespace: string): Promise<SnapshotRow[]> {
    return this.inNamespace(workspaceId, namespace).orderBy('created_ms', 'desc').orderBy('id', 'desc').execute();
  }

  /** Every row of a namespace (its deletion). */
  async ofNamespace(workspaceId: string, namespace: string): Promise<SnapshotRow[]> {
    return this.inNamespace(workspaceId, namespace).execute();
  }

  /** Up to `limit` rows of a namespace past its newest `keep` (the count limit), newest first. */
  async beyondNewest(workspaceId: string, namespace: string, keep: number, limit: number): Promise<SnapshotRow[]> {
    return this.inNamespace(workspaceId, namespace)
      .orderBy('created_ms', 'desc')
      .orderBy('id', 'desc')
      .offset(keep)
      .limit(limit)
      .execute();
  }

  /** Up to `limit` rows of any workspace created before `beforeMs` (retention), oldest first. */
  async createdBefore(beforeMs: number, limit: number): Promise<SnapshotRow[]> {
    return this.db
      .selectFrom('snapshots')
      .selectAll()
      .where('created_ms', '<', beforeMs)
      .orderBy('created_ms')
      .limit(limit)
      .execute();
  }

  /** Namespaces of any workspace holding more than `max` snapshots. */
  async namespacesOver(max: number): Promise<Array<Pick<SnapshotRow, 'workspace_id' | 'namespace'>>> {
    return this.db
      .selectFrom('snapshots')
      .select(['workspace_id', 'namespace'])
      .groupBy(['workspace_id', 'namespace'])
      .having((eb) => eb.fn.countAll(), '>', max)
      .execute();
  }

  /** Which of these ids have a row (in any workspace). */
  async existingIds(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db.selectFrom('snapshots').select('id').where('id', 'in', ids).execute();
    return new Set(rows.map((r) => r.id));
  }
}
