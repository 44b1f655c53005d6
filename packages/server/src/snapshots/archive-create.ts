/**
 * Streams a gzip'd tar of a namespace tree with bounded memory whatever the
 * tree size: a window of 16 entries read ahead (small files whole, ≤ 256 KiB
 * each; large ones as open descriptors streamed in 1 MiB reads), plus at most
 * a few 1 MiB blocks queued for zlib.
 *
 * The tenant may run code in the tree while it is read, so the tree is only
 * ever reached through descriptors (see src/tree/): the walk starts at the
 * root descriptor, opens each directory relative to its parent with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_XDEV, O_NOFOLLOW), opens files the same way (O_NONBLOCK, then
 * fstat: anything but a regular file is skipped), reads links with
 * readlinkat. A name swapped for a symlink between two calls is refused by
 * the kernel, never followed; no path string is handed to the kernel.
 *
 * Hard links stay links (the first path of an inode is stored, later ones as
 * tar hard-link entries), and files with holes are stored sparse (SEEK_DATA /
 * SEEK_HOLE; GNU tar's PAX sparse format 1.0), so 1 GiB of holes linked 20
 * times costs a few bytes of archive and no reading.
 *
 * zlib compresses on the thread pool while the next files are read, like
 * `tar | gzip`.
 */
import { createGzip, type Gzip } from 'node:zlib';
import { AppError } from '../errors.js';
import { closeQuietly, DirReader, MAX_WALK_DEPTH, yieldToLoop } from '../tree/walk.js';
import {
  BENEATH_NO_LINKS,
  DT_DIR,
  DT_LNK,
  DT_REG,
  DT_UNKNOWN,
  O_DIRECTORY,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  SEEK_DATA,
  SEEK_HOLE,
  errCode,
  fstat,
  fstatat,
  lseek,
  openat2,
  openat2Async,
  readlinkat,
  type DirEntry,
  type Stat,
} from '../tree/sys.js';
import * as io from '../tree/fd-io.js';
import {
  END_OF_ARCHIVE,
  encodeEntryHeader,
  encodeSparseMap,
  padding,
  type SparseSegment,
  type TarEntry,
} from './tar-format.js';

/**
 * gzip level 4: on mixed source/binary trees it produces archives within ~1%
 * of level 6 (tar's default) in about half the CPU time; zlib is
 * single-threaded, so the level is what bounds snapshot time.
 */
export const DEFAULT_GZIP_LEVEL = 4;

/** Longest path an archive entry may have (restore refuses longer ones, as the kernel's PATH_MAX does). */
export const MAX_ARCHIVE_PATH_BYTES = 4096;
/** Files up to this size are read whole ahead of time; larger ones are streamed in 1 MiB reads. */
const SMALL_FILE = 256 * 1024;
/** Entries read ahead of the one being written (each holds at most SMALL_FILE bytes or one descriptor). */
const PREFETCH = 16;
/** Content at least this large is handed to zlib without copying it into a block. */
const DIRECT_WRITE = 64 * 1024;
const OUT_BLOCK = 1024 * 1024;
/**
 * Names of all open directories held to be sorted: a directory read whole
 * within this budget is archived in name order (deterministic archives); past
 * it, the rest is archived one sorted batch (~1,000 names) at a time.
 */
const SORT_BUDGET = 100_000;
/** Inodes remembered for hard links (~200 bytes each); later ones are stored as copies. */
const MAX_LINKED_INODES = 100_000;
/** Data segments of one sparse file; more are merged across their smallest holes (read as zeros). */
const MAX_SPARSE_SEGMENTS = 4096;
/** lseek calls between two turns of the event loop while mapping a sparse file. */
const SEEKS_PER_SLICE = 1024;
const EMPTY = Buffer.alloc(0);
const SLASH = Buffer.from('/');
const DOT = Buffer.from('.');

export interface CreateArchiveOptions {
  /** gzip level 1-9 (default DEFAULT_GZIP_LEVEL). */
  level?: number;
}

export interface ArchiveStats {
  /** Non-directory entries written: regular files, hard links and symlinks. */
  fileCount: number;
  /** Sum of regular file sizes (apparent sizes; each hard link counted, as the quota measure does). */
  totalBytes: number;
}

interface Prepared {
  entry: TarEntry;
  /** A small file's whole content. */
  content: Buffer | null;
  /** A large file, open, streamed when its turn comes. */
  fd: number | null;
  /** Data segments of a file stored sparse. */
  segments: SparseSegment[] | null;
  /** dev:ino of a regular file with other links, for hard-link entries. */
  inode: string | null;
}

