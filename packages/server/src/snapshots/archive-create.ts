/**
 * Streams a gzip'd tar of a directory tree with bounded memory whatever the
 * tree size: a window of 16 entries read ahead (small files whole, ≤ 256 KiB
 * each; large ones as open descriptors streamed in 1 MiB reads), plus at most
 * a few 1 MiB blocks queued for zlib.
 *
 * zlib compresses on the thread pool while the next files are read, like
 * `tar | gzip`. Each small file is one callback chain (open, fstat, read,
 * close) rather than fs/promises FileHandles, whose bookkeeping tripled the
 * CPU per file.
 */
import fs, { constants, promises as fsp, type BigIntStats } from 'node:fs';
import { createGzip, type Gzip } from 'node:zlib';
import type { Dirent } from 'node:fs';
import * as io from './fd-io.js';
import { END_OF_ARCHIVE, encodeEntryHeader, padding, type TarEntry } from './tar-format.js';

/**
 * gzip level 4: on mixed source/binary trees it produces archives within ~1%
 * of level 6 (tar's default) in about half the CPU time; zlib is
 * single-threaded, so the level is what bounds snapshot time.
 */
export const DEFAULT_GZIP_LEVEL = 4;

/** Files up to this size are read whole ahead of time; larger ones are streamed in 1 MiB reads. */
const SMALL_FILE = 256 * 1024;
/** Entries read ahead of the one being written (each holds at most SMALL_FILE bytes or one descriptor). */
const PREFETCH = 16;
/** Content at least this large is handed to zlib without copying it into a block. */
const DIRECT_WRITE = 64 * 1024;
const OUT_BLOCK = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
const SLASH = Buffer.from('/');

export interface CreateArchiveOptions {
  /** gzip level 1-9 (default DEFAULT_GZIP_LEVEL). */
  level?: number;
}

export interface ArchiveStats {
  /** Non-directory entries written: regular files and symlinks. */
  fileCount: number;
  /** Sum of regular file sizes. */
  totalBytes: number;
}

type Prepared =
  | { kind: 'skip' }
  | { kind: 'entry'; entry: TarEntry; content: Buffer | null; fd: number | null };

interface WalkItem {
  rel: Buffer; // '.' for the root
  abs: Buffer;
  dirent: Dirent | null; // null for the root
}

function joinBuf(a: Buffer, b: Buffer): Buffer {
  return Buffer.concat([a, SLASH, b]);
}

function mtimeOf(st: BigIntStats): { mtimeSec: number; mtimeNsec: number } {
  const ns = st.mtimeNs;
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return { mtimeSec: Number(sec), mtimeNsec: Number(nsec) };
}

