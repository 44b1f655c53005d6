/**
 * Snapshot archives: create (tree → gzip'd tar stream) and restore (stream →
 * validated staging tree → atomic swap). The namespace root is always a real
 * directory at its usual path; see tree-swap.ts for the on-disk protocol.
 */
import { crashPoint } from './crash-points.js';
import { extractArchive, type ArchiveLimits, type ExtractOptions } from './archive-extract.js';
import { commitSwap, discardStaging, flushToDisk, prepareStaging, type RootMaker } from './tree-swap.js';

export {
  createArchive,
  DEFAULT_GZIP_LEVEL,
  MAX_ARCHIVE_PATH_BYTES,
  type ArchiveStats,
  type CreateArchiveOptions,
} from './archive-create.js';
export { recoverInterruptedRestores, removeTreeAt, TREES_DIR, treesDirFor, workspaceIds } from './tree-swap.js';
export type { ArchiveLimits } from './archive-extract.js';

export interface RestoreOptions extends ExtractOptions {
  /**
   * Flush the extracted tree to disk before the swap (default true), so the
   * old-or-new guarantee also holds across a power cut, not only a process crash.
   */
  durable?: boolean;
  /** How the staging root is made (a limited btrfs subvolume where namespaces have hard quotas). */
  roots?: RootMaker;
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
    crashPoint('before-swap');
    await commitSwap(plan);
    return { filesRestored };
  } finally {
    plan.close();
  }
}
