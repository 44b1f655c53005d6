/**
 * Long-polls and streams waiting for a workspace's next event.
 *
 * A workspace with waiters has one bus subscription, shared by all of them: a wake-up walks the set of
 * its waiters. A waiter is one object per request (its pending flag, its promise's resolve, its timer)
 * with one callback made once for it; a wait allocates a promise and a timer, nothing else. The server's
 * end reaches every waiter through the same sets, so no wait listens to a server-wide signal: a listener
 * per wait on a long-lived signal (or `AbortSignal.any()` on it, which also keeps a reference per call
 * for the source's lifetime) is memory per request that only a full collection gives back.
 */
import type { EventBus } from './bus.js';

/** One request's (or stream's) wait for the next events of a workspace: EventService.waiter(). */
export interface EventWaiter {
  /**
   * Resolves at the first of: a wake-up since the last wait returned (at once when one came in between),
   * `timeoutMs`, `signal` aborting, end(), the server closing.
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Ends the current wait and every later one at once (the client went away). */
  end(): void;
  /**
   * end() was called or the server is closing: a caller answers with what it has and stops waiting (every
   * wait from then on returns at once, so a loop that kept waiting would spin).
   */
  readonly ended: boolean;
  /** Stops the wake-ups; call once, when the request is done. */
  dispose(): void;
}

interface Workspace {
  waiters: Set<Waiter>;
  unsubscribe: () => void;
}

export class Waiter implements EventWaiter {
  /** Woken since the last wait returned. */
  private pending = false;
  private closed = false;
  private resolve: (() => void) | null = null;
  private timer: NodeJS.Timeout | undefined;
  private signal: AbortSignal | undefined;
  /** The one callback of this waiter: timer, abort listener. */
  private readonly settle = () => this.release();

  constructor(
    private readonly hub: Waiters,
    readonly workspaceId: string,
  ) {}

  get ended(): boolean {
    return this.closed;
  }

  get waiting(): boolean {
    return this.resolve !== null;
  }

  wake(): void {
    this.pending = true;
    this.release();
  }

  end(): void {
    this.closed = true;
    this.release();
  }

  wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.pending || this.closed || signal?.aborted) {
      this.pending = false;
      return Promise.resolve();
    }
    if (this.resolve) throw new Error('EventWaiter.wait() called while a wait is running');
    return new Promise<void>((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(this.settle, Math.max(0, timeoutMs));
      if (signal) {
        this.signal = signal;
        signal.addEventListener('abort', this.settle, { once: true });
      }
    });
  }

  /** Ends the running wait, if any. */
  private release(): void {
    const resolve = this.resolve;
    if (!resolve) return;
    this.resolve = null;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.signal?.removeEventListener('abort', this.settle);
    this.signal = undefined;
    this.pending = false;
    resolve();
  }

  dispose(): void {
    this.hub.remove(this);
    this.release();
  }
}

export class Waiters {
  private readonly workspaces = new Map<string, Workspace>();
  private closed = false;

  constructor(private readonly bus: EventBus) {}

  /** Waiters now registered (diagnostics, tests). */
  get size(): number {
    let n = 0;
    for (const w of this.workspaces.values()) n += w.waiters.size;
    return n;
  }

  /** Waiters in a wait now. */
  get waiting(): number {
    let n = 0;
    for (const w of this.workspaces.values()) for (const waiter of w.waiters) if (waiter.waiting) n++;
    return n;
  }

  /** Workspaces with a bus subscription now (one each, whatever their number of waiters). */
  get subscriptions(): number {
    return this.workspaces.size;
  }

  /** Subscribes before the caller's first query, so an event committed in between still wakes it. */
  open(workspaceId: string): EventWaiter {
    const waiter = new Waiter(this, workspaceId);
    if (this.closed) {
      waiter.end();
      return waiter;
    }
    let ws = this.workspaces.get(workspaceId);
    if (!ws) {
      const waiters = new Set<Waiter>();
      ws = {
        waiters,
        unsubscribe: this.bus.subscribe(workspaceId, () => {
          for (const w of waiters) w.wake();
        }),
      };
      this.workspaces.set(workspaceId, ws);
    }
    ws.waiters.add(waiter);
    return waiter;
  }

  remove(waiter: Waiter): void {
    const ws = this.workspaces.get(waiter.workspaceId);
    if (!ws?.waiters.delete(waiter) || ws.waiters.size > 0) return;
    ws.unsubscribe();
    this.workspaces.delete(waiter.workspaceId);
  }

  /** Server shutdown: every wait returns now, and every later one at once. */
  closeAll(): void {
    this.closed = true;
    for (const ws of this.workspaces.values()) for (const w of ws.waiters) w.end();
  }
}
