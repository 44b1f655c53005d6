/**
 * SQLite WAL checkpoints run on a worker thread (db/checkpointer.ts), never
 * inside a commit on the event loop; a long, fully copied WAL is restarted;
 * a worker that cannot run hands checkpoints back to the server's connection.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openStore, type Store } from '../../src/db/index.js';
import { Checkpointer } from '../../src/db/checkpointer.js';

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function store(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'trove-ckpt-'));
  dirs.push(dir);
  const s = await openStore({ dataDir: dir, databaseUrl: null });
  stores.push(s);
  return s;
}

/** Writes `n` rows, each its own commit (one or more WAL pages each). */
async function writeRows(s: Store, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) {
    await s.db
      .insertInto('workspaces')
      .values({
        id: `w${i}`,
        name: `workspace ${i} ${'x'.repeat(200)}`,
        created_at: new Date().toISOString(),
        last_event_ms: 0,
      })
      .execute();
  }
}

describe('SQLite checkpoint worker', () => {
  it('turns off checkpoints inside commits and checkpoints the WAL from its worker', async () => {
    const s = await store();
    const auto = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(s.db);
    expect(auto.rows[0]!.wal_autocheckpoint).toBe(0);
    await writeRows(s, 50);
    const r = await s.checkpointer!.checkpointNow();
    expect(r).not.toBeNull();
    expect(r!.log).toBeGreaterThan(0);
    // PASSIVE, with nobody else writing: every frame is copied back into the database file.
    expect(r!.checkpointed).toBe(r!.log);
  });

  it('a long WAL starts over once it is fully copied, so it does not grow without bound', async () => {
    const s = await store();
    // Well past the restart threshold (4096 pages): each commit writes at least one page, so without a restart
    // the log would hold at least 5,000 frames from here on.
    await writeRows(s, 5000);
    // Once a checkpoint has copied the whole log, the next commit writes from its start again (SQLite resets a
    // fully copied log when no reader holds it; the server's connection runs a RESTART checkpoint for a long one
    // in case a reader did), and the next checkpoint sees a short log. The worker also checkpoints every second
    // on its own, so that may happen during the writes above: this waits for the outcome by condition, however
    // many rounds it takes on a busy machine.
    let restarted = false;
    const deadline = Date.now() + 50_000;
    for (let i = 0; !restarted && Date.now() < deadline; i++) {
      const r = await s.checkpointer!.checkpointNow();
      restarted = r!.log < 2048;
      if (restarted) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
      await writeRows(s, 1, 100_000 + i);
    }
    expect(restarted).toBe(true);
  });

  it('a worker that cannot open the database hands checkpoints back to the caller and says so', async () => {
    const warnings: string[] = [];
    let handedBack = 0;
    const c = new Checkpointer(
      join(tmpdir(), `trove-no-such-dir-${process.pid}`, 'trove.db'),
      1000,
      { warn: (_o, m) => warnings.push(String(m)) },
      () => handedBack++,
    );
    await expect.poll(() => handedBack, { timeout: 5000 }).toBe(1);
    expect(warnings.some((w) => /checkpoint worker failed/.test(w))).toBe(true);
    expect(await c.checkpointNow()).toBeNull();
    await c.close();
  });

  it('closing the store removes the WAL (the last connection folds it in)', async () => {
    const s = await store();
    await writeRows(s, 20);
    const dir = dirs[dirs.length - 1]!;
    expect(statSync(join(dir, 'trove.db-wal')).size).toBeGreaterThan(0);
    stores.pop();
    await s.close();
    expect(() => statSync(join(dir, 'trove.db-wal'))).toThrow();
  });
});
