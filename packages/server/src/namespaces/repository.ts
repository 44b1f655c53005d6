/**
 * The `namespaces` registry: the row that makes a namespace listable. Every
 * query filters on the workspace.
 */
import type { Selectable } from 'kysely';
import type { Db } from '../db/index.js';
import type { NamespaceTable } from '../db/schema.js';

export type NamespaceRow = Selectable<NamespaceTable>;

/** What a namespace listing shows. */
export type NamespaceListRow = Pick<NamespaceRow, 'name' | 'created_at' | 'last_activity_at'>;

export class NamespaceRepository {
  constructor(private readonly db: Db) {}

  /** Registers the namespace; a row that already exists is left as it is. True when this call made the row. */
  async register(workspaceId: string, name: string, at: string): Promise<boolean> {
    const r = await this.db
      .insertInto('namespaces')
      .values({ workspace_id: workspaceId, name, created_at: at, last_activity_at: at })
      .onConflict((oc) => oc.columns(['workspace_id', 'name']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async touch(workspaceId: string, name: string, at: string): Promise<void> {
    await this.db
      .updateTable('namespaces')
      .set({ last_activity_at: at })
      .where('workspace_id', '=', workspaceId)
      .where('name', '=', name)
      .execute();
  }

  /** By name. */
  async list(workspaceId: string): Promise<NamespaceListRow[]> {
    return this.db
      .selectFrom('namespaces')
      .select(['name', 'created_at', 'last_activity_at'])
      .where('workspace_id', '=', workspaceId)
      .orderBy('name')
      .execute();
  }

  async exists(workspaceId: string, name: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('namespaces')
      .select('name')
      .where('workspace_id', '=', workspaceId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row !== undefined;
  }

  async remove(workspaceId: string, name: string): Promise<void> {
    await this.db.deleteFrom('namespaces').where('workspace_id', '=', workspaceId).where('name', '=', name).execute();
  }
}
