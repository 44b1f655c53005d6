/**
 * A namespace's usage against its quota (bytes and regular files, TROVE_QUOTA_*), and the volume's
 * reserve: measured from the tree, cached briefly, adjusted by the files API's own writes, and measured
 * again after commands (whose writes are unknown) and while a namespace is over its quota.
 */
import { AppError } from '../errors.js';
import type { NamespaceService, NsContext } from '../namespaces/service.js';
import type { StorageGuard } from '../tree/storage.js';
import type { NamespaceTree, Stat } from '../tree/index.js';

/**
 * Entries a usage measure examines at most (≈ 1–3 s of fstatat): past it the
 * usage counts what was seen, so one namespace of millions of entries cannot
 * make every write of its own pay for a full walk.
 */
const MEASURE_MAX_ENTRIES = 1_000_000;

/** How often namespaces where exec ran (or that are over their quota) are measured again. */
const WATCH_INTERVAL_MS = 30_000;

/**
 * After a measure that commands asked for, the namespace's next one waits this many times as long as it took:
 * a tenant running commands back to back in a tree of a million files gets its usage measured about a tenth
 * of the time, not once per command (each walk is its tree's size in system calls, on the cores every
 * tenant shares). A small tree is measured again within milliseconds.
 */
const REMEASURE_SPACING = 9;

/** A namespace's quota (Config.files): 0 is no limit. */
export interface QuotaLimits {
  quotaBytes: number;
  quotaFiles: number;
  /** How long a measured usage is trusted (see Config.files.usageCacheMs). */
  usageCacheMs: number;
}

interface Usage {
  bytes: number;
  files: number;
  at: number;
}

/** The measures commands asked for in one namespace: one at a time, then a pause (REMEASURE_SPACING). */
interface Remeasure {
  ctx: NsContext;
  running: boolean;
  /** Asked for again while running or pausing: one more measure follows. */
  again: boolean;
  pause: NodeJS.Timeout | null;
}

export class NamespaceQuota {
  private readonly usage = new Map<string, Usage>();

  /** Namespaces whose last measure found them over their quota (exec wrote past it): writes and execs get 507. */
  private readonly over = new Set<string>();
  /** Namespaces to measure again at the next watch tick (exec ran there, or they are over). */
  private readonly watched = new Map<string, NsContext>();
  private watchTimer: NodeJS.Timeout | null = null;
  /** Measures under way, by namespace: a caller arriving meanwhile shares the walk instead of starting another. */
  private readonly measuring = new Map<string, Promise<Usage>>();
  private readonly remeasures = new Map<string, Remeasure>();

  constructor(
    private readonly namespaces: NamespaceService,
    readonly limits: QuotaLimits,
    readonly storage: StorageGuard,
  ) {}

  private get quotaOn(): boolean {
    return this.limits.quotaBytes > 0 || this.limits.quotaFiles > 0;
  }

  /**
   * Before anything that makes a namespace grow (writes, uploads, execs): 507
   * `storage_full` when the volume is below the server's reserve, 507
   * `over_quota` while the namespace's measured usage is over its quota (what
   * exec wrote counts; the limit is soft: exec can pass it, then the
   * namespace may only shrink until it is below again).
   */
  async assertCanGrow(ctx: NsContext, incoming = 0, measure = false): Promise<void> {
    this.storage.check(incoming);
    if (!this.quotaOn) return;
    const key = `${ctx.workspaceId}/${ctx.namespace}`;
    // Writes measure (cached) anyway for their budget; an exec only looks again when the last measure found it over.
    if (!measure && !this.over.has(key)) return;
    const u = await this.usageOf(ctx); // re-measured when stale: deletes may have brought it below
    if (this.over.has(key)) {
      const { quotaBytes, quotaFiles } = this.limits;
      throw new AppError(
        'over_quota',
        `The namespace is over its quota (${u.bytes} bytes${quotaBytes ? ` of ${quotaBytes}` : ''}, ${u.files} files${quotaFiles ? ` of ${quotaFiles}` : ''}); delete files to write again`,
      );
    }
  }

  /**
   * An exec ended: its writes are unknown, so the namespace is measured again in the background (soon, and at
   * the next tick). Until that measure lands, writes are checked against the usage known before the command
   * (the quota is soft for what commands write: they may pass it, then the namespace may only shrink).
   */
  execFinished(ctx: NsContext): void {
    if (!this.quotaOn) {
      this.invalidateUsage(ctx);
      return;
    }
    const key = `${ctx.workspaceId}/${ctx.namespace}`;
    this.watched.set(key, ctx);
    const r = this.remeasures.get(key);
    if (r) {
      r.ctx = ctx;
      r.again = true;
      return;
    }
    this.remeasure(key, { ctx, running: false, again: false, pause: null });
  }

