/**
 * Admission control for exec: a global cap, a per-workspace cap and a
 * per-namespace cap on running commands. The workspace cap keeps one tenant
 * from taking every global slot (its namespaces are free to create, so the
 * namespace cap alone does not). Excess callers wait in FIFO order for at
 * most `queueTimeoutMs`; a caller that cannot get all its slots in time is
 * refused so the route can answer 429 instead of piling up requests.
 *
 * The queue is bounded by count, not by a short wait: a burst of first calls
 * (100 new namespaces at once) is a queue that drains steadily, just slowly on
 * a small machine, and refusing its tail after a few seconds only makes the
 * clients come back later. So the server's default wait is the command's own
 * wall clock (TROVE_EXEC_TIMEOUT_MS, config.ts): a waiter is refused when
 * its command could have run to its end meanwhile, or at once when
 * `maxWaiting` (or its workspace's `maxWaitingPerWorkspace`) are already
 * waiting, which is what keeps memory and the answer time bounded.
 */

export interface LimiterOptions {
  global: number;
  perWorkspace: number;
  perNamespace: number;
  queueTimeoutMs: number;
  /** Waiters beyond this are refused at once: a burst must not grow memory without bound. */
  maxWaiting?: number;
  /** Waiters of one workspace beyond this are refused at once, so one tenant cannot fill the whole queue. */
  maxWaitingPerWorkspace?: number;
}

export type Release = () => void;

const waiterKey = (workspace: string, namespace: string) => `${workspace}\0${namespace}`;

export type LimiterScope = 'global' | 'workspace' | 'namespace';

interface Waiter {
  workspace: string;
  key: string;
  grant: (release: Release) => void;
}

export class LimiterBusyError extends Error {
  constructor(readonly scope: LimiterScope) {
    super(`exec limiter busy (${scope})`);
    this.name = 'LimiterBusyError';
  }
}

export class ExecLimiter {
  private running = 0;
  private readonly perWorkspace = new Map<string, number>();
  private readonly perNamespace = new Map<string, number>();
  private readonly waiting: Waiter[] = [];
  private readonly waitingPerWorkspace = new Map<string, number>();
  private readonly maxWaiting: number;
  private readonly maxWaitingPerWorkspace: number;

  constructor(private readonly opts: LimiterOptions) {
    // A waiter is a closure and a timer: 256 of them cost nothing, and a burst of 100 first commands (an agent
    // platform starting 100 sandboxes) waits its turn instead of being refused.
    this.maxWaiting = opts.maxWaiting ?? Math.max(256, opts.global * 16);
    this.maxWaitingPerWorkspace = opts.maxWaitingPerWorkspace ?? Math.max(128, opts.perWorkspace * 8);
  }

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** True when a call of `namespace` (of `workspace`) waits for a slot. */
  waitsFor(workspace: string, namespace: string): boolean {
    const key = waiterKey(workspace, namespace);
    return this.waiting.some((w) => w.key === key);
  }

  /**
   * Resolves with a release function once a slot is free for `namespace` of
   * `workspace`, or rejects with LimiterBusyError after queueTimeoutMs. All
   * caps are taken together (never one while waiting for another) so a
   * workspace or namespace at its own cap does not hold global slots hostage.
   */
  acquire(workspace: string, namespace: string): Promise<Release> {
    // NUL cannot occur in either name: the pair maps to one key unambiguously.
    const key = waiterKey(workspace, namespace);
    // No barging past the queue: drain() runs on every release, so no waiter ever fits while it waits; a free
    // slot now is one no waiter can use (they wait on their own workspace's or namespace's cap).
    if (this.fits(workspace, key)) return Promise.resolve(this.take(workspace, key));
    if (this.waiting.length >= this.maxWaiting) return Promise.reject(new LimiterBusyError('global'));
    if ((this.waitingPerWorkspace.get(workspace) ?? 0) >= this.maxWaitingPerWorkspace) {
      return Promise.reject(new LimiterBusyError('workspace'));
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        workspace,
        key,
        grant: (release) => {
          clearTimeout(timer);
          resolve(release);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(waiter);
        if (i !== -1) {
          this.waiting.splice(i, 1);
          bump(this.waitingPerWorkspace, workspace, -1);
        }
        reject(new LimiterBusyError(this.scopeOf(workspace, key)));
      }, this.opts.queueTimeoutMs);
      this.waiting.push(waiter);
      bump(this.waitingPerWorkspace, workspace, 1);
    });
  }

  /** The narrowest cap that keeps this caller out (what the 429 names). */
  private scopeOf(workspace: string, key: string): LimiterScope {
    if ((this.perNamespace.get(key) ?? 0) >= this.opts.perNamespace) return 'namespace';
    if ((this.perWorkspace.get(workspace) ?? 0) >= this.opts.perWorkspace) return 'workspace';
    return 'global';
  }

  private fits(workspace: string, key: string): boolean {
    return (
      this.running < this.opts.global &&
      (this.perWorkspace.get(workspace) ?? 0) < this.opts.perWorkspace &&
      (this.perNamespace.get(key) ?? 0) < this.opts.perNamespace
    );
  }

  private take(workspace: string, key: string): Release {
    this.running++;
    bump(this.perWorkspace, workspace, 1);
    bump(this.perNamespace, key, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      bump(this.perWorkspace, workspace, -1);
      bump(this.perNamespace, key, -1);
      this.drain();
    };
  }

  /**
   * Grants slots to waiters in arrival order, skipping (not blocking on) a
   * waiter whose workspace or namespace is still at its cap: one busy tenant
   * must not stall every other one behind it.
   */
  private drain(): void {
    for (let i = 0; i < this.waiting.length && this.running < this.opts.global;) {
      const w = this.waiting[i]!;
      if (this.fits(w.workspace, w.key)) {
        this.waiting.splice(i, 1);
        bump(this.waitingPerWorkspace, w.workspace, -1);
        w.grant(this.take(w.workspace, w.key));
      } else {
        i++;
      }
    }
  }
}

/** Adds `by` to a counter, deleting it at zero so idle tenants leave nothing behind. */
function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n <= 0) m.delete(key);
  else m.set(key, n);
}