/** Pre-order walk, children sorted by name bytes so archives are deterministic. */
async function* walk(rootAbs: Buffer): AsyncGenerator<WalkItem> {
  yield { rel: Buffer.from('.'), abs: rootAbs, dirent: null };
  // An explicit stack of iterators keeps deep trees off the JS call stack.
  const frames: Array<{ items: Dirent[]; i: number; rel: Buffer | null; abs: Buffer }> = [];
  const open = async (rel: Buffer | null, abs: Buffer) => {
    let items: Dirent[];
    try {
      items = (await fsp.readdir(abs, { withFileTypes: true, encoding: 'buffer' })) as unknown as Dirent[];
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Vanished or replaced since it was listed: nothing to descend into.
      if (code === 'ENOENT' || code === 'ENOTDIR') items = [];
      else throw err;
    }
    items.sort((a, b) => Buffer.compare(a.name as unknown as Buffer, b.name as unknown as Buffer));
    frames.push({ items, i: 0, rel, abs });
  };
  await open(null, rootAbs);
  while (frames.length > 0) {
    const f = frames[frames.length - 1]!;
    if (f.i >= f.items.length) {
      frames.pop();
      continue;
    }
    const d = f.items[f.i++]!;
    const name = d.name as unknown as Buffer;
    const rel = f.rel ? joinBuf(f.rel, name) : Buffer.from(name);
    const abs = joinBuf(f.abs, name);
    yield { rel, abs, dirent: d };
    // Security: only real directories are descended into; a symlink to a directory is archived as a link.
    if (d.isDirectory()) await open(rel, abs);
  }
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/**
 * A small file's stats and content as one callback chain (open, fstat, read,
 * close): one promise per file rather than one per syscall. Large files come
 * back open, to be streamed when their turn comes.
 */
function readFileEntry(item: WalkItem): Promise<Prepared> {
  return new Promise((resolve, reject) => {
    // Security: O_NOFOLLOW — a file swapped for a symlink is never followed;
    // O_NONBLOCK — a file swapped for a FIFO cannot hang the snapshot.
    fs.open(item.abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK, (err, fd) => {
      if (err) {
        if (errCode(err) === 'ENOENT') return resolve({ kind: 'skip' }); // vanished since listed
        if (errCode(err) === 'ELOOP') return prepareSymlink(item).then(resolve, reject);
        return reject(err);
      }
      const fail = (e: unknown) => fs.close(fd, () => reject(e));
      fs.fstat(fd, { bigint: true }, (e, st) => {
        if (e) return fail(e);
        if (!st.isFile()) return fs.close(fd, () => resolve({ kind: 'skip' }));
        const size = Number(st.size);
        const entry: TarEntry = { kind: 'file', path: item.rel, linkpath: EMPTY, mode: Number(st.mode & 0o7777n), size, ...mtimeOf(st) };
        if (size > SMALL_FILE) return resolve({ kind: 'entry', entry, content: null, fd });
        const content = size === 0 ? EMPTY : Buffer.allocUnsafe(size);
        const read = (got: number) => {
          if (got >= size) return fs.close(fd, (e2) => (e2 ? reject(e2) : resolve({ kind: 'entry', entry, content, fd: null })));
          fs.read(fd, content, got, size - got, got, (e2, n) => {
            if (e2) return fail(e2);
            if (n === 0) {
              // Shrank while being read: the header already says `size`, so zero-fill.
              content.fill(0, got);
              return read(size);
            }
            read(got + n);
          });
        };
        read(0);
      });
    });
  });
}

async function prepare(item: WalkItem): Promise<Prepared> {
  const d = item.dirent;
  if (d === null || d.isDirectory()) {
    let st: BigIntStats;
    try {
      st = await fsp.lstat(item.abs, { bigint: true });
    } catch (err) {
      if (errCode(err) === 'ENOENT') return { kind: 'skip' };
      throw err;
    }
    if (!st.isDirectory()) return { kind: 'skip' };
    return {
      kind: 'entry',
      entry: { kind: 'dir', path: item.rel, linkpath: EMPTY, mode: Number(st.mode & 0o7777n), size: 0, ...mtimeOf(st) },
      content: null,
      fd: null,
    };
  }
  if (d.isSymbolicLink()) return prepareSymlink(item);
  // Sockets, FIFOs and device nodes have no content to snapshot.
  if (!d.isFile()) return { kind: 'skip' };
  return readFileEntry(item);
}

async function prepareSymlink(item: WalkItem): Promise<Prepared> {
  try {
    const [st, target] = await Promise.all([fsp.lstat(item.abs, { bigint: true }), fsp.readlink(item.abs, { encoding: 'buffer' })]);
    return {
      kind: 'entry',
      entry: { kind: 'symlink', path: item.rel, linkpath: target, mode: 0o777, size: 0, ...mtimeOf(st) },
      content: null,
      fd: null,
    };
  } catch (err) {
    if (errCode(err) === 'ENOENT' || errCode(err) === 'EINVAL') return { kind: 'skip' }; // vanished or no longer a link
    throw err;
  }
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

async function emit(w: BlockWriter, p: Prepared & { kind: 'entry' }, stats: ArchiveStats): Promise<void> {
  const e = p.entry;
  await w.write(encodeEntryHeader(e));
  if (e.kind !== 'dir') stats.fileCount++;
  if (e.kind !== 'file') return;
  stats.totalBytes += e.size;
  if (p.content) {
    // Content read into its own buffer goes to zlib as is; only small pieces are batched.
    if (p.content.length >= DIRECT_WRITE) await w.writeOwned(p.content);
    else await w.write(p.content);
  } else if (p.fd !== null) {
    const fd = p.fd;
    try {
      let pos = 0;
      while (pos < e.size) {
        const want = Math.min(OUT_BLOCK, e.size - pos);
        const chunk = Buffer.allocUnsafe(want);
        const bytesRead = await io.read(fd, chunk, 0, want, pos);
        if (bytesRead === 0) {
          // Shrank while being read: keep the archive well-formed with zeros.
          chunk.fill(0);
          await w.writeOwned(chunk);
        } else {
          await w.writeOwned(bytesRead === want ? chunk : chunk.subarray(0, bytesRead));
        }
        pos += bytesRead === 0 ? want : bytesRead;
      }
    } finally {
      io.closeQuietly(fd);
    }
  }
  await w.zeros(padding(e.size));
}

/**
 * A gzip'd tar of `treeRoot`: regular files, directories (empty ones too),
 * symlinks as links (never followed), permission bits and mtimes (to the
 * nanosecond, via pax). Sockets, FIFOs and device nodes are skipped; hard
 * links are stored as independent files. Owners are not recorded.
 * The caller must keep the tree still while it is read (the snapshot
 * service holds the namespace's exclusive lock).
 */
export function createArchive(
  treeRoot: string,
  opts: CreateArchiveOptions = {},
): { stream: NodeJS.ReadableStream; done: Promise<ArchiveStats> } {
  // zlib passes stream options through to its Transform (the typings omit them):
  // two blocks may queue, so reading the next files overlaps compression.
  const streamOpts = { writableHighWaterMark: 2 * OUT_BLOCK };
  const gzip = createGzip({ level: opts.level ?? DEFAULT_GZIP_LEVEL, chunkSize: 256 * 1024, ...streamOpts });
  const stats: ArchiveStats = { fileCount: 0, totalBytes: 0 };
  const done = (async () => {
    try {
      const root = Buffer.from(await fsp.realpath(treeRoot));
      const w = new BlockWriter(gzip);
      // A window of entries is read ahead concurrently: on a cold cache the
      // disk sees many requests at once, and zlib never waits on one file.
      const window: Promise<Prepared>[] = [];
      try {
        for await (const item of walk(root)) {
          const p = prepare(item);
          p.catch(() => {}); // taken when it reaches the head of the window
          window.push(p);
          if (window.length >= PREFETCH) {
            const head = await window.shift()!;
            if (head.kind === 'entry') await emit(w, head, stats);
          }
        }
        while (window.length > 0) {
          const head = await window.shift()!;
          if (head.kind === 'entry') await emit(w, head, stats);
        }
      } catch (err) {
        // Large files prefetched as open descriptors must not leak.
        for (const p of window) void p.then((x) => (x.kind === 'entry' && x.fd !== null ? io.closeQuietly(x.fd) : undefined), () => {});
        throw err;
      }
      await w.write(END_OF_ARCHIVE);
      await w.flush();
      gzip.end();
      return { ...stats };
    } catch (err) {
      gzip.destroy(err as Error);
      throw err;
    }
  })();
  done.catch(() => {}); // surfaced through the stream's 'error' and to whoever awaits done
  return { stream: gzip, done };
}
