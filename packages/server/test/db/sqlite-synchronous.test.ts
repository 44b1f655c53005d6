/**
 * TROVE_SQLITE_SYNCHRONOUS (docs/durability.md): SQLite's `synchronous` as configured, NORMAL unless `full`;
 * any other value is refused at start.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.js';
import { openStore, type Store } from '../../src/db/index.js';

const dirs: string[] = [];
let store: Store | null = null;
afterEach(async () => {
  await store?.close();
  store = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function synchronousOf(setting?: 'normal' | 'full'): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'trove-sync-test-'));
  dirs.push(dataDir);
  store = await openStore({ dataDir, databaseUrl: null, sqliteSynchronous: setting });
  const r = await sql<{ synchronous: number }>`pragma synchronous`.execute(store.db);
  return r.rows[0]!.synchronous;
}

describe('SQLite synchronous', () => {
  it('is NORMAL (1) by default and FULL (2) with full', async () => {
    expect(await synchronousOf()).toBe(1);
    await store!.close();
    store = null;
    expect(await synchronousOf('full')).toBe(2);
  });

  it('is read from TROVE_SQLITE_SYNCHRONOUS, and a bad value stops the start with the reason', () => {
    expect(loadConfig({}).sqliteSynchronous).toBe('normal');
    expect(loadConfig({ TROVE_SQLITE_SYNCHRONOUS: 'FULL' }).sqliteSynchronous).toBe('full');
    expect(() => loadConfig({ TROVE_SQLITE_SYNCHRONOUS: 'off' })).toThrow(
      'TROVE_SQLITE_SYNCHRONOUS must be normal or full, got "off"',
    );
  });
});
