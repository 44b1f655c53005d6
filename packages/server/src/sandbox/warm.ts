/**
 * Warm namespace sandboxes: one bubblewrap sandbox per namespace, made on its
 * first command and kept while it is used, so that a command costs a process
 * entering it (trove-enter) instead of a sandbox built and torn down around it.
 *
 * A sandbox in use (a command or background process holds a lease) is never
 * stopped by the pool. An idle one is stopped after `idleMs`, and when more
 * than `max` are idle the least recently used go first. Stopping kills the
 * sandbox's pid 1, which ends every process in it. Namespace restore and
 * delete, and the server's shutdown, stop it explicitly (stop, stopAll).
 */
import type { SandboxInfo } from './launch.js';

/** A sandbox being made or running. */
export interface WarmHandle {
  /** Resolves once its holder is up (rejects with why it could not start). */
  ready: Promise<SandboxInfo>;
  /** Settles when the sandbox is gone (stopped, or its holder died). */
  done: Promise<unknown>;
  stop(): void;
}

export interface WarmOptions {
  idleMs: number;
  max: number;
}

/** A command's hold on its namespace's sandbox; `release` once the command is over. */
export interface WarmLease {
  info: SandboxInfo;
  /** True while the sandbox still runs (a command that failed to enter a dead one may retry). */
  alive(): boolean;
  release(): void;
}

interface Entry {
  key: string;
  /** The tree it binds (its realpath and inode): a namespace deleted and made again gets a new sandbox. */
  root: string;
  handle: WarmHandle;
  users: number;
  lastUsed: number;
  alive: boolean;
  timer: NodeJS.Timeout | null;
}

export class WarmSandboxes {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(
    private readonly opts: WarmOptions,
    private readonly make: (key: string, nsRoot: string) => WarmHandle,
  ) {}

  /** How many sandboxes run, and how many of them hold no command (admin health, benchmarks). */
  stats(): { warm: number; idle: number } {
    let idle = 0;
    for (const e of this.entries.values()) if (e.users === 0) idle++;
    return { warm: this.entries.size, idle };
  }

  /**
   * The namespace's sandbox, made if needed over `nsRoot`; `root` identifies that tree (its path and
   * inode: a sandbox bound to a tree since replaced is stopped and made again).
   */
  async acquire(key: string, nsRoot: string, root: string): Promise<WarmLease> {
    if (this.closed) throw new Error('the warm sandboxes are closed');
    let e = this.entries.get(key);
    if (e && (!e.alive || e.root !== root)) {
      this.remove(e);
      e = undefined;
    }
    if (!e) {
      this.evict(1);
      e = { key, root, handle: this.make(key, nsRoot), users: 0, lastUsed: Date.now(), alive: true, timer: null };
      const made = e;
      this.entries.set(key, made);
      void made.handle.done.then(
        () => this.gone(made),
        () => this.gone(made),
      );
    } else {
      // Re-inserted: the map's order is least recently used first.
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    const entry = e;
    entry.users++;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    let info: SandboxInfo;
    try {
      info = await entry.handle.ready;
    } catch (err) {
      this.releaseEntry(entry);
      if (this.entries.get(key) === entry) this.remove(entry);
      throw err;
    }
    let released = false;
    return {
      info,
      alive: () => entry.alive,
      release: () => {
        if (released) return;
        released = true;
        this.releaseEntry(entry);
      },
    };
  }

  /** Stops the namespace's sandbox (restore, delete); resolves once it is gone. */
  async stop(key: string): Promise<void> {
    const e = this.entries.get(key);
    if (!e) return;
    this.remove(e);
    await e.handle.done.catch(() => {});
  }

  /** Stops every sandbox (shutdown). */
  async stopAll(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    for (const e of all) this.remove(e);
    await Promise.allSettled(all.map((e) => e.handle.done));
  }

  private releaseEntry(e: Entry): void {
    e.users--;
    e.lastUsed = Date.now();
    if (e.users > 0 || !e.alive || this.closed) return;
    e.timer = setTimeout(() => {
      if (e.users === 0) this.remove(e);
    }, this.opts.idleMs);
    e.timer.unref();
    this.evict(0);
  }

  /** Stops idle sandboxes, least recently used first, until at most `max - room` are idle. */
  private evict(room: number): void {
    let idle = 0;
    for (const e of this.entries.values()) if (e.users === 0) idle++;
    for (const e of [...this.entries.values()]) {
      if (idle + room <= this.opts.max) break;
      if (e.users > 0) continue;
      this.remove(e);
      idle--;
    }
  }

  private remove(e: Entry): void {
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
    e.alive = false;
    e.handle.stop();
  }

  private gone(e: Entry): void {
    e.alive = false;
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
  }
}
