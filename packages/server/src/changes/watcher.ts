/**
 * The fanotify group (native/trove_native.c, "change tracker"): a thread in the addon reads it and hands
 * records over in queue order. `marker()` resolves once every record queued before the call has been
 * handed over: how a command's end waits for the last of its changes.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { native, type ChangeBatch } from '../native.js';
import { pidAlive } from '../sandbox/pids.js';

/** One file record of the addon. */
export interface FileRecord {
  /** FAN_* bits. */
  mask: number;
  /** The process's cgroup slot, or null when it could not be told (attributed by namespace). */
  group: string | null;
  /** The entry's full path, when its directory could be named when the record was read. */
  path: string | null;
  /** Otherwise: its directory's handle (hex) and its name. */
  dirHandle: string | null;
  name: string | null;
  /** A directory entry's own handle (hex). */
  target: string | null;
}

export const FAN_CLOSE_WRITE = 0x08;
export const FAN_MOVED_FROM = 0x40;
export const FAN_MOVED_TO = 0x80;
export const FAN_CREATE = 0x100;
export const FAN_DELETE = 0x200;
export const FAN_ONDIR = 0x40000000;

export interface WatcherHandlers {
  /** File records, in queue order; `markers` are the marker seqs met in this batch, after those records. */
  records(records: FileRecord[]): void;
  marker(seq: number): void;
  /** The kernel dropped events (its queue overflowed): what is being tracked now is incomplete. */
  overflow(): void;
}

/** Marker files the addon made at open (native/trove_native.c, CH_RING). */
const RING = 64;

export class FanotifyWatcher {
  private seq = 0;
  private readonly waiting = new Map<number, () => void>();
  /** Ring files free to carry a marker: one whose marker is not read yet must not be reused (it would merge). */
  private readonly freeRing: number[] = Array.from({ length: RING }, (_, k) => k);
  private readonly ringOf = new Map<number, number>();
  private closed = false;

  private constructor(
    private readonly handle: number,
    private readonly markerDir: string,
  ) {}

  /**
   * Watches the file system holding `dataDir` (realpath'd) for changes below `treesPrefix` (ending in
   * '/'). Throws with the errno's name when fanotify cannot be used (not root, an old kernel, a file
   * system without file handles).
   */
  static open(dataDir: string, treesPrefix: string, handlers: WatcherHandlers): FanotifyWatcher {
    // The markers' directory: server-made, never visible to a sandbox (it is not below a namespace tree).
    // Named by host and pid, so a later start on this host removes the ones of servers that died.
    const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
    removeStaleMarkerDirs(dataDir, host);
    const markerDir = join(dataDir, `.changes-${host}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(markerDir, { mode: 0o700 });
    let watcher: FanotifyWatcher | null = null;
    const onBatch = (b: ChangeBatch) => {
      let files: FileRecord[] = [];
      for (let i = 0; i < b.kinds.length; i++) {
        if (b.kinds[i] === 0) {
          files.push({
            mask: b.nums[i]!,
            group: b.groups[i] ?? null,
            path: b.paths[i] ?? null,
            dirHandle: b.handles[i] ?? null,
            name: b.names[i] ?? null,
            target: b.targets[i] ?? null,
          });
          continue;
        }
        if (files.length > 0) handlers.records(files);
        files = [];
        if (b.kinds[i] === 1) {
          handlers.marker(b.nums[i]!);
          watcher?.settle(b.nums[i]!);
        } else {
          handlers.overflow();
        }
      }
      if (files.length > 0) handlers.records(files);
    };
    const h = native().changesOpen(dataDir, treesPrefix, markerDir, onBatch);
    if (h < 0) {
      rmSync(markerDir, { recursive: true, force: true });
      throw new Error(`fanotify is unavailable: ${errnoName(-h)}`);
    }
    watcher = new FanotifyWatcher(h, markerDir);
    return watcher;
  }

  /** A new marker's seq (the record follows everything queued before this call); `done` when it is read. */
  mark(): { seq: number; done: Promise<void> } {
    const seq = ++this.seq;
    if (this.closed) return { seq, done: Promise.resolve() };
    const done = new Promise<void>((resolve) => this.waiting.set(seq, resolve));
    const k = this.freeRing.pop();
    if (k !== undefined) this.ringOf.set(seq, k);
    const rc = k !== undefined ? native().changesMarker(this.handle, seq, k) : native().changesMarker(this.handle, seq);
    if (rc < 0) {
      this.waiting.delete(seq);
      this.release(seq);
      throw new Error(`change tracker marker failed: ${errnoName(-rc)}`);
    }
    return { seq, done };
  }

  private release(seq: number): void {
    const k = this.ringOf.get(seq);
    if (k === undefined) return;
    this.ringOf.delete(seq);
    this.freeRing.push(k);
  }

  private settle(seq: number): void {
    this.release(seq);
    const resolve = this.waiting.get(seq);
    if (!resolve) return;
    this.waiting.delete(seq);
    resolve();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native().changesClose(this.handle);
    for (const resolve of this.waiting.values()) resolve();
    this.waiting.clear();
    rmSync(this.markerDir, { recursive: true, force: true });
  }
}

/** Marker directories of this host's servers that are gone (another node's, on a shared volume, are left alone). */
function removeStaleMarkerDirs(dataDir: string, host: string): void {
  let names: string[];
  try {
    names = readdirSync(dataDir);
  } catch {
    return;
  }
  const prefix = `.changes-${host}-`;
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || pidAlive(pid)) continue;
    rmSync(join(dataDir, name), { recursive: true, force: true });
  }
}

const ERRNO: Record<number, string> = {
  1: 'EPERM',
  12: 'ENOMEM',
  13: 'EACCES',
  22: 'EINVAL',
  24: 'EMFILE',
  38: 'ENOSYS',
  95: 'EOPNOTSUPP',
  18: 'EXDEV',
  19: 'ENODEV',
};

function errnoName(n: number): string {
  return ERRNO[n] ?? `errno ${n}`;
}
