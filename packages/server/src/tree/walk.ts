/**
 * Walks over directory descriptors: every step opens a child relative to its
 * parent's descriptor with RESOLVE_NO_SYMLINKS (a name swapped for a link
 * between two calls is refused, never followed), lists it with getdents64 in
 * bounded batches and inspects entries with fstatat(AT_SYMLINK_NOFOLLOW).
 * No path string is ever re-joined and handed back to the kernel.
 *
 * A walk holds one descriptor per level it is inside of, so its depth is
 * bounded (MAX_WALK_DEPTH); removal has no such limit (see removeTree).
 */
import fs from 'node:fs';
import { closeSyncQuietly as closeQuietly } from './fd-io.js';
import { randomBytes } from 'node:crypto';
import {
  AT_REMOVEDIR,
  BENEATH_NO_LINKS,
  DT_DIR,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_RDONLY,
  errCode,
  fstatat,
  openat2,
  readDirBatch,
  renameat2,
  unlinkatAsync,
  type DirEntry,
  type Stat,
} from './sys.js';

/** Levels a walk descends (one descriptor each). Deeper entries are reported as skipped. */
export const MAX_WALK_DEPTH = 256;
/** getdents64 buffer per open directory: ~1,000 entries of short names per batch. */
const DIRENT_BUF = 32 * 1024;
/** Entries handled between two turns of the event loop (each costs a few µs of syscalls). */
const SLICE = 256;
/** Passes over one directory while something keeps creating names in it, before removal gives up. */
const MAX_REWINDS = 16;

export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Opens the directory `name` of `dirFd` without following a link (null when it is not a directory any more). */
export function openChildDir(dirFd: number, name: string | Buffer): number | null {
  try {
    return openat2(dirFd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH_NO_LINKS);
  } catch (err) {
    const code = errCode(err);
    // Vanished, replaced by a file or a link, or unreadable: not a directory we walk into.
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EXDEV' || code === 'EACCES')
      return null;
    throw err;
  }
}

export { closeQuietly };

/** Reads an open directory batch by batch; each batch holds at most DIRENT_BUF bytes of names. */
export class DirReader {
  private readonly buf = Buffer.allocUnsafe(DIRENT_BUF);
  private done = false;
  constructor(readonly fd: number) {}

  /** The next batch, or null at the end. */
  next(): DirEntry[] | null {
    if (this.done) return null;
    const batch = readDirBatch(this.fd, this.buf);
    if (batch.length === 0) {
      this.done = true;
      return null;
    }
    return batch;
  }
}

export interface VisitedEntry {
  /** The directory descriptor the entry is in (valid during the callback only). */
  dirFd: number;
  name: Buffer;
  /** Path of the entry relative to the walk's start, as name bytes joined with '/'. */
  rel: Buffer;
  depth: number;
  /** lstat of the entry (never follows a link). */
  st: Stat;
}

export interface WalkOptions {
  /** Called for every entry; return false to stop the walk. */
  visit(e: VisitedEntry): boolean | void;
  /** Whether to descend into a directory (default: always). */
  descend?(e: VisitedEntry): boolean;
  /** Sort each batch by name bytes (deterministic archives; a huge directory is sorted per batch only). */
  sorted?: boolean;
}

export interface WalkResult {
  /** False when the walk was stopped by visit(). */
  complete: boolean;
  /** Directories not entered because they were deeper than MAX_WALK_DEPTH. */
  tooDeep: number;
}

const SLASH = Buffer.from('/');

/**
 * Depth-first pre-order walk below the open directory `startFd` (not closed
 * here). Entries that vanish or change type while walking are skipped.
 */
