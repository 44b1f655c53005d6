/**
 * How nodes coordinate: the live-event bus and namespace locks. A single node
 * (SQLite) uses in-process versions; PostgreSQL mode replaces them with
 * LISTEN/NOTIFY and advisory locks so several nodes behave as one.
 */
import type { Store } from './db/index.js';
import { LocalEventBus, type EventBus } from './events/bus.js';
import type { EventService } from './events/service.js';
import { LocalNamespaceLocks, type NamespaceLocks } from './services/locks.js';
import type { Logger } from './context.js';

export interface Coordination {
  bus: EventBus;
  locks: NamespaceLocks;
  /** Hooks the event log (e.g. NOTIFY inside the event transaction). */
  attach(events: EventService): void;
}

export async function createCoordination(store: Store, logger: Logger): Promise<Coordination> {
  void store;
  void logger;
  return { bus: new LocalEventBus(), locks: new LocalNamespaceLocks(), attach() {} };
}
