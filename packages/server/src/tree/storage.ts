/**
 * The data volume's free space, guarded for every tenant write and exec: a
 * server-wide reserve (--min-free-bytes) is refused to tenants so that the
 * database's own commits (events, keys, snapshots' rows) never meet a full
 * disk because one namespace filled it.
 */
import { statfsSync } from 'node:fs';
import { AppError } from '../errors.js';

/** statfs is cheap, but a network volume may answer slowly: one call per interval at most. */
const CHECK_INTERVAL_MS = 500;

export interface StorageStatus {
  freeBytes: number;
  totalBytes: number;
  reserveBytes: number;
}

export function storageFullError(): AppError {
  return new AppError(
    'storage_full',
    'The server is out of storage space for tenant data; delete files or ask the operator to add space',
  );
}

export class StorageGuard {
  private checkedAt = 0;
  private last: StorageStatus | null = null;

  /**
   * `reserveBytes`: null = the default, 5 % of the volume capped at 1 GiB; 0 = no reserve.
   */
  constructor(
    private readonly dataDir: string,
    private readonly reserve: number | null,
  ) {}

  status(fresh = false): StorageStatus {
    const now = Date.now();
    if (!fresh && this.last && now - this.checkedAt < CHECK_INTERVAL_MS) return this.last;
    const s = statfsSync(this.dataDir);
    const totalBytes = s.blocks * s.bsize;
    const reserveBytes = this.reserve ?? Math.min(1024 ** 3, Math.floor(totalBytes * 0.05));
    this.last = { freeBytes: s.bavail * s.bsize, totalBytes, reserveBytes };
    this.checkedAt = now;
    return this.last;
  }

  /** 507 `storage_full` when the volume has less than the reserve left (plus `incoming` bytes, when known). */
  check(incoming = 0): void {
    const short = (s: StorageStatus) => s.freeBytes - incoming < s.reserveBytes;
    // A refusal is never based on a cached figure: space may have been freed since.
    if (short(this.status()) && short(this.status(true))) throw storageFullError();
  }
}

/** ENOSPC / EDQUOT from the kernel (or a full disk under the database), answered as 507 instead of 500. */
export function storageErrorFor(err: unknown): AppError | null {
  const code = (err as { code?: string } | null)?.code;
  // The database's own "disk full" too (SQLite's SQLITE_FULL, PostgreSQL's 53100): the volume is full, not a bug.
  if (code === 'ENOSPC' || code === 'SQLITE_FULL' || code === '53100') return storageFullError();
  if (code === 'EDQUOT') {
    return new AppError('over_quota', "The namespace's disk quota is exhausted; delete files to write again");
  }
  return null;
}
