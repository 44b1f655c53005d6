/**
 * Snapshot archives: create (tree → gzip'd tar stream) and restore (stream →
 * validated staging tree → atomic swap). The namespace root is always a real
 * directory at its usual path; see tree-swap.ts for the on-disk protocol.
 */
import { restorePhase } from './restore-phases.js';
import { createArchive, type ArchiveStats } from './archive-create.js';
import { extractArchive, invalidArchive, type ArchiveLimits, type ExtractOptions } from './archive-extract.js';
import { errCode } from '../tree/sys.js';
import {
  commitSwap,
  discardStaging,
  flushToDisk,
  ImportStaging,
  prepareStaging,
  removeOldTree,
  type RootMaker,
} from './tree-swap.js';

export {
  createArchive,
  DEFAULT_GZIP_LEVEL,
  MAX_ARCHIVE_PATH_BYTES,
  type ArchiveStats,
  type CreateArchiveOptions,
} from './archive-create.js';
export {
  importLockName,
  recoverInterruptedRestores,
  removeTreeAt,
  TREES_DIR,
  treesDirFor,
  workspaceIds,
} from './tree-swap.js';
export type { ArchiveLimits } from './archive-extract.js';

export interface RestoreOptions extends ExtractOptions {
  /**
   * Flush the extracted tree to disk before the swap (default true), so the
   * old-or-new guarantee also holds across a power cut, not only a process crash.
   */
  durable?: boolean;
  /** How the staging root is made (a limited btrfs subvolume where namespaces have hard quotas). */
  roots?: RootMaker;
  /**
   * Once the swap is committed, the previous tree (moved aside into `.trees/`)
   * is deleted. By default restoreArchive waits for that. With this callback it
   * returns right after the commit and hands over the deletion, which never
   * rejects: the caller can release its lock and answer while a large old tree
   * goes away. The tree is unreachable from the namespace from the commit on,
   * and a crash before it is gone is finished by start-up recovery.
   */
  detachOldTreeRemoval?: (removal: Promise<void>) => void;
}

/**
 * Makes the namespace root `nsRoot` (`<ws>/namespaces/<ns>`, a path the
 * server made) exactly the archive's tree. Every entry is validated while
 * extracting into a private staging directory; only a fully valid archive is
 * swapped in. On a bad archive (AppError snapshot_invalid / quota_exceeded /
 * payload_too_large) or any other failure, `nsRoot` is untouched.
 * The caller holds the namespace's exclusive lock.
 */
export async function restoreArchive(
  input: NodeJS.ReadableStream,
  nsRoot: string,
  limits: ArchiveLimits,
  opts: RestoreOptions = {},
): Promise<{ filesRestored: number }> {
  let plan;
  let removal: Promise<void> | null = null;
  try {
    plan = await prepareStaging(nsRoot, opts.roots);
  } catch (err) {
    (input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    throw err;
  }
  try {
    let filesRestored: number;
    try {
      ({ filesRestored } = await extractArchive(input, plan.stagingFd, limits, opts));
      if (opts.durable !== false) await flushToDisk(plan.stagingFd);
    } catch (err) {
      await discardStaging(plan).catch(() => {});
      throw err;
    }
    restorePhase('before-swap');
    await commitSwap(plan);
    const committed = plan;
    // The removal reads through the plan's descriptors: they are closed when it ends.
    removal = removeOldTree(committed).finally(() => committed.close());
    if (opts.detachOldTreeRemoval) opts.detachOldTreeRemoval(removal);
    else await removal;
    return { filesRestored };
  } finally {
    if (!removal) plan.close();
  }
}

/**
 * Turns an uploaded tar (gzip'd, or plain with `compressed: false`) into an
 * archive of our own format, never passing the upload through: it is
 * extracted into the private staging directory `.trees/import-<id>` of
 * `namespacesDir` by the restore's extractor (so validated exactly like a
 * restore, against the same limits), then that tree is captured with
 * createArchive and handed to `store` as a stream. The staging tree is
 * removed whatever happens. The caller holds `importLockName(id)`.
 */
export async function normaliseArchive<T>(
  input: NodeJS.ReadableStream,
  namespacesDir: string,
  id: string,
  limits: ArchiveLimits,
  opts: { compressed?: boolean },
  store: (archive: NodeJS.ReadableStream) => Promise<T>,
): Promise<{ stored: T; stats: ArchiveStats }> {
  let staging: ImportStaging;
  try {
    staging = await ImportStaging.create(namespacesDir, id);
  } catch (err) {
    (input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    throw err;
  }
  try {
    await extractArchive(input, staging.fd, limits, { compressed: opts.compressed });
    const { stream, done } = createArchive(staging.fd);
    const stored = store(stream).catch((err: unknown) => {
      // Nobody reads the archive any more: stop the capture, which would wait for its reader forever.
      (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
      throw err;
    });
    try {
      const [s, stats] = await Promise.all([stored, done]);
      return { stored: s, stats };
    } catch (err) {
      // Only a server that is not root meets this (root reads whatever mode an entry has).
      if (errCode(err) === 'EACCES') {
        throw invalidArchive(
          'it holds a file or directory without read permission for its owner, which this server (not running as root) cannot read back',
        );
      }
      throw err;
    } finally {
      // The capture reads through the staging descriptor until `done` settles.
      await Promise.allSettled([stored, done]);
    }
  } finally {
    // A tree that could not be removed is left to the next start-up's recovery: the import itself is done.
    await staging.close().catch(() => {});
  }
}
