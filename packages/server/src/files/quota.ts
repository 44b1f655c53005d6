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

export class NamespaceQuota {
  private readonly usage = new Map<string, Usage>();

  /** Namespaces whose last measure found them over their quota (exec wrote past it): writes and execs get 507. */
  private readonly over = new Set<string>();
  /** Namespaces to measure again at the next watch tick (exec ran there, or they are over). */
  private readonly watched = new Map<string, NsContext>();
  private watchTimer: NodeJS.Timeout | null = null;

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

  /** An exec ended: its writes are unknown, so the namespace is measured again now (in the background) and at the next tick. */
  execFinished(ctx: NsContext): void {
    this.invalidateUsage(ctx);
    if (!this.quotaOn) return;
    this.watched.set(`${ctx.workspaceId}/${ctx.namespace}`, ctx);
    void this.usageOf(ctx).catch(() => {});
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

  /** Usage of a namespace (bytes, regular files), cached briefly; `open` is its tree when the caller holds it. */
  async usageOf(ctx: NsContext, open?: NamespaceTree): Promise<{ bytes: number; files: number }> {
    const key = `${ctx.workspaceId}/${ctx.namespace}`;
    const cached = this.usage.get(key);
    if (cached && cached.at > Date.now() - this.limits.usageCacheMs) return cached;
    const tree = open ?? (await this.namespaces.openTree(ctx.workspaceId, ctx.namespace));
    if (!tree) return { bytes: 0, files: 0 };
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