  /** One measure for the commands of `key`, then its pause; another one after it when asked meanwhile. */
  private remeasure(key: string, r: Remeasure): void {
    this.remeasures.set(key, r);
    r.running = true;
    r.again = false;
    const started = performance.now();
    void this.usageOf(r.ctx, undefined, true)
      .catch(() => {})
      .then(() => {
        r.running = false;
        if (!this.remeasures.has(key)) return; // stopped
        r.pause = setTimeout(
          () => {
            r.pause = null;
            if (r.again) this.remeasure(key, r);
            else this.remeasures.delete(key);
          },
          Math.ceil((performance.now() - started) * REMEASURE_SPACING),
        );
        r.pause.unref();
      });
  }

  /** Measures watched namespaces every WATCH_INTERVAL_MS (processes may keep writing after an exec answered). */
  startWatching(): void {
    if (this.watchTimer || !this.quotaOn) return;
    this.watchTimer = setInterval(() => void this.watchTick(), WATCH_INTERVAL_MS);
    this.watchTimer.unref();
  }

  stopWatching(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = null;
    for (const r of this.remeasures.values()) if (r.pause) clearTimeout(r.pause);
    this.remeasures.clear();
  }

  private async watchTick(): Promise<void> {
    const due = [...this.watched.entries()];
    this.watched.clear();
    for (const [key, ctx] of due) {
      this.invalidateUsage(ctx);
      await this.usageOf(ctx).catch(() => {});
      if (this.over.has(key)) this.watched.set(key, ctx);
    }
  }

  /**
   * Usage of a namespace (bytes, regular files), cached briefly; `open` is its tree when the caller holds it.
   * Callers arriving during a measure share it. `fresh`: a walk that starts now or after the one under way
   * (which may have passed what changed since it began), whatever the cache holds.
   */
  async usageOf(ctx: NsContext, open?: NamespaceTree, fresh = false): Promise<{ bytes: number; files: number }> {
    const key = `${ctx.workspaceId}/${ctx.namespace}`;
    const cached = this.usage.get(key);
    if (!fresh && cached && cached.at > Date.now() - this.limits.usageCacheMs) return cached;
    const under = this.measuring.get(key);
    if (under && !fresh) return under;
    const next: Promise<Usage> = (under ? under.catch(() => {}) : Promise.resolve())
      .then(() => this.measure(ctx, key, open))
      .finally(() => {
        if (this.measuring.get(key) === next) this.measuring.delete(key);
      });
    this.measuring.set(key, next);
    return next;
  }

  private async measure(ctx: NsContext, key: string, open?: NamespaceTree): Promise<Usage> {
    const tree = open ?? (await this.namespaces.openTree(ctx.workspaceId, ctx.namespace));
    if (!tree) return { bytes: 0, files: 0, at: Date.now() };
    let u;
    try {
      u = await tree.measure(MEASURE_MAX_ENTRIES);
    } finally {
      if (!open) tree.close();
    }
    const usage = { bytes: u.bytes, files: u.files, at: Date.now() };
    this.usage.set(key, usage);
    const { quotaBytes, quotaFiles } = this.limits;
    if ((quotaBytes > 0 && u.bytes > quotaBytes) || (quotaFiles > 0 && u.files > quotaFiles)) this.over.add(key);
    else this.over.delete(key);
    return usage;
  }

  /** Forget cached usage (after exec or restore changed the tree behind our back). */
  invalidateUsage(ctx: NsContext): void {
    this.usage.delete(`${ctx.workspaceId}/${ctx.namespace}`);
  }

  /** A files API write changed the namespace by this much (cached usage only: the next measure is exact). */
  adjust(ctx: NsContext, bytes: number, files: number): void {
    const u = this.usage.get(`${ctx.workspaceId}/${ctx.namespace}`);
    if (u) {
      u.bytes += bytes;
      u.files += files;
    }
  }

  /** 507 quota_exceeded: a write would take the namespace past its quota. */
  exceededError(): AppError {
    const { quotaBytes, quotaFiles } = this.limits;
    return new AppError(
      'quota_exceeded',
      `Namespace quota exceeded (limits: ${quotaBytes || 'unlimited'} bytes, ${quotaFiles || 'unlimited'} files)`,
    );
  }

  /** What a write may still add to the namespace (null: no limit); `existing` is the file it replaces. */
  async budget(
    ctx: NsContext,
    tree: NamespaceTree,
    existing: Stat | null,
  ): Promise<{ bytes: number | null; files: number | null }> {
    const { quotaBytes, quotaFiles } = this.limits;
    if (!quotaBytes && !quotaFiles) return { bytes: null, files: null };
    const u = await this.usageOf(ctx, tree);
    const freed = existing?.isFile() ? existing.size : 0;
    return {
      bytes: quotaBytes ? Math.max(0, quotaBytes - u.bytes + freed) : null,
      files: quotaFiles ? Math.max(0, quotaFiles - u.files) : null,
    };
  }
}
