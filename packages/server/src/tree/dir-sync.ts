/**
 * Directory fsyncs shared by the writes that land in one directory. A write's
 * new name is durable once an fsync of its directory that started after the
 * rename has completed, and one fsync covers every rename made before it
 * started. So a write that finds an fsync of its directory running waits for
 * it to end, then shares one more fsync with every other write that arrived
 * meanwhile, instead of each queueing its own behind it.
 *
 * Directories are told apart by (dev, ino) from fstat of the caller's
 * descriptor (the tree hands out descriptors, never paths). Every caller keeps
 * its descriptor open until its fsync is done, so an inode number in the map
 * cannot be freed and reused by another directory meanwhile, and the
 * descriptor a round fsyncs (its first caller's) stays valid while it runs.
 */
import fs from 'node:fs';
import * as io from './fd-io.js';

interface Dir {
  /** The next round, shared by every caller that arrived while the current fsync ran. */
  waiting: { fd: number; done: Promise<void>; resolve(): void; reject(err: unknown): void } | null;
}

export class DirSyncer {
  /** Directories with an fsync running, by "dev:ino". */
  private readonly running = new Map<string, Dir>();
  /** fsync calls made (tests). */
  fsyncs = 0;

  constructor(private readonly fsync: (fd: number) => Promise<void> = io.fsyncFd) {}

  /** Resolves once an fsync of `fd`'s directory that started after this call has completed. */
  sync(fd: number): Promise<void> {
    const st = fs.fstatSync(fd, { bigint: true });
    const key = `${st.dev}:${st.ino}`;
    const dir = this.running.get(key);
    if (!dir) {
      const fresh: Dir = { waiting: null };
      this.running.set(key, fresh);
      return this.round(key, fresh, fd);
    }
    // The running fsync may have started before this caller's rename: the next one covers it.
    if (!dir.waiting) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      dir.waiting = { fd, done, resolve, reject };
    }
    return dir.waiting.done;
  }

  private round(key: string, dir: Dir, fd: number): Promise<void> {
    this.fsyncs++;
    const done = this.fsync(fd);
    // Registered before any caller's await: the next round starts before this round's callers
    // go on (and close their descriptors); it fsyncs a descriptor of one of its own callers.
    const next = () => {
      const w = dir.waiting;
      dir.waiting = null;
      if (w) this.round(key, dir, w.fd).then(w.resolve, w.reject);
      else this.running.delete(key);
    };
    done.then(next, next);
    return done;
  }
}

/** The process's one syncer: writes from every request share it. */
export const dirSyncer = new DirSyncer();
