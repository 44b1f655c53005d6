/**
 * Per-namespace reader/writer locks. Writes, deletes and execs take the shared
 * side; snapshot capture and restore take the exclusive side, so a snapshot
 * sees a consistent tree and a restore never interleaves with a write.
 * Waiting is bounded (→ 409/503 style errors from callers), so nothing deadlocks.
 * Cluster mode wraps this with PostgreSQL advisory locks (see cluster-locks.ts).
 */
import { AppError } from '../errors.js';

interface LockState {
  readers: number;
  writer: boolean;
  queue: Array<{ exclusive: boolean; grant: () => void }>;
}

export interface NamespaceLocks {
  shared<T>(workspaceId: string, namespace: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T>;
  exclusive<T>(workspaceId: string, namespace: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T>;
}

export class LocalNamespaceLocks implements NamespaceLocks {
  private readonly states = new Map<string, LockState>();

  async shared<T>(ws: string, ns: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
    const release = await this.acquire(`${ws}/${ns}`, false, timeoutMs);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  async exclusive<T>(ws: string, ns: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
    const release = await this.acquire(`${ws}/${ns}`, true, timeoutMs);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private acquire(key: string, exclusive: boolean, timeoutMs: number): Promise<() => void> {
    let st = this.states.get(key);
    if (!st) {
      st = { readers: 0, writer: false, queue: [] };
      this.states.set(key, st);
    }
    const state = st;
    const release = () => {
      if (exclusive) state.writer = false;
      else state.readers--;
      this.drain(key, state);
    };
    // Writers are not starved: a waiting exclusive request blocks new readers.
    const free = exclusive ? !state.writer && state.readers === 0 : !state.writer && state.queue.length === 0;
    if (free) {
      if (exclusive) state.writer = true;
      else state.readers++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const entry = {
        exclusive,
        grant: () => {
          clearTimeout(timer);
          resolve(release);
        },
      };
      const timer = setTimeout(() => {
        const i = state.queue.indexOf(entry);
        if (i !== -1) state.queue.splice(i, 1);
        this.drain(key, state);
        reject(
          new AppError('conflict', 'The namespace is busy (a snapshot or restore is in progress); retry shortly', {
            retryAfter: 1,
          }),
        );
      }, timeoutMs);
      state.queue.push(entry);
    });
  }

  private drain(key: string, state: LockState): void {
    while (state.queue.length > 0) {
      const head = state.queue[0]!;
      if (head.exclusive) {
        if (state.writer || state.readers > 0) break;
        state.queue.shift();
        state.writer = true;
        head.grant();
        break;
      }
      if (state.writer) break;
      state.queue.shift();
      state.readers++;
      head.grant();
    }
    if (!state.writer && state.readers === 0 && state.queue.length === 0) this.states.delete(key);
  }
}
