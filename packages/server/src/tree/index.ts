/**
 * The one module that operates on namespace trees.
 *
 * The tenant controls its tree and runs code in it while the API works on it:
 * any component of a path can become a symlink between two system calls. So a
 * tenant path is never handed to the kernel as a string to resolve from `/`.
 * Every operation starts from the namespace root, opened once as a descriptor,
 * and resolves below it with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_XDEV): the kernel refuses absolute links, `..` past the root,
 * /proc magic links and mount crossings at every step of the walk, whatever
 * the tree looks like at that instant. The result is a descriptor, and the
 * work continues on descriptors (*at calls): a name swapped afterwards changes
 * nothing about what the descriptor is. Links that stay inside the tree are
 * followed, as the API always did; one that leaves is refused with
 * `path_outside_namespace`.
 *
 * Upload temp files and removed directories go to a private scratch directory
 * of the server (same filesystem, never visible to a tenant): new names appear
 * in a tenant tree only by an atomic renameat from there, and a deleted
 * directory leaves the tree by one renameat before it is emptied in private.
 *
 * Only this module (and the snapshot engine through it) touches tenant trees;
 * test/tree/tree-boundary.test.ts checks that nothing else hands a path to fs.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../errors.js';
import { displayPath, splitRel } from './paths.js';
import {
  BENEATH,
  BENEATH_NO_LINKS,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_TMPFILE,
  O_WRONLY,
  AT_EMPTY_PATH,
  RENAME_NOREPLACE,
  errCode,
  linkat,
  renameat2,
  unlinkat,
  fstat,
  fstatat,
  mkdirat,
  openat2,
  createWritevAsync,
  renameat2Async,
  unlinkatAsync,
  type Stat,
} from './sys.js';
import { closeQuietly, DirReader, measureTree, removeEntry, walkTree, yieldToLoop, type Measured } from './walk.js';
import { HardQuota, type HardQuotaMode } from './hard-quota.js';

export { displayPath, normalizeClientPath, splitRel, MAX_NAME_BYTES, MAX_PATH_BYTES } from './paths.js';
export { closeQuietly, yieldToLoop, type Measured } from './walk.js';
export type { Stat } from './sys.js';
export { errCode, fstat, writevFsyncAsync } from './sys.js';

export interface Ownership {
  uid: number;
  gid: number;
  /** chown only when the server runs as root and exec uses another uid. */
  enabled: boolean;
}

export function outsideError(rel: string): AppError {
  return new AppError('path_outside_namespace', `Path resolves outside the namespace: ${displayPath(rel)}`);
}

export function notFoundError(rel: string): AppError {
  return new AppError('path_not_found', `Path not found: ${displayPath(rel)}`);
}

export function notADirectoryError(rel: string): AppError {
  return new AppError('not_a_directory', `Not a directory: ${displayPath(rel)}`);
}

/** Maps what openat2 says about a tenant path to the API's answer. */
function resolveError(err: unknown, rel: string, missing: () => AppError): unknown {
  switch (errCode(err)) {
    case 'ENOENT':
      return missing();
    // EXDEV: the walk would leave the root (absolute link, `..` past it) or cross a mount.
    // ELOOP: a /proc magic link, or a chain of links that never ends.
    case 'EXDEV':
    case 'ELOOP':
      return outsideError(rel);
    case 'EAGAIN':
      return new AppError('conflict', `The tree changed while ${displayPath(rel)} was being resolved; retry`);
    case 'EACCES':
      return new AppError('forbidden', `Permission denied: ${displayPath(rel)}`);
    case 'ENAMETOOLONG':
      return new AppError('path_invalid', `Path is too long: ${displayPath(rel)}`);
    default:
      return err;
  }
}

/** A regular file opened for reading, with its fstat. The caller closes `fd`. */
export interface OpenedFile {
  fd: number;
  st: Stat;
}

/** The directory a new or replaced name goes into. The caller closes `fd`. */
export interface ParentDir {
  fd: number;
  name: string;
  rel: string;
}

/**
 * An upload's temp file: a name in the private scratch directory, or (when
 * the tree is another file system or btrfs subvolume than the scratch
 * directory, so renameat cannot cross) an unnamed O_TMPFILE in the target's
 * parent. The caller writes and fsyncs `fd`, commit()s, then closes it.
 */
export interface TempFile {
  fd: number;
  name: string | null;
}

/** A listed entry before it becomes the wire form. */
export interface TreeEntry {
  name: string;
  rel: string;
  isDir: boolean;
  size: number;
  mtimeMs: number;
}