type Outcome = Prepared | null;
/** Boxed: an async generator awaits what it yields, which would serialise the prefetch window. */
interface Pending {
  p: Promise<Outcome>;
}

function ready(o: Outcome): Pending {
  return { p: Promise.resolve(o) };
}

function display(rel: Buffer): string {
  const s = rel.toString('utf8');
  return `workspace/${s.length > 200 ? s.slice(0, 200) + '…' : s}`;
}

function tooDeep(rel: Buffer, why: string): AppError {
  return new AppError(
    'tree_too_deep',
    `Snapshot not taken: ${why} (at ${display(rel)}); a snapshot never leaves part of the tree out`,
  );
}

function modeOf(st: Stat): number {
  return st.mode & 0o7777;
}

function entryOf(kind: TarEntry['kind'], path: Buffer, st: Stat, extra: Partial<TarEntry> = {}): TarEntry {
  return {
    kind,
    path,
    linkpath: EMPTY,
    mode: modeOf(st),
    size: 0,
    mtimeSec: st.mtimeSec,
    mtimeNsec: st.mtimeNsec,
    ...extra,
  };
}

/**
 * A directory descriptor shared by the walk and the entries prepared from it:
 * closed when the walk has left it and every pending entry is done with it.
 */
class DirRef {
  private refs = 1;
  constructor(
    readonly fd: number,
    private readonly owned: boolean,
  ) {}

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0 && this.owned) closeQuietly(this.fd);
  }
}

/** Opens the child directory `name` beneath `dirFd`, never through a link; null when it is not one (any more). */
function openDirBeneath(dirFd: number, name: Buffer): number | null {
  try {
    return openat2(dirFd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH_NO_LINKS);
  } catch (err) {
    const code = errCode(err);
    // Vanished, or swapped for a file or a link since it was listed; EXDEV: a
    // mount point, whose content is not the tenant's tree (skipped, never entered).
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EXDEV') return null;
    throw err;
  }
}

interface Frame {
  dir: DirRef;
  rel: Buffer | null;
  depth: number;
  reader: DirReader;
  pending: DirEntry[];
  i: number;
  /** Names this frame holds against SORT_BUDGET. */
  held: number;
  loaded: boolean;
}

/**
 * Pre-order walk over descriptors. Yields one promise per entry, in archive
 * order; directories come already prepared (their descriptor is needed to
 * descend anyway), other entries are prepared concurrently by the caller's window.
 */
class TreeWalk {
  private heldNames = 0;
  private work = 0;

  constructor(private readonly rootFd: number) {}

  async *entries(): AsyncGenerator<Pending> {
    const rootSt = fstat(this.rootFd);
    if (!rootSt.isDirectory()) throw Object.assign(new Error('createArchive: not a directory'), { code: 'ENOTDIR' });
    yield ready({ entry: entryOf('dir', DOT, rootSt), content: null, fd: null, segments: null, inode: null });
    const frames: Frame[] = [this.frame(new DirRef(this.rootFd, false), null, 0)];
    try {
      while (frames.length > 0) {
        const f = frames[frames.length - 1]!;
        const d = this.next(f);
        if (d === null) {
          frames.pop();
          this.heldNames -= f.held;
          f.dir.release();
          continue;
        }
        if (++this.work % 256 === 0) await yieldToLoop();
        const rel = f.rel === null ? d.name : Buffer.concat([f.rel, SLASH, d.name]);
        let type = d.type;
        if (type === DT_UNKNOWN) {
          const st = fstatat(f.dir.fd, d.name);
          if (!st) continue; // vanished
          type = st.isDirectory() ? DT_DIR : st.isFile() ? DT_REG : st.isSymbolicLink() ? DT_LNK : -1;
        }
        if (type === DT_DIR) {
          if (rel.length + 1 > MAX_ARCHIVE_PATH_BYTES)
            throw tooDeep(rel, `a path is longer than ${MAX_ARCHIVE_PATH_BYTES} bytes`);
          if (f.depth + 1 >= MAX_WALK_DEPTH)
            throw tooDeep(rel, `the tree is deeper than ${MAX_WALK_DEPTH} directory levels`);
          const fd = openDirBeneath(f.dir.fd, d.name);
          if (fd === null) {
            // Replaced since it was listed: archive what is there now.
            yield { p: prepareOther(f.dir.retain(), d.name, rel, DT_UNKNOWN) };
            continue;
          }
          const dir = new DirRef(fd, true);
          let st: Stat;
          try {
            st = fstat(fd);
          } catch (err) {
            dir.release();
            throw err;
          }
          frames.push(this.frame(dir, rel, f.depth + 1));
          yield ready({ entry: entryOf('dir', rel, st), content: null, fd: null, segments: null, inode: null });
          continue;
        }
        // FIFOs, sockets and device nodes have no content to snapshot: never opened.
        if (type !== DT_REG && type !== DT_LNK) continue;
        if (rel.length > MAX_ARCHIVE_PATH_BYTES)
          throw tooDeep(rel, `a path is longer than ${MAX_ARCHIVE_PATH_BYTES} bytes`);
        if (type === DT_LNK) yield ready(prepareSymlink(f.dir.fd, d.name, rel));
        else yield { p: prepareOther(f.dir.retain(), d.name, rel, type) };
      }
    } finally {
      for (const f of frames) f.dir.release();
    }
  }

