/**
 * SqliteSync.transaction (db/index.ts) runs at once when no transaction is open on the connection, and waits for
 * Kysely's connection while one of Kysely's transactions is open between two of its statements: its statements
 * must never become part of that transaction (a rollback there must not take them back).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openStore, type Store } from '../../src/db/index.js';

let dir: string;
let store: Store;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trove-sqlite-sync-'));
  store = await openStore({ dataDir: dir, databaseUrl: null });
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const insertWorkspace = (id: string) =>
  store.db
    .insertInto('workspaces')
    .values({ id, name: id, created_at: '2026-01-01T00:00:00.000Z', last_event_ms: 0 })
    .compile();

const ids = async () => (await store.db.selectFrom('workspaces').select('id').orderBy('id').execute()).map((r) => r.id);

describe('SqliteSync.transaction', () => {
  it('commits at once when no transaction is open', async () => {
    let ran = false;
    const done = store.sqliteSync!.transaction((run) => {
      run(insertWorkspace('ws-now'));
      ran = true;
    });
    // Ran synchronously, before this line: no promise hop was needed.
    expect(ran).toBe(true);
    await done;
    expect(await ids()).toContain('ws-now');
  });

  it('waits for an open Kysely transaction instead of joining it, and survives its rollback', async () => {
    let releaseTrx!: () => void;
    const held = new Promise<void>((r) => (releaseTrx = r));
    let inside!: () => void;
    const opened = new Promise<void>((r) => (inside = r));
    const trx = store.db
      .transaction()
      .execute(async (t) => {
        await t.executeQuery(insertWorkspace('ws-rolled-back'));
        inside();
        await held;
        throw new Error('roll back');
      })
      .catch((err: Error) => err.message);
    await opened;
    let ran = false;
    const sync = store.sqliteSync!.transaction((run) => {
      run(insertWorkspace('ws-after'));
      ran = true;
    });
    await new Promise((r) => setImmediate(r));
    // Queued behind the open transaction, not run inside it.
    expect(ran).toBe(false);
    releaseTrx();
    expect(await trx).toBe('roll back');
    await sync;
    expect(ran).toBe(true);
    const now = await ids();
    expect(now).toContain('ws-after');
    expect(now).not.toContain('ws-rolled-back');
  });

  it('rejects with the error of a failed transaction and leaves nothing of it', async () => {
    await expect(
      store.sqliteSync!.transaction((run) => {
        run(insertWorkspace('ws-failed'));
        run(sql`select * from no_such_table`.compile(store.db));
      }),
    ).rejects.toThrow(/no_such_table/);
    expect(await ids()).not.toContain('ws-failed');
    // The connection is usable afterwards, at once again.
    await store.sqliteSync!.transaction((run) => run(insertWorkspace('ws-next')));
    expect(await ids()).toContain('ws-next');
  });
});
