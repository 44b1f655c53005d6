/**
 * Snapshots of a namespace: create (a gzip'd tar streamed to the blob store
 * while the namespace is held still), list, restore (validated, atomic swap),
 * delete, and the sweeper that enforces retention and the per-namespace
 * count limit. The archive format and the swap live in snapshots/.
 */
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Config } from '../config.js';
import type { Db } from '../db/index.js';
import { AppError } from '../errors.js';
import type { EventService } from '../events/service.js';
import { isoMs, newSnapshotId } from '../ids.js';
import {
  createArchive,
  importLockName,
  normaliseArchive,
  recoverInterruptedRestores,
  restoreArchive,
  workspaceIds,
  type ArchiveStats,
} from './archive.js';
import type { BlobStore } from './blob-store.js';
import type { FileService } from '../files/service.js';
import type { NsContext } from '../namespaces/service.js';
import type { NamespaceLocks } from '../locks/namespace-locks.js';
import type { NamespaceService } from '../namespaces/service.js';
import { SnapshotRepository, type SnapshotRow } from './repository.js';

export interface SnapshotView {
  snapshot_id: string;
  namespace: string;
  label: string | null;
  /** Bytes of the stored (compressed) archive. */
  size_bytes: number;
  /** Files and symlinks in the snapshot (ours). */
  file_count: number;
  created_at: string;
}

export interface SnapshotLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export interface SnapshotDeps {
  db: Db;
  events: EventService;
  namespaces: NamespaceService;
  files: FileService;
  locks: NamespaceLocks;
  blobs: BlobStore;
  config: Pick<Config, 'files' | 'snapshots'>;
  logger: SnapshotLogger;
}

const DAY_MS = 86_400_000;
const ORPHAN_AGE_MS = 3_600_000;
/** A snapshot or restore may wait this long for running writes and execs to finish. */
const LOCK_WAIT_MS = 120_000;

function view(r: SnapshotRow): SnapshotView {
  return {
    snapshot_id: r.id,
    namespace: r.namespace,
    label: r.label,
    size_bytes: Number(r.size_bytes),
    file_count: Number(r.file_count),
    created_at: r.created_at,
  };
}

function notFound(id: string): AppError {
  return new AppError('snapshot_not_found', `Snapshot not found: ${id}`);
}

/** A snapshot's stored archive, opened for download. */
export interface SnapshotArchive {
  snapshotId: string;
  body: NodeJS.ReadableStream;
  /** Bytes of the archive, when the blob store knows it. */
  sizeBytes: number | null;
}

export interface SnapshotImportOptions {
  label: string | null;
  /** false: a plain tar. */
  compressed: boolean;
  /** The request's Content-Length, when it sent one. */
  declaredBytes: number | null;
}

const RESTORE_PREFIX = 'Snapshot cannot be restored: ';

/** The extractor's refusals, worded for an upload. */
function importError(err: unknown): unknown {
  if (err instanceof AppError && err.detail.startsWith(RESTORE_PREFIX)) {
    const why = err.detail
      .slice(RESTORE_PREFIX.length)
      .replace('(not a gzip stream written by a snapshot)', '(not gzip data; send a plain tar as application/x-tar)');
    return new AppError(err.code, `Archive cannot be imported: ${why}`, { retryAfter: err.retryAfter });
  }
  return err;
}

export class SnapshotService {
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  /** Run under the namespace's exclusive lock before a restore touches the tree (background processes stop). */
  readonly restoreHooks: Array<(workspaceId: string, namespace: string) => Promise<void>> = [];
  /** Previous trees still being deleted after their restore answered; close() waits for them. */
  private readonly oldTreeRemovals = new Set<Promise<void>>();
  private readonly repo: SnapshotRepository;

  constructor(private readonly deps: SnapshotDeps) {
    this.repo = new SnapshotRepository(deps.db);
  }

