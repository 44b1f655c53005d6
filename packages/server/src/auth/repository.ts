/**
 * The `api_keys` table. Keys are stored only as hashes; a key stops working
 * when its `revoked_at` is set. Writes run in the caller's transaction, with
 * their key.created / key.revoked events (AuthService).
 */
import type { CompiledQuery, Selectable, Transaction } from 'kysely';
import { prepared, type Db, type SqliteSync } from '../db/index.js';
import type { ApiKeyTable, Database } from '../db/schema.js';

export type ApiKeyRow = Selectable<ApiKeyTable>;

/** What authentication needs of a key. */
export type KeyIdentityRow = Pick<ApiKeyRow, 'id' | 'workspace_id' | 'name' | 'scope' | 'namespace' | 'key_hash'>;

/** What a key listing shows (never the hash). */
export type KeyListRow = Pick<ApiKeyRow, 'id' | 'name' | 'prefix' | 'scope' | 'namespace' | 'created_at'>;

export class AuthRepository {
  /**
   * The key lookup runs on every request: compiled once (its only parameter is the hash) instead of
   * being rebuilt and recompiled by the query builder each time.
   */
  private readonly lookup: (params: [hash: string]) => CompiledQuery<KeyIdentityRow>;

  constructor(
    private readonly db: Db,
    /** SQLite: the lookup runs synchronously (see SqliteSync.read for why that is safe here). */
    private readonly sync: SqliteSync | null = null,
  ) {
    this.lookup = prepared<KeyIdentityRow>(
      db
        .selectFrom('api_keys')
        .select(['id', 'workspace_id', 'name', 'scope', 'namespace', 'key_hash'])
        .where('key_hash', '=', '')
        .where('revoked_at', 'is', null)
        .compile(),
    );
  }

  /** Runs `fn` as one transaction; the service puts the key change and its event in it. */
  async transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  /**
   * The unrevoked key with this hash. On SQLite it is read at once, without waiting for Kysely's
   * connection, and the answer is not a promise; on PostgreSQL it is a query like any other.
   */
  findActiveByHash(hash: string): KeyIdentityRow | undefined | Promise<KeyIdentityRow | undefined> {
    const q = this.lookup([hash]);
    if (this.sync) return this.sync.read(q)[0];
    return this.db.executeQuery(q).then((r) => r.rows[0]);
  }

  async insert(trx: Transaction<Database>, row: ApiKeyTable): Promise<void> {
    await trx.insertInto('api_keys').values(row).execute();
  }

  /** Unrevoked keys, oldest first. */
  async listActive(workspaceId: string): Promise<KeyListRow[]> {
    return this.db
      .selectFrom('api_keys')
      .select(['id', 'name', 'prefix', 'scope', 'namespace', 'created_at'])
      .where('workspace_id', '=', workspaceId)
      .where('revoked_at', 'is', null)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  /** Marks the key revoked; false when there is no such unrevoked key. */
  async revoke(trx: Transaction<Database>, workspaceId: string, keyId: string, at: string): Promise<boolean> {
    const res = await trx
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', keyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }
}