export async function walkTree(startFd: number, opts: WalkOptions): Promise<WalkResult> {
  interface Frame {
    fd: number;
    reader: DirReader;
    rel: Buffer | null;
    depth: number;
    batch: DirEntry[];
    i: number;
  }
  // A descriptor of its own: a directory's read position lives in its open file, which the caller's shares.
  const first = openat2(startFd, '.', O_RDONLY | O_DIRECTORY, 0, BENEATH_NO_LINKS);
  const frames: Frame[] = [{ fd: first, reader: new DirReader(first), rel: null, depth: 0, batch: [], i: 0 }];
  let tooDeep = 0;
  let work = 0;
  try {
    while (frames.length > 0) {
      const f = frames[frames.length - 1]!;
      if (f.i >= f.batch.length) {
        const next = f.reader.next();
        if (next === null) {
          frames.pop();
          closeQuietly(f.fd);
          continue;
        }
        if (opts.sorted) next.sort((a, b) => Buffer.compare(a.name, b.name));
        f.batch = next;
        f.i = 0;
      }
      const d = f.batch[f.i++]!;
      if (++work % SLICE === 0) await yieldToLoop();
      let st: Stat | null;
      try {
        st = fstatat(f.fd, d.name);
      } catch {
        st = null;
      }
      if (!st) continue; // vanished meanwhile
      const rel = f.rel === null ? d.name : Buffer.concat([f.rel, SLASH, d.name]);
      const e: VisitedEntry = { dirFd: f.fd, name: d.name, rel, depth: f.depth, st };
      if (opts.visit(e) === false) return { complete: false, tooDeep };
      if (!st.isDirectory() || (opts.descend && !opts.descend(e))) continue;
      if (f.depth + 1 >= MAX_WALK_DEPTH) {
        tooDeep++;
        continue;
      }
      const fd = openChildDir(f.fd, d.name);
      if (fd === null) continue;
      frames.push({ fd, reader: new DirReader(fd), rel, depth: f.depth + 1, batch: [], i: 0 });
    }
    return { complete: true, tooDeep };
  } finally {
    for (const f of frames) closeQuietly(f.fd);
  }
}

/** What a regular-file count and byte sum found; `complete` is false when the entry budget ran out. */
export interface Measured {
  bytes: number;
  files: number;
  complete: boolean;
}

/** Sums the apparent size of every regular file below `startFd` (at most `maxEntries` entries examined). */
export async function measureTree(startFd: number, maxEntries: number): Promise<Measured> {
  let bytes = 0;
  let files = 0;
  let seen = 0;
  const r = await walkTree(startFd, {
    visit(e) {
      if (e.st.isFile()) {
        bytes += e.st.size;
        files++;
      }
      return ++seen < maxEntries;
    },
  });
  return { bytes, files, complete: r.complete && r.tooDeep === 0 };
}

/**
 * Removes the entry `name` of `dirFd` whatever it is: a file or link is
 * unlinked; a directory is emptied through descriptors and removed. A subtree
 * deeper than MAX_WALK_DEPTH is moved to `hoistFd` (a private directory on the
 * same filesystem) under a fresh name and removed from there, so the depth of
 * a tree never exhausts descriptors. Read-only directories (0555 left by an
 * agent or a restore) are made writable first when the server is not root.
 * Missing is not an error.
 */
export async function removeEntry(dirFd: number, name: string | Buffer, hoistFd: number): Promise<void> {
  const roots: Array<{ parentFd: number; name: string | Buffer }> = [{ parentFd: dirFd, name }];
  while (roots.length > 0) {
    const root = roots.pop()!;
    await removeOne(root.parentFd, root.name, hoistFd, roots);
  }
}

