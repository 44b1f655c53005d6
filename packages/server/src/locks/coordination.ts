/**
 * How nodes coordinate: the live-event bus and namespace locks. A single node
 * (SQLite) uses in-process versions; PostgreSQL mode replaces them with
 * LISTEN/NOTIFY and advisory locks so several nodes behave as one.
 * docs/cluster.md describes the guarantees.
 */
import type { Store } from '../db/index.js';
import { PgSession } from '../db/pg-session.js';
import { LocalEventBus, type EventBus } from '../events/bus.js';
import { PgEventBus } from '../events/pg-bus.js';
import type { EventService } from '../events/service.js';
import { LocalNamespaceLocks, type NamespaceLocks } from './namespace-locks.js';
import { ClusterNamespaceLocks } from './cluster-locks.js';
import type { Logger } from '../context.js';

export interface Coordination {
  bus: EventBus;
  locks: NamespaceLocks;
  /** Hooks the event log (e.g. NOTIFY inside the event transaction). */
  attach(events: EventService): void;
  /** Closes the bus and any database sessions the coordination holds. */
  close(): Promise<void>;
}

/**
 * Dedicated connections holding a node's namespace locks. Each lock costs two
 * round trips serialised on its session, so a few sessions keep locking off
 * the critical path of a write-heavy node (see docs/cluster.md for the
 * connection budget).
 */
const LOCK_SESSIONS = 2;

export async function createCoordination(store: Store, logger: Logger): Promise<Coordination> {
  if (store.dialect !== 'postgres' || !store.pgPool) {
    const bus = new LocalEventBus();
    return { bus, locks: new LocalNamespaceLocks(), attach() {}, close: () => bus.close() };
  }
  // The sessions reuse the pool's connection settings but live outside it, so
  // a LISTEN or a held lock never takes a slot that requests need.
  const { max: _max, min: _min, idleTimeoutMillis: _idle, ...config } = store.pgPool.options;
  const bus = new PgEventBus(config, logger);
  const lockSessions = Array.from(
    { length: LOCK_SESSIONS },
    (_, i) => new PgSession({ config, logger, name: `locks-${i}`, eager: true }),
  );
  for (const s of lockSessions) s.start();
  const locks = new ClusterNamespaceLocks(lockSessions, logger);
  let closed: Promise<void> | null = null;
  return {
    bus,
    locks,
    attach(events) {
      events.afterInsertSql = PgEventBus.notify;
    },
    close: () => (closed ??= Promise.all([bus.close(), ...lockSessions.map((s) => s.close())]).then(() => {})),
  };
}