/**
 * The server's private scratch directory (`<dataDir>/tmp/<host>.<pid>`): upload
 * temp files and directories on their way out. One per process, so nodes
 * sharing a volume never sweep each other's work in progress.
 */
export class TreeStore {
  private scratchFd = -1;
  private scratchDev = -1;
  private readonly nameTag = randomBytes(6).toString('hex') + '-';
  private nameCounter = 0;
  private scratchPath = '';
  /** Kernel-enforced namespace byte limits, where the data volume offers them (hard-quota.ts). */
  readonly hardQuota: HardQuota;

  constructor(
    private readonly dataDir: string,
    readonly owner: Ownership,
    quotaBytes = 0,
  ) {
    this.hardQuota = new HardQuota(quotaBytes);
  }

  get hardQuotaMode(): HardQuotaMode {
    return this.hardQuota.mode;
  }

  /** Device of the scratch directory (a tree on another one gets O_TMPFILE uploads). */
  get scratchDevice(): number {
    return this.scratchDev;
  }

  /**
   * Opens the scratch directory, first removing what dead processes left
   * (uploads cut by a crash): same host and pid gone, or another host's older than a day.
   */
  async start(): Promise<void> {
    if (this.scratchFd >= 0) return;
    const base = join(this.dataDir, 'tmp');
    fs.mkdirSync(base, { recursive: true, mode: 0o700 });
    const baseFd = fs.openSync(base, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      const me = hostname();
      const reader = new DirReader(baseFd);
      const stale: Buffer[] = [];
      for (let batch = reader.next(); batch !== null; batch = reader.next()) {
        for (const d of batch) {
          const name = d.name.toString('utf8');
          const dot = name.lastIndexOf('.');
          const host = name.slice(0, dot);
          const pid = Number(name.slice(dot + 1));
          let gone: boolean;
          if (host === me && Number.isInteger(pid)) gone = pid !== process.pid && !alive(pid);
          else {
            const st = fstatat(baseFd, d.name);
            gone = st !== null && st.mtimeMs < Date.now() - 24 * 3600_000;
          }
          if (gone) stale.push(d.name);
        }
      }
      for (const name of stale) await removeEntry(baseFd, name, baseFd);
      const mine = `${me}.${process.pid}`;
      try {
        fs.mkdirSync(join(base, mine), { mode: 0o700 });
      } catch (err) {
        if (errCode(err) !== 'EEXIST') throw err;
      }
      this.scratchPath = join(base, mine);
      this.scratchFd = openat2(baseFd, mine, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH_NO_LINKS);
      this.scratchDev = fstat(this.scratchFd).dev;
      this.hardQuota.probe(this.scratchPath);
    } finally {
      fs.closeSync(baseFd);
    }
  }

  /** Removes this process's scratch directory (shutdown). */
  async close(): Promise<void> {
    if (this.scratchFd < 0) return;
    closeQuietly(this.scratchFd);
    this.scratchFd = -1;
    const base = join(this.dataDir, 'tmp');
    const baseFd = fs.openSync(base, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      await removeEntry(baseFd, `${hostname()}.${process.pid}`, baseFd);
    } finally {
      fs.closeSync(baseFd);
    }
  }

  /** The scratch descriptor (start() must have run). */
  get scratch(): number {
    if (this.scratchFd < 0) throw new Error('TreeStore.start() has not run');
    return this.scratchFd;
  }

  /** Host path of the scratch directory, for diagnostics only. */
  get scratchDir(): string {
    return this.scratchPath;
  }