async function removeOne(
  parentFd: number,
  name: string | Buffer,
  hoistFd: number,
  hoisted: Array<{ parentFd: number; name: string | Buffer }>,
): Promise<void> {
  if (await unlinkNonDir(parentFd, name)) return;
  const top = openChildDir(parentFd, name);
  if (top === null) {
    // Swapped for a non-directory since the unlink: unlink that instead.
    await unlinkNonDir(parentFd, name);
    return;
  }
  interface Frame {
    fd: number;
    parentFd: number;
    name: string | Buffer;
    reader: DirReader;
    batch: DirEntry[];
    i: number;
    rewinds: number;
  }
  const frame = (fd: number, pfd: number, n: string | Buffer): Frame => ({
    fd,
    parentFd: pfd,
    name: n,
    reader: new DirReader(fd),
    batch: [],
    i: 0,
    rewinds: 0,
  });
  const frames: Frame[] = [frame(top, parentFd, name)];
  let work = 0;
  try {
    while (frames.length > 0) {
      const f = frames[frames.length - 1]!;
      if (f.i >= f.batch.length) {
        const batch = f.reader.next();
        if (batch !== null) {
          f.batch = batch;
          f.i = 0;
          continue;
        }
        // Emptied (as far as this pass saw): remove it. A name created meanwhile means one more pass; a
        // directory swapped for a file or link meanwhile (a tenant process) is unlinked as what it is now.
        try {
          await rmdirAt(f.parentFd, f.name, frames.length >= 2 ? frames[frames.length - 2]!.fd : undefined);
        } catch (err) {
          const code = errCode(err);
          if (code === 'ENOTDIR') {
            await unlinkNonDir(f.parentFd, f.name);
          } else if (code === 'ENOTEMPTY' && f.rewinds < MAX_REWINDS) {
            closeQuietly(f.fd);
            const fd = openChildDir(f.parentFd, f.name);
            if (fd === null) {
              frames.pop();
              await unlinkNonDir(f.parentFd, f.name);
              continue;
            }
            Object.assign(f, frame(fd, f.parentFd, f.name), { rewinds: f.rewinds + 1 });
            continue;
          } else {
            throw err;
          }
        }
        frames.pop();
        closeQuietly(f.fd);
        continue;
      }
      const d = f.batch[f.i++]!;
      if (++work % SLICE === 0) await yieldToLoop();
      if (d.type !== DT_DIR && (await unlinkNonDir(f.fd, d.name, f.fd))) continue;
      if (frames.length >= MAX_WALK_DEPTH) {
        const fresh = `deep-${randomBytes(8).toString('hex')}`;
        try {
          renameat2(f.fd, d.name, hoistFd, fresh);
          hoisted.push({ parentFd: hoistFd, name: fresh });
        } catch (err) {
          if (errCode(err) !== 'ENOENT') throw err;
        }
        continue;
      }
      const fd = openChildDir(f.fd, d.name);
      if (fd === null) {
        await unlinkNonDir(f.fd, d.name, f.fd);
        continue;
      }
      frames.push(frame(fd, f.fd, d.name));
    }
  } finally {
    for (const f of frames) closeQuietly(f.fd);
  }
}

/** rmdir through the parent's descriptor; missing is fine; a read-only parent is made writable once. */
async function rmdirAt(parentFd: number, name: string | Buffer, parentOwnFd: number | undefined): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await unlinkatAsync(parentFd, name, AT_REMOVEDIR);
      return;
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT') return;
      if ((code === 'EACCES' || code === 'EPERM') && attempt === 0 && parentOwnFd !== undefined) {
        fs.fchmodSync(parentOwnFd, 0o700);
        continue;
      }
      throw err;
    }
  }
}

/**
 * Unlinks `name` if it is not a directory. True when it is gone (removed or
 * already missing); false when it is a directory. EACCES/EPERM on a
 * read-only parent (non-root server) makes the parent writable and retries.
 */
async function unlinkNonDir(dirFd: number, name: string | Buffer, ownFd?: number): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await unlinkatAsync(dirFd, name, 0);
      return true;
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT') return true;
      if (code === 'EISDIR') return false;
      if ((code === 'EACCES' || code === 'EPERM') && attempt === 0 && ownFd !== undefined) {
        try {
          fs.fchmodSync(ownFd, 0o700);
        } catch {
          throw err;
        }
        continue;
      }
      throw err;
    }
  }
}
