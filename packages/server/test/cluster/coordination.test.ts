/**
 * The cluster building blocks against a real PostgreSQL, two "nodes" in one
 * process (each with its own pool and sessions): migrations racing, the
 * LISTEN/NOTIFY bus, advisory namespace locks, the event log's ordering under
 * concurrent appends, losing and regaining the database, and which driver
 * errors count as "database unavailable".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type Store } from '../../src/db/index.js';
import { createCoordination, type Coordination } from '../../src/locks/coordination.js';
import { EventService } from '../../src/events/service.js';
import { PgEventBus } from '../../src/events/pg-bus.js';
import { isDatabaseUnavailable } from '../../src/db/errors.js';
import { migrations } from '../../src/db/migrations.js';
import { advisoryKey } from '../../src/locks/cluster-locks.js';
import { AppError } from '../../src/errors.js';
import { createTestDatabase, type TestDatabase } from '../../../../test/helpers/server.js';
import { pgAvailable, sleep, TcpProxy, viaProxy, waitFor } from './support.js';

const pgState = await pgAvailable();

interface Node {
  store: Store;
  coord: Coordination;
  events: EventService;
  warnings: string[];
}

const quietLogger = (warnings: string[]) => ({
  info(obj: object | string, msg?: string) {
    warnings.push(typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`);
  },
  debug(obj: object | string, msg?: string) {
    warnings.push(typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`);
  },
  warn(obj: object | string, msg?: string) {
    warnings.push(typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`);
  },
  error(obj: object | string, msg?: string) {
    warnings.push(typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`);
  },
});

let db: TestDatabase;
let dataDir: string;
const nodes: Node[] = [];
const WS = 'ws-cluster0000000000000000';

async function openNode(url: string): Promise<Node> {
  const warnings: string[] = [];
  const logger = quietLogger(warnings);
  const store = await openStore({ dataDir, databaseUrl: url });
  const coord = await createCoordination(store, logger);
  const events = new EventService(store.db, coord.bus);
  coord.attach(events);
  const node = { store, coord, events, warnings };
  nodes.push(node);
  // Wake-ups from other nodes only arrive once the LISTEN connection is up.
  await waitFor('the LISTEN session', async () => (coord.bus as PgEventBus).listening, 10_000);
  return node;
}

async function closeNode(n: Node): Promise<void> {
  const i = nodes.indexOf(n);
  if (i !== -1) nodes.splice(i, 1);
  await n.coord.close();
  await n.store.close();
}

/** Resolves with the ms it took for `node`'s bus to wake for WS after `act` started. */
function nextWake(node: Node, workspaceId = WS): { woken: Promise<number>; start(): void } {
  let t0 = 0;
  let unsubscribe = () => {};
  const woken = new Promise<number>((resolve) => {
    unsubscribe = node.coord.bus.subscribe(workspaceId, () => resolve(performance.now() - t0));
  });
  return {
    woken: woken.finally(() => unsubscribe()),
    start: () => {
      t0 = performance.now();
    },
  };
}