  private frame(dir: DirRef, rel: Buffer | null, depth: number): Frame {
    return { dir, rel, depth, reader: new DirReader(dir.fd), pending: [], i: 0, held: 0, loaded: false };
  }

  /** The next entry of a directory: the whole directory sorted when it fits the budget, else sorted batches. */
  private next(f: Frame): DirEntry | null {
    if (f.i < f.pending.length) return f.pending[f.i++]!;
    let batch: DirEntry[] | null;
    if (!f.loaded) {
      f.loaded = true;
      batch = [];
      for (let b = f.reader.next(); b !== null; b = f.reader.next()) {
        for (const d of b) batch.push(d);
        if (this.heldNames + batch.length >= SORT_BUDGET) break;
      }
      f.held = batch.length;
      this.heldNames += batch.length;
    } else {
      batch = f.reader.next();
      if (batch === null) return null;
    }
    batch.sort((a, b) => Buffer.compare(a.name, b.name));
    f.pending = batch;
    f.i = 0;
    return f.i < f.pending.length ? f.pending[f.i++]! : null;
  }
}

/** A regular file of `dir` (or whatever replaced a listed entry); releases the directory reference when done. */
async function prepareOther(dir: DirRef, name: Buffer, rel: Buffer, type: number): Promise<Outcome> {
  try {
    if (type === DT_UNKNOWN) {
      const st = fstatat(dir.fd, name);
      if (st?.isSymbolicLink()) return prepareSymlink(dir.fd, name, rel);
      if (!st?.isFile()) return null;
    }
    return await prepareFile(dir.fd, name, rel);
  } finally {
    dir.release();
  }
}

