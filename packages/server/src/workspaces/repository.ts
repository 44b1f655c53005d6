/**
 * The `workspaces` table. A workspace is created inside the caller's
 * transaction, with its first keys and events (WorkspaceService.create).
 */
import type { Selectable, Transaction } from 'kysely';
import type { Db } from '../db/index.js';
import type { Database, WorkspaceTable } from '../db/schema.js';

export type WorkspaceRow = Selectable<WorkspaceTable>;

export class WorkspaceRepository {
  constructor(private readonly db: Db) {}

  /** Runs `fn` as one transaction; the service puts the workspace, its keys and its events in it. */
  async transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  async insert(trx: Transaction<Database>, row: WorkspaceTable): Promise<void> {
    await trx.insertInto('workspaces').values(row).execute();
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom('workspaces')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async get(id: string): Promise<WorkspaceRow | undefined> {
    return this.db.selectFrom('workspaces').selectAll().where('id', '=', id).executeTakeFirst();
  }
}
