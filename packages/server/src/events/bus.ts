/**
 * Live wake-ups for long-polls and SSE streams. A waiter subscribes to its
 * workspace and re-queries the event table when woken, so the bus carries no
 * event data and a lost wake-up can only delay, never corrupt, a response.
 * PostgreSQL mode adds a LISTEN/NOTIFY bridge so every node is woken.
 */
import { EventEmitter } from 'node:events';

export interface EventBus {
  /** Wake every waiter of a workspace (called after the event's transaction commits). */
  publish(workspaceId: string): void;
  /** Returns an unsubscribe function. */
  subscribe(workspaceId: string, listener: () => void): () => void;
  close(): Promise<void>;
}

/** One process's waiters; the PostgreSQL bus adds cross-node wake-ups on top. */
export class LocalEventBus implements EventBus {
  protected readonly emitter = new EventEmitter();

  constructor() {
    // Thousands of tails may wait on one workspace; that is expected, not a leak.
    this.emitter.setMaxListeners(0);
  }

  publish(workspaceId: string): void {
    this.emitter.emit(workspaceId);
  }

  subscribe(workspaceId: string, listener: () => void): () => void {
    this.emitter.on(workspaceId, listener);
    return () => this.emitter.off(workspaceId, listener);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}