async function prepareFile(dirFd: number, name: Buffer, rel: Buffer): Promise<Outcome> {
  let fd: number;
  try {
    // Security: O_NOFOLLOW and RESOLVE_NO_SYMLINKS — a file swapped for a
    // symlink is never followed; O_NONBLOCK — one swapped for a FIFO cannot
    // hang the snapshot (its fstat then says it is not a regular file).
    fd = await openat2Async(dirFd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0, BENEATH_NO_LINKS);
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT') return null; // vanished since listed
    if (code === 'ELOOP') return prepareSymlink(dirFd, name, rel);
    if (code === 'ENXIO' || code === 'ENODEV' || code === 'EXDEV') return null; // a socket, a device, a mount point
    throw err;
  }
  try {
    const st = fstat(fd);
    if (!st.isFile()) {
      closeQuietly(fd);
      return null;
    }
    const inode = st.nlink > 1 ? `${st.dev}:${st.ino}` : null;
    const entry = entryOf('file', rel, st, { size: st.size });
    if (st.size > SMALL_FILE) {
      // Fewer blocks than the size needs: there are holes worth keeping.
      const segments = st.blocks * 512 < st.size ? await mapData(fd, st.size) : null;
      return { entry, content: null, fd, segments, inode };
    }
    const content = st.size === 0 ? EMPTY : Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < st.size) {
      const n = await io.read(fd, content, got, st.size - got, got);
      if (n === 0) {
        // Shrank while being read: the header already says `size`, so zero-fill.
        content.fill(0, got);
        break;
      }
      got += n;
    }
    closeQuietly(fd);
    return { entry, content, fd: null, segments: null, inode };
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

function prepareSymlink(dirFd: number, name: Buffer, rel: Buffer): Outcome {
  // Security: the link itself (fstatat AT_SYMLINK_NOFOLLOW, readlinkat), never its target.
  const st = fstatat(dirFd, name);
  if (!st?.isSymbolicLink()) return null; // vanished or replaced meanwhile
  let target: Buffer;
  try {
    target = readlinkat(dirFd, name);
  } catch (err) {
    if (errCode(err) === 'ENOENT' || errCode(err) === 'EINVAL') return null;
    throw err;
  }
  return {
    entry: entryOf('symlink', rel, st, { linkpath: target, mode: 0o777 }),
    content: null,
    fd: null,
    segments: null,
    inode: null,
  };
}

/**
 * The data segments of a file with holes (SEEK_DATA / SEEK_HOLE), or null
 * when it has none after all. Past MAX_SPARSE_SEGMENTS, neighbouring segments
 * are merged across their smallest holes, which are then stored as zeros.
 */
async function mapData(fd: number, size: number): Promise<SparseSegment[] | null> {
  let segments: SparseSegment[] = [];
  let minHole = 1;
  let pos = 0;
  let seeks = 0;
  while (pos < size) {
    if (++seeks % SEEKS_PER_SLICE === 0) await yieldToLoop();
    const start = lseek(fd, pos, SEEK_DATA);
    if (start < 0 || start >= size) break;
    let end = lseek(fd, start, SEEK_HOLE);
    if (end < 0 || end > size) end = size;
    const last = segments[segments.length - 1];
    if (last && start - (last.offset + last.length) < minHole) last.length = end - last.offset;
    else segments.push({ offset: start, length: end - start });
    if (segments.length > MAX_SPARSE_SEGMENTS) {
      minHole *= 2;
      const merged: SparseSegment[] = [];
      for (const s of segments) {
        const prev = merged[merged.length - 1];
        if (prev && s.offset - (prev.offset + prev.length) < minHole) prev.length = s.offset + s.length - prev.offset;
        else merged.push({ ...s });
      }
      segments = merged;
    }
    pos = end;
  }
  if (segments.length === 1 && segments[0]!.offset === 0 && segments[0]!.length === size) return null;
  return segments;
}

/** Batches small writes into large blocks and honours the gzip stream's backpressure. */
class BlockWriter {
  private buf = Buffer.allocUnsafe(OUT_BLOCK);
  private used = 0;

  constructor(private readonly out: Gzip) {}

  async write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(OUT_BLOCK - this.used, data.length - off);
      data.copy(this.buf, this.used, off, off + n);
      this.used += n;
      off += n;
      if (this.used === OUT_BLOCK) await this.flush();
    }
  }

  async zeros(n: number): Promise<void> {
    if (n === 0) return;
    if (this.used + n > OUT_BLOCK) await this.flush();
    this.buf.fill(0, this.used, this.used + n);
    this.used += n;
  }

  /** Writes a buffer the caller will not reuse without copying it (large file chunks). */
  async writeOwned(data: Buffer): Promise<void> {
    await this.flush();
    await this.push(data);
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const full = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(OUT_BLOCK);
    this.used = 0;
    await this.push(full);
  }

  private push(chunk: Buffer): Promise<void> {
    if (this.out.destroyed) return Promise.reject(new Error('archive stream was closed by its consumer'));
    if (this.out.write(chunk)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.out.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.out.off('drain', onDrain);
        reject(new Error('archive stream was closed by its consumer'));
      };
      this.out.once('drain', onDrain);
      this.out.once('close', onClose);
    });
  }
}

/** Streams `length` bytes of `fd` from `pos`; past the end of a file that shrank, zeros keep the archive well-formed. */
async function streamRange(w: BlockWriter, fd: number, pos: number, length: number): Promise<void> {
  const end = pos + length;
  while (pos < end) {
    const want = Math.min(OUT_BLOCK, end - pos);
    const chunk = Buffer.allocUnsafe(want);
    const n = await io.read(fd, chunk, 0, want, pos);
    if (n === 0) {
      chunk.fill(0);
      await w.writeOwned(chunk);
      pos += want;
    } else {
      await w.writeOwned(n === want ? chunk : chunk.subarray(0, n));
      pos += n;
    }
  }
}

class Emitter {
  /** dev:ino → the path it was first archived at. */
  private readonly linked = new Map<string, Buffer>();
  readonly stats: ArchiveStats = { fileCount: 0, totalBytes: 0 };

  constructor(private readonly w: BlockWriter) {}

