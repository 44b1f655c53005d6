/**
 * Admission control for exec: a global cap and a per-key (namespace) cap on
 * running commands. Excess callers wait in FIFO order for at most
 * `queueTimeoutMs`; a caller that cannot get both slots in time is refused so
 * the route can answer 429 instead of piling up requests.
 */

export interface LimiterOptions {
  global: number;
  perKey: number;
  queueTimeoutMs: number;
  /** Waiters beyond this are refused at once: a burst must not grow memory without bound. */
  maxWaiting?: number;
}

export type Release = () => void;

interface Waiter {
  key: string;
  grant: (release: Release) => void;
}

export class LimiterBusyError extends Error {
  constructor(readonly scope: 'global' | 'namespace') {
    super(`exec limiter busy (${scope})`);
    this.name = 'LimiterBusyError';
  }
}

export class ExecLimiter {
  private running = 0;
  private readonly perKey = new Map<string, number>();
  private readonly waiting: Waiter[] = [];
  private readonly maxWaiting: number;

  constructor(private readonly opts: LimiterOptions) {
    this.maxWaiting = opts.maxWaiting ?? Math.max(64, opts.global * 16);
  }

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with a release function once a slot is free for `key`, or rejects
   * with LimiterBusyError after queueTimeoutMs. Both caps are taken together
   * (never one while waiting for the other) so a namespace that is at its own
   * cap does not hold global slots hostage.
   */
  acquire(key: string): Promise<Release> {
    if (this.waiting.length === 0 && this.fits(key)) return Promise.resolve(this.take(key));
    if (this.waiting.length >= this.maxWaiting) return Promise.reject(new LimiterBusyError('global'));
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        key,
        grant: (release) => {
          clearTimeout(timer);
          resolve(release);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(waiter);
        if (i !== -1) this.waiting.splice(i, 1);
        const scope = (this.perKey.get(key) ?? 0) >= this.opts.perKey ? 'namespace' : 'global';
        reject(new LimiterBusyError(scope));
      }, this.opts.queueTimeoutMs);
      this.waiting.push(waiter);
    });
  }

  private fits(key: string): boolean {
    return this.running < this.opts.global && (this.perKey.get(key) ?? 0) < this.opts.perKey;
  }

  private take(key: string): Release {
    this.running++;
    this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      const n = (this.perKey.get(key) ?? 1) - 1;
      if (n === 0) this.perKey.delete(key);
      else this.perKey.set(key, n);
      this.drain();
    };
  }

  /**
   * Grants slots to waiters in arrival order, skipping (not blocking on) a
   * waiter whose namespace is still at its cap: one busy namespace must not
   * stall every other namespace behind it.
   */
  private drain(): void {
    for (let i = 0; i < this.waiting.length && this.running < this.opts.global; ) {
      const w = this.waiting[i]!;
      if (this.fits(w.key)) {
        this.waiting.splice(i, 1);
        w.grant(this.take(w.key));
      } else {
        i++;
      }
    }
  }
}