  /**
   * Opens the tree whose root is the server-made directory `hostRoot`
   * (NamespaceService.realDir: no tenant-controlled component). Null when it
   * does not exist.
   */
  open(hostRoot: string): NamespaceTree | null {
    let fd: number;
    try {
      fd = fs.openSync(hostRoot, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return null;
      throw err;
    }
    return new NamespaceTree(fd, this);
  }

  /** Removes the directory `name` of the server-made directory at `hostDir` (a namespace's trash, a staging tree). */
  async removeIn(hostDir: string, name: string): Promise<void> {
    let fd: number;
    try {
      fd = fs.openSync(hostDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return;
      throw err;
    }
    try {
      await removeEntry(fd, name, this.scratch);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * A fresh name in the scratch directory: a random tag of this store and a counter. The directory is this
   * process's own and never visible to tenants, so the names need to be unique, not unguessable (a tag left
   * by an earlier process with the same pid does not match); drawing random bytes per upload cost ~2 % of a
   * small write's CPU.
   */
  freshName(prefix: string): string {
    return `${prefix}-${this.nameTag}${(++this.nameCounter).toString(36)}`;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

/** One namespace tree, held open by its root descriptor. close() when done. */
export class NamespaceTree {
  private closed = false;

  constructor(
    readonly rootFd: number,
    private readonly store: TreeStore,
  ) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.rootFd);
  }

  /** Runs `fn` with the tree and closes it afterwards. */
  static async using<T>(tree: NamespaceTree, fn: (t: NamespaceTree) => Promise<T>): Promise<T> {
    try {
      return await fn(tree);
    } finally {
      tree.close();
    }
  }

  /**
   * Opens `rel` for reading, following links that stay beneath the root.
   * O_NONBLOCK: a FIFO planted by exec cannot park the call. 404 when
   * missing, 400 `path_is_directory` / `bad_request` unless a regular file.
   */
  openFile(rel: string): OpenedFile {
    let fd: number;
    try {
      fd = openat2(this.rootFd, rel === '' ? '.' : rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, BENEATH);
    } catch (err) {
      // ENOTDIR: an ancestor is a file, so the path names nothing. ENXIO: a socket.
      if (errCode(err) === 'ENOTDIR') throw notFoundError(rel);
      if (errCode(err) === 'ENXIO') throw new AppError('bad_request', `Not a regular file: ${displayPath(rel)}`);
      throw resolveError(err, rel, () => notFoundError(rel));
    }
    try {
      const st = fstat(fd);
      if (st.isDirectory()) throw new AppError('path_is_directory', `Path is a directory: ${displayPath(rel)}`);
      if (!st.isFile()) throw new AppError('bad_request', `Not a regular file: ${displayPath(rel)}`);
      return { fd, st };
    } catch (err) {
      closeQuietly(fd);
      throw err;
    }
  }

  /** Opens the directory `rel` (links beneath the root followed). */
  openDir(rel: string): number {
    try {
      return openat2(this.rootFd, rel === '' ? '.' : rel, O_RDONLY | O_DIRECTORY, 0, BENEATH);
    } catch (err) {
      if (errCode(err) === 'ENOTDIR') throw notADirectoryError(rel);
      throw resolveError(err, rel, () => notFoundError(rel));
    }
  }

  /**
   * The parent directory of `rel` (not the root itself), created with its
   * missing ancestors when `create` (mkdirat, then the new directory is
   * opened without following links and chowned through its descriptor).
   */
  async openParent(rel: string, create: boolean): Promise<ParentDir> {
    const { parent, name } = splitRel(rel);
    try {
      return { fd: this.openDir(parent), name, rel };
    } catch (err) {
      if (!create || !(err instanceof AppError) || err.code !== 'path_not_found') throw err;
    }
    const parts = parent.split('/');
    // The deepest ancestor that exists (links beneath the root followed).
    let k = parts.length - 1;
    let fd = -1;
    while (k >= 0) {
      try {
        fd = openat2(this.rootFd, parts.slice(0, k).join('/') || '.', O_RDONLY | O_DIRECTORY, 0, BENEATH);
        break;
      } catch (err) {
        if (errCode(err) === 'ENOTDIR') throw notADirectoryError(parts.slice(0, k).join('/'));
        if (errCode(err) !== 'ENOENT') throw resolveError(err, rel, () => notFoundError(rel));
        k--;
      }
    }
    if (fd < 0) throw notFoundError(rel);
    try {
      for (let i = k; i < parts.length; i++) {
        const part = parts[i]!;
        let made = false;
        try {
          mkdirat(fd, part, 0o755);
          made = true;
        } catch (err) {
          if (errCode(err) !== 'EEXIST') throw resolveError(err, rel, () => notFoundError(rel));
        }
        let next: number;
        try {
          next = openat2(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH_NO_LINKS);
        } catch (err) {
          const code = errCode(err);
          if (code === 'ENOTDIR') throw notADirectoryError(parts.slice(0, i + 1).join('/'));
          if (code !== 'ELOOP' && code !== 'ENOENT') throw resolveError(err, rel, () => notFoundError(rel));
          // A link (or a rename) raced in: resolve the prefix again from the root, beneath it.
          next = this.openDir(parts.slice(0, i + 1).join('/'));
          made = false;
        }
        closeQuietly(fd);
        fd = next;
        const { owner } = this.store;
        if (made && owner.enabled) fs.fchownSync(fd, owner.uid, owner.gid);
      }
      const out = fd;
      fd = -1;
      return { fd: out, name, rel };
    } finally {
      if (fd >= 0) closeQuietly(fd);
    }
  }

  /** lstat of `name` in an open directory (null when missing). */
  statIn(dirFd: number, name: string): Stat | null {
    return fstatat(dirFd, name);
  }

  /**
   * Creates the temp file of a write into `dir`, owned by the namespace's uid, holding `buffers`: in the
   * private scratch directory, or unnamed in `dir` when renameat could not cross from there (see TempFile).
   * `last`: these are all of its bytes, and they are fsynced too. One thread-pool job: creating, owning
   * (before any byte lands: the name never appears with the wrong owner), writing and syncing. The caller
   * writes the rest (and fsyncs) when not `last`, then commit()s it into place or discard()s it.
   */
  async createTemp(dir: ParentDir, buffers: Buffer[], last: boolean): Promise<TempFile> {
    const sameDevice = fstat(dir.fd).dev === this.store.scratchDevice;
    const name = sameDevice ? this.store.freshName('upload') : null;
    const { owner } = this.store;
    // On the pool: creating a name waits for the directory, which concurrent renames and fsyncs hold.
    const fd = await createWritevAsync(
      name !== null ? this.store.scratch : dir.fd,
      name ?? '.',
      name !== null ? O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW : O_TMPFILE | O_WRONLY,
      0o644,
      BENEATH_NO_LINKS,
      owner.enabled ? { uid: owner.uid, gid: owner.gid } : null,
      buffers,
      last,
    );
    return { fd, name };
  }

  /**
   * Moves a filled temp file to `dir.name`, atomically: replacing a file or link there, or with `noReplace`
   * only if the name is free (412 `precondition_failed` otherwise, decided by the kernel).
   */
  async commit(tmp: TempFile, dir: ParentDir, opts: { noReplace?: boolean } = {}): Promise<void> {
    const taken = () =>
      new AppError(
        'precondition_failed',
        `Precondition failed for ${displayPath(dir.rel)}: If-None-Match: *, but the file exists`,
      );
    try {
      if (tmp.name !== null) {
        try {
          await renameat2Async(this.store.scratch, tmp.name, dir.fd, dir.name, opts.noReplace ? RENAME_NOREPLACE : 0);
        } catch (err) {
          if (opts.noReplace && errCode(err) === 'EEXIST') throw taken();
          throw err;
        }
        return;
      }
      try {
        linkat(tmp.fd, '', dir.fd, dir.name, AT_EMPTY_PATH);
        return;
      } catch (err) {
        if (errCode(err) !== 'EEXIST') throw err;
        if (opts.noReplace) throw taken();
      }
      // Replacing: a name of its own in the same directory for an instant, then renamed over the target. In the
      // tenant's directory: random, so that a command cannot make the write fail by creating the next name first.
      const fresh = `.trove-upload-${randomBytes(9).toString('hex')}`;
      linkat(tmp.fd, '', dir.fd, fresh, AT_EMPTY_PATH);
      try {
        renameat2(dir.fd, fresh, dir.fd, dir.name);
      } catch (err) {
        try {
          unlinkat(dir.fd, fresh, 0);
        } catch {
          /* the first error is the one that matters */
        }
        throw err;
      }
    } catch (err) {
      if (err instanceof AppError) throw err;
      const code = errCode(err);
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') {
        throw new AppError('path_is_directory', `Path is a directory: ${displayPath(dir.rel)}`);
      }
      throw err;
    }
  }

  /** Removes an uncommitted temp file (an unnamed one goes with its descriptor). */
  async discard(tmp: TempFile): Promise<void> {
    if (tmp.name !== null) await unlinkatAsync(this.store.scratch, tmp.name, 0).catch(() => {});
  }

  /**
   * Removes `name` of the open directory: a file or link is unlinked (a link,
   * never its target); a directory leaves the tree by one renameat into the
   * private scratch directory and is emptied there. False when it was missing.
   */
  async remove(dir: ParentDir): Promise<boolean> {
    try {
      await unlinkatAsync(dir.fd, dir.name, 0);
      return true;
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT') return false;
      if (code !== 'EISDIR') throw err;
    }
    const trash = this.store.freshName('removed');
    try {
      await renameat2Async(dir.fd, dir.name, this.store.scratch, trash);
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT') return false;
      // The data dir spans file systems (a mount below it): empty it in place, still through descriptors.
      if (code !== 'EXDEV') throw err;
      await removeEntry(dir.fd, dir.name, dir.fd);
      return true;
    }
    // Out of the tree already: the delete has happened whatever emptying it in private meets (a process
    // still writing into it); what is left there goes with the scratch directory (close, or the next start).
    await removeEntry(this.store.scratch, trash, this.store.scratch).catch(() => {});
    return true;
  }

  /**
   * Lists the directory `rel`: at most `cap` entries (then `truncated`),
   * directories first then files, by name; recursive listings are depth-first
   * and flat, at most `maxDepth` levels. A directory is read in bounded batches
   * and only until the cap is reached, so a directory of millions of entries
   * costs what the cap allows, not its size (the order then covers what was read).
   */
  async list(
    rel: string,
    recursive: boolean,
    cap: number,
    maxDepth: number,
  ): Promise<{ entries: TreeEntry[]; truncated: boolean }> {
    const start = this.openDir(rel);
    const entries: TreeEntry[] = [];
    let truncated = false;
    let work = 0;
    const listDir = async (dirFd: number, dirRel: string, depth: number): Promise<void> => {
      const reader = new DirReader(dirFd);
      const items: Array<TreeEntry & { raw: Buffer; walk: boolean }> = [];
      const room = cap - entries.length;
      for (let batch = reader.next(); batch !== null; batch = reader.next()) {
        for (const d of batch) {
          if (items.length >= room) {
            truncated = true;
            break;
          }
          if (++work % 256 === 0) await yieldToLoop();
          let st: Stat | null;
          try {
            st = fstatat(dirFd, d.name);
          } catch {
            st = null;
          }
          if (!st) continue; // vanished while listing
          const name = d.name.toString('utf8');
          const childRel = dirRel === '' ? name : `${dirRel}/${name}`;
          let isDir = st.isDirectory();
          let size = st.size;
          if (st.isSymbolicLink()) {
            // Show a contained link as what it points to; never descend through it.
            const target = this.statBeneath(childRel);
            if (target) {
              isDir = target.isDirectory();
              size = target.size;
            }
          }
          items.push({ name, rel: childRel, isDir, size, mtimeMs: st.mtimeMs, raw: d.name, walk: st.isDirectory() });
        }
        if (truncated) break;
      }
      items.sort((a, b) => {
        if (a.isDir !== b.isDir) return a.isDir ? -1 : 1;
        return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
      });
      for (const item of items) {
        if (entries.length >= cap) {
          truncated = true;
          return;
        }
        entries.push({ name: item.name, rel: item.rel, isDir: item.isDir, size: item.size, mtimeMs: item.mtimeMs });
        if (!recursive || !item.walk) continue;
        if (depth + 1 >= maxDepth) {
          truncated = true;
          continue;
        }
        let child: number;
        try {
          child = openat2(dirFd, item.raw, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH_NO_LINKS);
        } catch {
          continue; // replaced or removed since it was read
        }
        try {
          await listDir(child, item.rel, depth + 1);
        } finally {
          closeQuietly(child);
        }
        if (truncated && entries.length >= cap) return;
      }
    };
    try {
      await listDir(start, rel, 0);
    } finally {
      closeQuietly(start);
    }
    return { entries, truncated };
  }

  /** stat of what `rel` leads to, links beneath the root followed; null when missing or outside. */
  private statBeneath(rel: string): Stat | null {
    let fd: number;
    try {
      fd = openat2(this.rootFd, rel, O_PATH, 0, BENEATH);
    } catch {
      return null;
    }
    try {
      return fstat(fd);
    } finally {
      closeQuietly(fd);
    }
  }

  /** Regular-file bytes and count of the whole tree (at most `maxEntries` entries examined). */
  measure(maxEntries: number): Promise<Measured> {
    return measureTree(this.rootFd, maxEntries);
  }

  /** Removes everything in the tree (the root itself stays). */
  async empty(): Promise<void> {
    const fd = this.openDir('');
    try {
      const reader = new DirReader(fd);
      for (let batch = reader.next(); batch !== null; batch = reader.next()) {
        for (const d of batch) await removeEntry(fd, d.name, this.store.scratch);
      }
    } finally {
      closeQuietly(fd);
    }
  }

  /** Pre-order walk of the whole tree (the snapshot engine reads it through this). */
  walk(opts: Parameters<typeof walkTree>[1]): ReturnType<typeof walkTree> {
    return walkTree(this.rootFd, opts);
  }
}