describe.skipIf(!pgState.ok)(
  `cluster coordination on PostgreSQL${pgState.ok ? '' : ` — SKIPPED: ${pgState.reason}`}`,
  () => {
    let a: Node;
    let b: Node;

    beforeAll(async () => {
      db = await createTestDatabase();
      dataDir = mkdtempSync(join(tmpdir(), 'trove-coord-'));
    });

    afterAll(async () => {
      for (const n of [...nodes]) await closeNode(n).catch(() => {});
      await db?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('several nodes migrating a fresh database at once all succeed, and migrate it once', async () => {
      const opened = await Promise.all([1, 2, 3, 4].map(() => openNode(db.url)));
      [a, b] = opened;
      for (const n of opened.slice(2)) await closeNode(n);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const r = await client.query<{ name: string }>('select name from kysely_migration order by name');
        expect(r.rows.map((x) => x.name)).toEqual(Object.keys(migrations('postgres')).sort());
      } finally {
        await client.end();
      }
      await a.store.db
        .insertInto('workspaces')
        .values({ id: WS, name: 'cluster', created_at: new Date().toISOString(), last_event_ms: 0 })
        .execute();
    });

    it('an event committed on one node wakes waiters on the other within 50 ms', async () => {
      const lat: number[] = [];
      for (let i = 0; i < 10; i++) {
        const w = nextWake(b);
        w.start();
        await a.events.emit({ workspaceId: WS, namespace: 'n', type: 'file.written', data: { i } });
        lat.push(await w.woken);
      }
      lat.sort((x, y) => x - y);
      // The median is the claim (the tail of a loaded 2-core machine is noise); a polling fallback would be ≥ 1 s.
      expect(lat[5]!).toBeLessThan(50);
      expect(lat[9]!).toBeLessThan(1000);
    });

    it('only committed events wake other nodes, and only for their workspace', async () => {
      let woke = 0;
      const off = b.coord.bus.subscribe(WS, () => woke++);
      const offOther = b.coord.bus.subscribe('ws-other', () => {
        throw new Error('woken for the wrong workspace');
      });
      try {
        await expect(
          a.store.db.transaction().execute(async (trx) => {
            await a.events.emit({ workspaceId: WS, namespace: 'n', type: 'file.written', data: {} }, trx);
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        // A committed event after the rolled-back one: once it arrives, the earlier NOTIFY would have too.
        const w = nextWake(b);
        await a.events.emit({ workspaceId: WS, namespace: 'n', type: 'file.written', data: {} });
        await w.woken;
        await sleep(20);
        expect(woke).toBe(1);
      } finally {
        off();
        offOther();
      }
    });

    it('concurrent appends on two nodes keep created_at unique and increasing in seq order', async () => {
      const emitMany = (n: Node, tag: string) =>
        Promise.all(
          Array.from({ length: 8 }, async (_, worker) => {
            for (let i = 0; i < 15; i++) {
              await n.events.emit({
                workspaceId: WS,
                namespace: 'race',
                type: 'file.written',
                data: { tag, worker, i },
              });
            }
          }),
        );
      await Promise.all([emitMany(a, 'a'), emitMany(b, 'b')]);
      const rows = await a.store.db
        .selectFrom('events')
        .select(['seq', 'created_ms', 'created_at'])
        .where('workspace_id', '=', WS)
        .orderBy('seq')
        .execute();
      expect(rows.length).toBeGreaterThanOrEqual(240);
      for (let i = 1; i < rows.length; i++) {
        expect(rows[i]!.created_ms).toBeGreaterThan(rows[i - 1]!.created_ms);
        expect(rows[i]!.created_at > rows[i - 1]!.created_at).toBe(true);
      }
    });

    it('an exclusive lock on one node holds off shared and exclusive lockers on the other', async () => {
      const order: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const snapshot = a.coord.locks.exclusive(WS, 'locked', async () => {
        order.push('a:exclusive');
        entered();
        await held;
        order.push('a:release');
      });
      await inside;
      const write = b.coord.locks.shared(WS, 'locked', async () => void order.push('b:shared'));
      const restore = b.coord.locks.exclusive(WS, 'locked', async () => void order.push('b:exclusive'));
      const elsewhere = b.coord.locks.exclusive(WS, 'other-namespace', async () => 'free');
      expect(await elsewhere).toBe('free');
      await sleep(150);
      expect(order).toEqual(['a:exclusive']);
      release();
      await Promise.all([snapshot, write, restore]);
      expect(order.slice(0, 2)).toEqual(['a:exclusive', 'a:release']);
      expect(order.slice(2).sort()).toEqual(['b:exclusive', 'b:shared']);
    });

    it('shared locks on two nodes overlap', async () => {
      let inA!: () => void;
      const aInside = new Promise<void>((r) => (inA = r));
      let inB!: () => void;
      const bInside = new Promise<void>((r) => (inB = r));
      // Each holder waits for the other to be inside: only possible if both hold the lock at once.
      await Promise.all([
        a.coord.locks.shared(
          WS,
          'both',
          async () => {
            inA();
            await bInside;
          },
          5000,
        ),
        b.coord.locks.shared(
          WS,
          'both',
          async () => {
            inB();
            await aInside;
          },
          5000,
        ),
      ]);
    });

    it('a lock that cannot be had in time is a 409 with Retry-After, and leaves nothing held', async () => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const holder = a.coord.locks.shared(WS, 'busy', async () => {
        entered();
        await held;
      });
      await inside;
      const t0 = Date.now();
      const err = await b.coord.locks.exclusive(WS, 'busy', async () => 'never', 300).catch((e: unknown) => e);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ status: 409, code: 'conflict', retryAfter: 1 });
      release();
      await holder;
      // The failed writer gave its intent back: readers and writers on both nodes get through at once.
      await b.coord.locks.shared(WS, 'busy', async () => {}, 1000);
      await a.coord.locks.exclusive(WS, 'busy', async () => {}, 1000);
      await b.coord.locks.exclusive(WS, 'busy', async () => {}, 1000);
    });

    it('a waiting writer is not starved by a stream of readers on another node', async () => {
      let stop = false;
      let reads = 0;
      // Three overlapping readers on node A: without writer preference the lock would never be free.
      const readers = Array.from({ length: 3 }, async () => {
        while (!stop) {
          await a.coord.locks
            .shared(
              WS,
              'hot',
              async () => {
                reads++;
                await sleep(30);
              },
              20_000,
            )
            .catch(() => {});
        }
      });
      await sleep(100);
      const t0 = Date.now();
      await b.coord.locks.exclusive(WS, 'hot', async () => {}, 10_000);
      const waited = Date.now() - t0;
      stop = true;
      await Promise.all(readers);
      expect(reads).toBeGreaterThan(3);
      expect(waited).toBeLessThan(5_000);
    });

    it('advisory keys differ per workspace, namespace and kind', () => {
      const keys = new Set([
        advisoryKey('ns', 'ws-a', 'x'),
        advisoryKey('ns', 'ws-a', 'y'),
        advisoryKey('ns', 'ws-b', 'x'),
        advisoryKey('intent', 'ws-a', 'x'),
        advisoryKey('ns', 'ws-a/x', ''),
      ]);
      expect(keys.size).toBe(5);
      for (const k of keys) expect(BigInt(k) >= -(2n ** 63n) && BigInt(k) < 2n ** 63n).toBe(true);
    });

    describe('losing the database', () => {
      let proxy: TcpProxy;
      let c: Node;

      beforeAll(async () => {
        const u = new URL(db.url);
        proxy = new TcpProxy(u.hostname, Number(u.port || 5432));
        await proxy.start();
        c = await openNode(viaProxy(db.url, proxy));
      });
      afterAll(async () => {
        await proxy?.close();
      });

      it('a node cut off from the database gets "unavailable" errors, its locks are freed, and it recovers', async () => {
        let entered!: () => void;
        const inside = new Promise<void>((r) => (entered = r));
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        const holder = c.coord.locks.exclusive(WS, 'cut', async () => {
          entered();
          await held;
        });
        await inside;
        await proxy.cut();

        // PostgreSQL dropped the dead session's advisory locks: another node can take the namespace.
        await a.coord.locks.exclusive(WS, 'cut', async () => {}, 5000);

        const queryErr = await c.store.db
          .selectFrom('workspaces')
          .selectAll()
          .execute()
          .catch((e: unknown) => e);
        expect(isDatabaseUnavailable(queryErr)).toBe(true);
        const lockErr = await c.coord.locks.shared(WS, 'other', async () => {}, 1000).catch((e: unknown) => e);
        expect(lockErr).toMatchObject({ status: 503, code: 'unavailable', retryAfter: 5 });
        release();
        await holder; // releasing a lock of a dead session is a no-op, not an error

        // Waiters on the cut node are woken once LISTEN is back, even though the NOTIFY was sent while it was away.
        let woke = 0;
        const off = c.coord.bus.subscribe(WS, () => woke++);
        await a.events.emit({ workspaceId: WS, namespace: 'n', type: 'file.written', data: { while: 'cut' } });
        await sleep(100);
        expect(woke).toBe(0);
        await proxy.restore();
        await waitFor('the LISTEN session to come back and resync waiters', async () => woke > 0, 10_000).catch(
          (err: Error) => {
            throw new Error(`${err.message}\nnode log:\n${c.warnings.join('\n')}`);
          },
        );
        off();

        await waitFor(
          'queries to work again',
          async () => (await c.store.db.selectFrom('workspaces').selectAll().execute()).length > 0,
          10_000,
        );
        await c.coord.locks.exclusive(WS, 'cut', async () => {}, 5000);
        const w = nextWake(c);
        w.start();
        await b.events.emit({ workspaceId: WS, namespace: 'n', type: 'file.written', data: { after: 'restore' } });
        expect(await w.woken).toBeLessThan(1000);
        expect(c.warnings.join('\n')).toMatch(/database session lost/);
      });
    });

    it('classifies driver errors: outages are "unavailable", SQL mistakes are not', async () => {
      const refused = new pg.Pool({
        connectionString: 'postgres://postgres@127.0.0.1:1/none',
        connectionTimeoutMillis: 2000,
      });
      refused.on('error', () => {});
      const e1 = await refused.query('select 1').catch((e: unknown) => e);
      await refused.end();
      expect(isDatabaseUnavailable(e1)).toBe(true);

      const client = new pg.Client({ connectionString: db.url });
      client.on('error', () => {});
      await client.connect();
      const e2 = await client.query('selec 1').catch((e: unknown) => e);
      expect(isDatabaseUnavailable(e2)).toBe(false);
      const e3 = await client.query('select * from no_such_table').catch((e: unknown) => e);
      expect(isDatabaseUnavailable(e3)).toBe(false);
      const e4 = await client
        .query("insert into workspaces (id, name, created_at) values ($1, 'x', 'y')", [WS])
        .catch((e: unknown) => e);
      expect((e4 as { code?: string }).code).toBe('23505');
      expect(isDatabaseUnavailable(e4)).toBe(false);

      // An operator (or a failover) terminating the backend: 57P01, then a dead client.
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      const killed = client.query('select pg_sleep(5)').catch((e: unknown) => e);
      await sleep(100);
      await admin.query('select pg_terminate_backend($1)', [pid]);
      await admin.end();
      const e5 = await killed;
      expect((e5 as { code?: string }).code).toBe('57P01');
      expect(isDatabaseUnavailable(e5)).toBe(true);
      const e6 = await client.query('select 1').catch((e: unknown) => e);
      expect(isDatabaseUnavailable(e6)).toBe(true);
      await client.end().catch(() => {});

      expect(isDatabaseUnavailable(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }))).toBe(true);
      expect(
        isDatabaseUnavailable(
          Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_UNIQUE' }),
        ),
      ).toBe(false);
      expect(
        isDatabaseUnavailable(new Error('boom', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) })),
      ).toBe(true);
      expect(isDatabaseUnavailable(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]))).toBe(
        true,
      );
      expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
      expect(isDatabaseUnavailable(new TypeError('x is undefined'))).toBe(false);
      expect(isDatabaseUnavailable(null)).toBe(false);
    });
  },
);