  async emit(p: Prepared): Promise<void> {
    const e = p.entry;
    const w = this.w;
    if (e.kind !== 'dir') this.stats.fileCount++;
    if (e.kind !== 'file') {
      await w.write(encodeEntryHeader(e));
      return;
    }
    this.stats.totalBytes += e.size;
    // Decided here, in archive order, not while prefetching (which runs out of order).
    if (p.inode !== null) {
      const first = this.linked.get(p.inode);
      if (first) {
        if (p.fd !== null) closeQuietly(p.fd);
        await w.write(encodeEntryHeader({ ...e, kind: 'hardlink', linkpath: first, size: 0 }));
        return;
      }
      if (this.linked.size < MAX_LINKED_INODES) this.linked.set(p.inode, e.path);
    }
    if (p.content) {
      await w.write(encodeEntryHeader(e));
      // Content read into its own buffer goes to zlib as is; only small pieces are batched.
      if (p.content.length >= DIRECT_WRITE) await w.writeOwned(p.content);
      else await w.write(p.content);
      await w.zeros(padding(e.size));
      return;
    }
    const fd = p.fd!;
    try {
      if (p.segments) {
        const map = encodeSparseMap(p.segments, e.size);
        const size = map.length + p.segments.reduce((a, s) => a + s.length, 0);
        await w.write(encodeEntryHeader({ ...e, size, sparse: { realSize: e.size } }));
        await w.write(map);
        for (const s of p.segments) await streamRange(w, fd, s.offset, s.length);
        await w.zeros(padding(size));
      } else {
        await w.write(encodeEntryHeader(e));
        await streamRange(w, fd, 0, e.size);
        await w.zeros(padding(e.size));
      }
    } finally {
      closeQuietly(fd);
    }
  }
}

/**
 * A gzip'd tar of the tree whose root is the open directory `rootFd` (not
 * closed here; keep it open until `done` settles): regular files, directories
 * (empty ones too), symlinks as links (never followed), hard links as links,
 * holes as holes, permission bits and mtimes (to the nanosecond, via pax).
 * Sockets, FIFOs and device nodes are skipped. Owners are not recorded.
 * A tree deeper than MAX_WALK_DEPTH directories, or with a path longer than
 * MAX_ARCHIVE_PATH_BYTES, is refused (AppError tree_too_deep) rather than
 * archived in part. The caller keeps the tree still while it is read (the
 * snapshot service holds the namespace's exclusive lock); what a process
 * changes meanwhile may or may not be in the archive, but nothing outside the
 * tree ever is.
 */
export function createArchive(
  rootFd: number,
  opts: CreateArchiveOptions = {},
): { stream: NodeJS.ReadableStream; done: Promise<ArchiveStats> } {
  // zlib passes stream options through to its Transform (the typings omit them):
  // two blocks may queue, so reading the next files overlaps compression.
  const streamOpts = { writableHighWaterMark: 2 * OUT_BLOCK };
  const gzip = createGzip({ level: opts.level ?? DEFAULT_GZIP_LEVEL, chunkSize: 256 * 1024, ...streamOpts });
  // A capture can fail before its consumer subscribes (a tree refused at once):
  // an 'error' nobody listens to would crash the process. `done` reports it, and
  // a consumer that reads the destroyed stream later still gets the error.
  gzip.on('error', () => {});
  const done = (async () => {
    try {
      const w = new BlockWriter(gzip);
      const emitter = new Emitter(w);
      // A window of entries is read ahead concurrently: on a cold cache the
      // disk sees many requests at once, and zlib never waits on one file.
      const window: Promise<Outcome>[] = [];
      try {
        for await (const { p } of new TreeWalk(rootFd).entries()) {
          p.catch(() => {}); // taken when it reaches the head of the window
          window.push(p);
          if (window.length >= PREFETCH) {
            const head = await window.shift()!;
            if (head) await emitter.emit(head);
          }
        }
        while (window.length > 0) {
          const head = await window.shift()!;
          if (head) await emitter.emit(head);
        }
      } catch (err) {
        // Large files prefetched as open descriptors must not leak.
        for (const p of window)
          void p.then(
            (x) => (x?.fd != null ? closeQuietly(x.fd) : undefined),
            () => {},
          );
        throw err;
      }
      await w.write(END_OF_ARCHIVE);
      await w.flush();
      gzip.end();
      return { ...emitter.stats };
    } catch (err) {
      gzip.destroy(err as Error);
      throw err;
    }
  })();
  done.catch(() => {}); // surfaced through the stream's 'error' and to whoever awaits done
  return { stream: gzip, done };
}
