/**
 * kill -9 in the middle of a batch append: a child process (the built server modules, packages/server/dist)
 * commits a first burst of events, then SIGKILLs itself inside the transaction of the second, after all of
 * that batch's rows were inserted (multi-row INSERTs) and before its commit. The log must then hold exactly
 * the first burst, in order, and appends after the restart continue it. SQLite always, PostgreSQL too with
 * TROVE_TEST_PG=1.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, usePg } from '../../../../test/helpers/server.js';
import { openStore, type Store } from '../../src/db/index.js';
import { LocalEventBus } from '../../src/events/bus.js';
import { EventService } from '../../src/events/service.js';
import { nowIso } from '../../src/ids.js';

const dialects = ['sqlite', ...(usePg ? ['postgres'] : [])] as const;
const dist = fileURLToPath(new URL('../../dist/', import.meta.url));

/** The child: the first burst committed, then a burst whose first transaction kills the process. */
const CHILD = `
const [dist, dataDir, databaseUrl, ws] = process.argv.slice(2);
const { openStore } = await import(dist + 'db/index.js');
const { EventService } = await import(dist + 'events/service.js');
const { LocalEventBus } = await import(dist + 'events/bus.js');
const store = await openStore({ dataDir, databaseUrl: databaseUrl || null });
const events = new EventService(store.db, new LocalEventBus(), store.sqliteSync);
const crash = (list) => {
  if (list.some((e) => e.data.crash)) process.kill(process.pid, 'SIGKILL');
};
events.onAppend(async (_t, list) => crash(list), (_run, list) => crash(list));
const burst = (n, data) =>
  Array.from({ length: n }, (_, i) => ({ workspaceId: ws, namespace: 'n', type: 'file.written', data: data(i) }));
await events.emitAll(burst(200, (i) => ({ i, first: true })));
process.stdout.write('committed\\n');
await events.emitAll(burst(300, (i) => ({ i, second: true, crash: i === 250 })));
process.stdout.write('not reached\\n');
`;

function runChild(
  script: string,
  args: string[],
): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, out }));
  });
}

describe.each(dialects)('a batch append killed before its commit, on %s', (dialect) => {
  const work = mkdtempSync(join(tmpdir(), 'trove-batch-crash-'));
  let dropDb: (() => Promise<void>) | null = null;
  const stores: Store[] = [];

  afterAll(async () => {
    for (const s of stores) await s.close();
    await dropDb?.();
    rmSync(work, { recursive: true, force: true });
  });

  it('leaves none of the batch, keeps what was committed before it, and later appends follow on', async () => {
    expect(existsSync(join(dist, 'events/service.js')), 'build first: npm run build').toBe(true);
    let databaseUrl = '';
    if (dialect === 'postgres') {
      const db = await createTestDatabase();
      databaseUrl = db.url;
      dropDb = db.drop;
    }
    const dataDir = join(work, 'data');
    const ws = 'ws-' + randomBytes(8).toString('hex');
    const setup = await openStore({ dataDir, databaseUrl: databaseUrl || null });
    await setup.db
      .insertInto('workspaces')
      .values({ id: ws, name: 't', created_at: nowIso(), last_event_ms: 0 })
      .execute();
    await setup.close();

    const script = join(work, 'child.mjs');
    writeFileSync(script, CHILD);
    const child = await runChild(script, [pathToFileURL(dist).href, dataDir, databaseUrl, ws]);
    expect([child.signal, child.out]).toEqual(['SIGKILL', 'committed\n']);

    const store = await openStore({ dataDir, databaseUrl: databaseUrl || null });
    stores.push(store);
    const rows = async () =>
      (
        await store.db
          .selectFrom('events')
          .select(['seq', 'created_ms', 'data'])
          .where('workspace_id', '=', ws)
          .orderBy('seq')
          .execute()
      ).map((r) => ({
        seq: Number(r.seq),
        ms: Number(r.created_ms),
        data: JSON.parse(r.data) as Record<string, unknown>,
      }));
    const after = await rows();
    expect(after.map((r) => r.data)).toEqual(Array.from({ length: 200 }, (_, i) => ({ i, first: true })));

    const events = new EventService(store.db, new LocalEventBus(), store.sqliteSync);
    const more = await events.emitAll(
      Array.from({ length: 5 }, (_, i) => ({
        workspaceId: ws,
        namespace: 'n',
        type: 'file.written',
        data: { i, later: true },
      })),
    );
    const all = await rows();
    expect(all.map((r) => r.data)).toEqual([...after.map((r) => r.data), ...more.map((e) => e.data)]);
    for (let i = 1; i < all.length; i++) {
      expect(all[i]!.seq).toBeGreaterThan(all[i - 1]!.seq);
      expect(all[i]!.ms).toBeGreaterThan(all[i - 1]!.ms);
    }
  });
});