  /**
   * Captures the namespace tree; writes and execs of the namespace wait until
   * it is taken. The tree is read only through its root descriptor (see
   * snapshots/archive-create.ts); a tree deeper than the walk limit is refused
   * (422 tree_too_deep) rather than captured in part.
   */
  async create(ctx: NsContext, label: string | null): Promise<SnapshotView> {
    const { events, namespaces, locks, blobs } = this.deps;
    await namespaces.ensure(ctx.workspaceId, ctx.namespace);
    const id = newSnapshotId();
    const blobKey = `${ctx.workspaceId}/${id}.tar.gz`;
    // The row is written under the lock too, so a namespace deletion (which
    // takes the same lock) cannot slip between the capture and the insert.
    const row = await locks.exclusive(
      ctx.workspaceId,
      ctx.namespace,
      async () => {
        let tree = namespaces.openTree(ctx.workspaceId, ctx.namespace);
        if (!tree) {
          // Deleted between ensure() and the lock: a snapshot of the empty namespace it is now.
          await namespaces.ensure(ctx.workspaceId, ctx.namespace);
          tree = namespaces.openTree(ctx.workspaceId, ctx.namespace);
          if (!tree)
            throw new AppError('conflict', `Namespace ${ctx.namespace} was deleted while being snapshotted; retry`);
        }
        const { stream, done } = createArchive(tree.rootFd);
        const stored = blobs.put(blobKey, stream).catch((err: unknown) => {
          // Nobody reads the archive any more: stop the capture, which would wait for its reader forever.
          (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
          throw err;
        });
        let put: { sizeBytes: number };
        let stats: ArchiveStats;
        try {
          [put, stats] = await Promise.all([stored, done]);
        } finally {
          // Only once both sides settled: the capture reads through this descriptor until `done`.
          await Promise.allSettled([stored, done]);
          tree.close();
        }
        try {
          return await this.record(ctx, { id, label, blobKey, sizeBytes: put.sizeBytes, fileCount: stats.fileCount });
        } catch (err) {
          // Without its row the blob is unreachable: do not keep it.
          await blobs.delete(blobKey).catch(() => {});
          throw err;
        }
      },
      LOCK_WAIT_MS,
    );
    events.bus.publish(ctx.workspaceId);
    // The count limit holds right away, not only at the next sweep.
    await this.pruneNamespace(ctx.workspaceId, ctx.namespace).catch((err: unknown) =>
      this.deps.logger.warn({ err }, 'snapshot count pruning failed'),
    );
    return view(row);
  }

  /**
   * Creates a snapshot from an uploaded tar. The upload is never stored as
   * sent: it is extracted into a private staging tree by the restore's
   * extractor (validated exactly like a restore, against the namespace's
   * limits; a refusal is 422 snapshot_invalid, or 413 like a restore's) and
   * that tree is captured into an archive of our own format
   * (snapshots/archive.ts normaliseArchive). The namespace's tree is never
   * touched and its lock is only taken to record the row, so writes and execs
   * go on meanwhile. Nothing is left behind on failure: no staging tree, no
   * blob, no row, no namespace.
   */
  async import(ctx: NsContext, input: NodeJS.ReadableStream, opts: SnapshotImportOptions): Promise<SnapshotView> {
    const { events, namespaces, locks, blobs, files, config } = this.deps;
    // Staging and blob both take disk: refuse at once when the volume is already below the reserve.
    try {
      files.quota.storage.check(opts.declaredBytes ?? 0);
    } catch (err) {
      (input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      throw err;
    }
    const id = newSnapshotId();
    const blobKey = `${ctx.workspaceId}/${id}.tar.gz`;
    const stagingId = randomBytes(8).toString('hex');
    // Not ensure(): a refused import must not create the namespace.
    const namespacesDir = dirname(namespaces.realDir(ctx.workspaceId, ctx.namespace));
    let put: { sizeBytes: number };
    let stats: ArchiveStats;
    try {
      ({ stored: put, stats } = await locks.exclusive(
        ctx.workspaceId,
        importLockName(stagingId),
        () =>
          normaliseArchive(
            input,
            namespacesDir,
            stagingId,
            {
              maxBytes: config.files.quotaBytes,
              maxFiles: config.files.quotaFiles,
              maxEntryBytes: config.files.maxUploadBytes,
            },
            { compressed: opts.compressed },
            (archive) => blobs.put(blobKey, archive),
          ),
        LOCK_WAIT_MS,
      ));
    } catch (err) {
      await blobs.delete(blobKey).catch(() => {});
      throw importError(err);
    }
    let row: SnapshotRow;
    try {
      // Under the namespace's lock, like create: a namespace deletion cannot slip in before the row.
      row = await locks.shared(
        ctx.workspaceId,
        ctx.namespace,
        async () => {
          await namespaces.ensure(ctx.workspaceId, ctx.namespace);
          const stored = { id, label: opts.label, blobKey, sizeBytes: put.sizeBytes, fileCount: stats.fileCount };
          return this.record(ctx, stored, { imported: true });
        },
        LOCK_WAIT_MS,
      );
    } catch (err) {
      // Without its row the blob is unreachable: do not keep it.
      await blobs.delete(blobKey).catch(() => {});
      throw err;
    }
    events.bus.publish(ctx.workspaceId);
    await this.pruneNamespace(ctx.workspaceId, ctx.namespace).catch((err: unknown) =>
      this.deps.logger.warn({ err }, 'snapshot count pruning failed'),
    );
    return view(row);
  }

  /** A stored archive's row and its `snapshot.created` event, in one transaction. */
  private async record(
    ctx: NsContext,
    stored: { id: string; label: string | null; blobKey: string; sizeBytes: number; fileCount: number },
    extra: Record<string, unknown> = {},
  ): Promise<SnapshotRow> {
    const ms = Date.now();
    const r: SnapshotRow = {
      id: stored.id,
      workspace_id: ctx.workspaceId,
      namespace: ctx.namespace,
      label: stored.label,
      size_bytes: stored.sizeBytes,
      file_count: stored.fileCount,
      blob_key: stored.blobKey,
      created_at: isoMs(ms),
      created_ms: ms,
    };
    await this.repo.transaction(async (trx) => {
      await this.repo.insert(trx, r);
      const data = { snapshot_id: stored.id, label: stored.label, ...extra };
      await this.deps.events.emit(
        { workspaceId: ctx.workspaceId, namespace: ctx.namespace, type: 'snapshot.created', data },
        trx,
      );
    });
    return r;
  }

  /** The snapshot's archive as stored (a gzip'd tar), for download; no lock: a blob never changes once stored. */
  async archive(ctx: NsContext, id: string): Promise<SnapshotArchive> {
    const row = await this.find(ctx, id);
    const { body, sizeBytes } = await this.deps.blobs.open(row.blob_key).catch((err: unknown) => {
      if (err instanceof AppError && err.code === 'snapshot_not_found') {
        throw new AppError(
          'snapshot_not_found',
          `Snapshot ${id} has no stored data (it was removed from the blob store)`,
        );
      }
      throw err;
    });
    return { snapshotId: row.id, body, sizeBytes };
  }

  /** Newest first. */
  async list(ctx: NsContext): Promise<SnapshotView[]> {
    const rows = await this.repo.list(ctx.workspaceId, ctx.namespace);
    return rows.map(view);
  }

  /** Makes the namespace exactly the snapshot; a snapshot of another namespace is "not found". */
  async restore(ctx: NsContext, id: string): Promise<{ files_restored: number }> {
    const { events, namespaces, locks, blobs, files, config } = this.deps;
    const row = await this.find(ctx, id);
    const nsRoot = await namespaces.ensure(ctx.workspaceId, ctx.namespace);
    const owner = namespaces.owner;
    const { filesRestored } = await locks.exclusive(
      ctx.workspaceId,
      ctx.namespace,
      async () => {
        for (const hook of this.restoreHooks) await hook(ctx.workspaceId, ctx.namespace);
        const input = await blobs.get(row.blob_key).catch((err: unknown) => {
          if (err instanceof AppError && err.code === 'snapshot_not_found') {
            throw new AppError(
              'snapshot_not_found',
              `Snapshot ${id} has no stored data (it was removed from the blob store)`,
            );
          }
          throw err;
        });
        try {
          return await restoreArchive(
            input,
            nsRoot,
            {
              maxBytes: config.files.quotaBytes,
              maxFiles: config.files.quotaFiles,
              maxEntryBytes: config.files.maxUploadBytes,
            },
            {
              chown: owner.enabled ? { uid: owner.uid, gid: owner.gid } : undefined,
              // A restored tree keeps the namespace's hard quota: its staging root is a limited subvolume too.
              roots: namespaces.trees.hardQuotaMode.kind === 'btrfs' ? namespaces.trees.hardQuota : undefined,
              // The previous tree is out of the namespace from the commit on: it is deleted after the answer,
              // not under the lock (for a large tree that is most of a restore's time).
              detachOldTreeRemoval: (removal) => {
                this.oldTreeRemovals.add(removal);
                void removal.finally(() => this.oldTreeRemovals.delete(removal));
              },
            },
          );
        } finally {
          // Whatever happened, the cached usage may describe another tree now.
          files.quota.invalidateUsage(ctx);
        }
      },
      LOCK_WAIT_MS,
    );
    await events.emit({
      workspaceId: ctx.workspaceId,
      namespace: ctx.namespace,
      type: 'snapshot.restored',
      data: { snapshot_id: id, files_restored: filesRestored },
    });
    void namespaces.touch(ctx.workspaceId, ctx.namespace).catch(() => {});
    return { files_restored: filesRestored };
  }

  async delete(ctx: NsContext, id: string): Promise<{ snapshot_id: string; deleted: true }> {
    const row = await this.find(ctx, id);
    if (!(await this.remove(row, {}))) throw notFound(id); // deleted concurrently
    return { snapshot_id: id, deleted: true };
  }

  /** Namespace deletion: every snapshot of it goes too (namespaceDeleteHooks). */
  async deleteNamespace(workspaceId: string, namespace: string): Promise<void> {
    const rows = await this.repo.ofNamespace(workspaceId, namespace);
    for (const r of rows) await this.remove(r, { reason: 'namespace_deleted' });
  }

  /**
   * Deletes snapshots older than the retention period and, per namespace,
   * all but the newest `maxPerNamespace`. Safe to run on several nodes at
   * once: a row deleted by another node is skipped.
   */
  async sweep(now = Date.now()): Promise<{ deleted: number }> {
    const { config } = this.deps;
    let deleted = 0;
    const { retentionDays, maxPerNamespace } = config.snapshots;
    if (retentionDays > 0) {
      const expired = await this.repo.createdBefore(now - retentionDays * DAY_MS, 10_000);
      for (const r of expired) if (await this.remove(r, { reason: 'retention' })) deleted++;
    }
    if (maxPerNamespace > 0) {
      const crowded = await this.repo.namespacesOver(maxPerNamespace);
      for (const c of crowded) deleted += await this.pruneNamespace(c.workspace_id, c.namespace);
    }
    await this.removeOrphanBlobs(now);
    return { deleted };
  }

  /**
   * A crash between storing a blob and committing its row leaves a blob no
   * row points to; after an hour (no create takes that long to commit) it is deleted.
   */
  private async removeOrphanBlobs(now: number): Promise<void> {
    const { blobs, logger } = this.deps;
    if (!blobs.list) return;
    const candidates: Array<{ key: string; id: string }> = [];
    for await (const b of blobs.list()) {
      const m = /^[^/]+\/(snap-[0-9a-f]+)\.tar\.gz$/.exec(b.key);
      if (m && b.modifiedMs < now - ORPHAN_AGE_MS) candidates.push({ key: b.key, id: m[1]! });
    }
    for (let i = 0; i < candidates.length; i += 500) {
      const batch = candidates.slice(i, i + 500);
      const known = await this.repo.existingIds(batch.map((c) => c.id));
      for (const c of batch) {
        if (known.has(c.id)) continue;
        logger.warn({ key: c.key }, 'deleting snapshot blob without a database row');
        await blobs.delete(c.key);
      }
    }
  }

  /** Runs sweep() now and every `sweepIntervalMs` (never two at once). */
  startSweeper(): void {
    const run = () => {
      if (this.sweeping) return;
      this.sweeping = this.sweep()
        .then(({ deleted }) => {
          if (deleted > 0) this.deps.logger.info({ deleted }, 'snapshot sweeper removed expired snapshots');
        })
        .catch((err: unknown) => this.deps.logger.error({ err }, 'snapshot sweep failed'))
        .finally(() => (this.sweeping = null));
    };
    run();
    this.sweepTimer = setInterval(run, this.deps.config.snapshots.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  async stopSweeper(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    await this.sweeping;
  }

  /** Shutdown: the sweeper stops and the old trees of answered restores finish going. */
  async close(): Promise<void> {
    await this.stopSweeper();
    await Promise.all(this.oldTreeRemovals);
  }

  private async pruneNamespace(workspaceId: string, namespace: string): Promise<number> {
    const max = this.deps.config.snapshots.maxPerNamespace;
    if (max <= 0) return 0;
    const surplus = await this.repo.beyondNewest(workspaceId, namespace, max, 10_000);
    let n = 0;
    for (const r of surplus) if (await this.remove(r, { reason: 'limit' })) n++;
    return n;
  }

  private async find(ctx: NsContext, id: string): Promise<SnapshotRow> {
    // Security: the lookup is scoped to the caller's namespace, so another namespace's id is simply "not found".
    if (typeof id !== 'string' || !/^snap-[0-9a-f]{1,64}$/.test(id)) throw notFound(String(id));
    const row = await this.repo.get(ctx.workspaceId, ctx.namespace, id);
    if (!row) throw notFound(id);
    return row;
  }

  /**
   * Row and event in one transaction, then the blob. Returns false when the
   * row was already gone (another node or request deleted it first).
   */
  private async remove(r: SnapshotRow, extra: { reason?: string }): Promise<boolean> {
    const { events, blobs, logger } = this.deps;
    const gone = await this.repo.transaction(async (trx) => {
      if (!(await this.repo.delete(trx, r.workspace_id, r.id))) return false;
      await events.emit(
        {
          workspaceId: r.workspace_id,
          namespace: r.namespace,
          type: 'snapshot.deleted',
          data: { snapshot_id: r.id, ...extra },
        },
        trx,
      );
      return true;
    });
    if (!gone) return false;
    events.bus.publish(r.workspace_id);
    await blobs
      .delete(r.blob_key)
      .catch((err: unknown) => logger.warn({ err, key: r.blob_key }, 'snapshot blob delete failed'));
    return true;
  }
}

/** How long start-up recovery waits for a namespace's lock before leaving its restore to the node holding it. */
const RECOVERY_LOCK_WAIT_MS = 1_000;

/**
 * Start-up recovery of interrupted restores in every workspace under
 * `<dataDir>/workspaces`. Runs before the server listens.
 */
export async function recoverAllRestores(
  dataDir: string,
  locks?: NamespaceLocks,
  logger?: SnapshotLogger,
): Promise<void> {
  const root = join(dataDir, 'workspaces');
  for (const ws of await workspaceIds(dataDir)) {
    // Another node holding the namespace's lock is running that restore right now: leave it alone.
    const guard = locks
      ? (ns: string, fn: () => Promise<void>) =>
          locks.exclusive(ws, ns, fn, RECOVERY_LOCK_WAIT_MS).catch((err: unknown) => {
            if (err instanceof AppError && err.code === 'conflict') {
              logger?.info(
                { workspace: ws, namespace: ns },
                'restore or import in progress on another node; not recovering it',
              );
              return;
            }
            throw err;
          })
      : undefined;
    await recoverInterruptedRestores(join(root, ws, 'namespaces'), guard);
  }
}
