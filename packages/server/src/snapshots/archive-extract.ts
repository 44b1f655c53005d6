/**
 * Extracts a gzip'd tar into an empty staging directory, validating every
 * entry before it touches the disk. The staging directory is private (0700
 * under the server's own 0700 tree), so the only links in it are the ones
 * this code created; a set of the directories created here decides where
 * an entry may go, and nothing is ever written through a symlink.
 *
 * Nothing is reached by a path from `/`: the staging root is an open
 * descriptor, an entry's parent directory is opened beneath it with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_XDEV), and the entry is made relative to that descriptor
 * (mkdirat, openat2 with O_CREAT|O_EXCL|O_NOFOLLOW, symlinkat, linkat,
 * fchownat, utimensat). So even a link that got into the staging tree could
 * not redirect a write: the kernel refuses to resolve through it.
 *
 * Small files are handed in batches to a writer thread (file-writer.ts),
 * which makes tar's plain synchronous syscalls while this thread parses and
 * validates the next entries. Directories and links are created here,
 * synchronously and in archive order, so a file is only queued once its
 * parent exists; those bursts are cut to ~2 ms by yielding to the event
 * loop. Large files (and sparse ones) are streamed from here with
 * asynchronous writes; holes are skipped, never written.
 */
import fs from 'node:fs';
import { createGunzip } from 'node:zlib';
import { AppError } from '../errors.js';
import { closeQuietly } from '../tree/walk.js';
import {
  AT_SYMLINK_NOFOLLOW,
  BENEATH_NO_LINKS,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  errCode,
  fchownat,
  fstat,
  fstatat,
  linkat,
  mkdirat,
  openat2,
  openat2Async,
  symlinkat,
  unlinkat,
  utimensat,
} from '../tree/sys.js';
import { ByteReader } from './byte-reader.js';
import * as io from '../tree/fd-io.js';
import { FileWriter } from './file-writer.js';
import { restorePhase } from './restore-phases.js';
import {
  BLOCK,
  isZeroBlock,
  padding,
  parseHeader,
  parsePax,
  TarFormatError,
  type PaxValues,
  type SparseSegment,
} from './tar-format.js';

/** Limits a restore must respect (0 = unlimited). */
export interface ArchiveLimits {
  /** Sum of regular file sizes (the namespace byte quota; apparent sizes, each hard link counted, as the files module measures). */
  maxBytes: number;
  /** Regular files, hard links included (the namespace file quota; directories and symlinks do not count, as in FileService). */
  maxFiles: number;
  /** Largest single file (apparent size). */
  maxEntryBytes: number;
}

export interface ExtractOptions {
  /** Owner for every restored entry (when the server runs as root and exec uses another uid). */
  chown?: { uid: number; gid: number };
  /** Called after each entry is processed. */
  onProgress?: (p: { entries: number; bytes: number }) => void;
  /** false: `input` is a plain tar (an uploaded archive), not gzip'd. Default true. */
  compressed?: boolean;
}

export interface ExtractResult {
  /** Non-directory entries restored: regular files, hard links and symlinks. */
  filesRestored: number;
  /** Regular files and hard links (what maxFiles counts). */
  regularFiles: number;
  totalBytes: number;
}

/** setuid/setgid are dropped: a restore never mints privilege bits. */
const MODE_MASK = 0o1777;
/** Files up to this size go to the writer thread; larger ones are streamed from here. */
const SMALL_FILE = 256 * 1024;
/** Longest stretch of synchronous work before yielding to the event loop. */
const BURST_MS = 2;
/** pax / GNU long-name payloads and sparse maps are metadata; anything bigger is an attack. */
const MAX_META = 1024 * 1024;
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;
/** Data allowed after the end-of-archive marker (tar's blocking pads with zeros). */
const MAX_TRAILER = 1024 * 1024;
const MIN_MTIME = -(2 ** 31);
const MAX_MTIME = 2 ** 34;
/** Parent directory descriptors kept open on the main thread. */
const DIR_CACHE = 64;
const SLASH = 0x2f;

export function invalidArchive(detail: string): AppError {
  return new AppError('snapshot_invalid', `Snapshot cannot be restored: ${detail}`);
}

function show(p: Buffer): string {
  const s = p.toString('utf8');
  return JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s);
}

/**
 * The components of an archive path, or an error: no absolute paths, no
 * `..`, no NUL, bounded lengths. `.` and empty components are dropped, so
 * `./a//b` is `a/b`, and the root is [].
 */
function cleanPath(raw: Buffer, what: string): Buffer[] {
  // Security: refuse rather than strip — an archive that tries is not ours.
  if (raw.includes(0)) throw invalidArchive(`${what} ${show(raw)} contains a NUL byte`);
  if (raw[0] === SLASH) throw invalidArchive(`${what} ${show(raw)} is an absolute path`);
  if (raw.length > MAX_PATH_BYTES) throw invalidArchive(`${what} is longer than ${MAX_PATH_BYTES} bytes`);
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i < raw.length && raw[i] !== SLASH) continue;
    const part = raw.subarray(start, i);
    start = i + 1;
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
    // Security: `..` is refused wherever it appears, even where it would stay inside.
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
      throw invalidArchive(`${what} ${show(raw)} contains ".." (path traversal)`);
    }
    if (part.length > MAX_NAME_BYTES)
      throw invalidArchive(`${what} ${show(raw)} has a name longer than ${MAX_NAME_BYTES} bytes`);
    parts.push(part);
  }
  return parts;
}

function keyOf(parts: Buffer[], n = parts.length): string {
  // latin1 maps bytes 1:1 to code units, so distinct byte paths get distinct keys.
  let k = '';
  for (let i = 0; i < n; i++) k += (i ? '/' : '') + parts[i]!.toString('latin1');
  return k;
}

interface DirAttrs {
  mode: number;
  mtime: Mtime | null;
}

interface Mtime {
  sec: number;
  nsec: number;
}

function mapEexist(err: unknown, rel: Buffer): unknown {
  if (errCode(err) === 'EEXIST') {
    return invalidArchive(`entry ${show(rel)} appears twice or conflicts with an earlier entry`);
  }
  return err;
}

function mapStreamError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  if (err instanceof TarFormatError) return invalidArchive(err.message);
  const code = errCode(err);
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return invalidArchive('the compressed data is corrupt or truncated (not a gzip stream written by a snapshot)');
  }
  return err;
}

/**
 * Directories of the staging tree by key (the archive path of a directory
 * created here, '' for the root), opened beneath the root on demand and
 * kept in a small LRU. O_PATH: only ever used as the `dirfd` of *at calls.
 */
class StagingDirs {
  private readonly cache = new Map<string, number>();

  constructor(readonly rootFd: number) {}

  fd(key: string): number {
    if (key === '') return this.rootFd;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    // Security: RESOLVE_NO_SYMLINKS — not a single link is followed on the way, whatever the tree holds.
    const fd = openat2(this.rootFd, Buffer.from(key, 'latin1'), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH_NO_LINKS);
    this.cache.set(key, fd);
    if (this.cache.size > DIR_CACHE) {
      const [oldest, old] = this.cache.entries().next().value as [string, number];
      this.cache.delete(oldest);
      closeQuietly(old);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.cache.values()) closeQuietly(fd);
    this.cache.clear();
  }
}

/**
 * Extracts `input` (gzip'd tar) into the empty directory open as `destFd`
 * (not closed here). Throws AppError (snapshot_invalid / quota_exceeded /
 * payload_too_large) for a bad or oversized archive; the directory is then
 * partially filled and the caller removes it.
 */
export async function extractArchive(
  input: NodeJS.ReadableStream,
  destFd: number,
  limits: ArchiveLimits,
  opts: ExtractOptions = {},
): Promise<ExtractResult> {
  const umask = probeUmask(destFd);
  const src = input as NodeJS.ReadableStream & { destroy?: (e?: Error) => void };
  const gunzip = opts.compressed === false ? null : createGunzip({ chunkSize: 256 * 1024 });
  const onSrcError = (err: Error) => gunzip?.destroy(err);
  if (gunzip) {
    src.on('error', onSrcError);
    src.pipe(gunzip);
  }
  // Up to 2 MiB inflated ahead: inflation (on the thread pool) overlaps the writes.
  const reader = ByteReader.fromStream(gunzip ?? src, 2 * 1024 * 1024);
  const chown = opts.chown;
  const staging = new StagingDirs(destFd);
  const writer = new FileWriter(destFd, opts.chown, (f) =>
    f.code === 'EEXIST' ? mapEexist(f, f.rel) : new Error(`restoring ${show(f.rel)}: ${f.message}`),
  );
  // Directories this extraction created ('' = the root); only these may hold entries.
  const dirs = new Map<string, DirAttrs>([['', { mode: 0o755, mtime: null }]]);
  const res: ExtractResult = { filesRestored: 0, regularFiles: 0, totalBytes: 0 };
  let entries = 0;
  let burstStart = performance.now();
  const maybeYield = async () => {
    if (performance.now() - burstStart < BURST_MS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    burstStart = performance.now();
  };

  /** Creates missing parents; refuses a parent that is not a directory created here. */
  const ensureParents = (parts: Buffer[], rel: Buffer) => {
    for (let i = 1; i < parts.length; i++) {
      const key = keyOf(parts, i);
      if (dirs.has(key)) continue;
      try {
        mkdirat(staging.fd(keyOf(parts, i - 1)), parts[i - 1]!, 0o700);
      } catch (err) {
        if (errCode(err) === 'EEXIST') {
          // Security: a symlink (or file) here would redirect the write: symlink-then-write.
          throw invalidArchive(
            `entry ${show(rel)} is inside ${show(Buffer.from(key, 'latin1'))}, which is not a directory in the archive (symlink-then-write)`,
          );
        }
        throw err;
      }
      dirs.set(key, { mode: 0o755, mtime: null });
    }
  };

  const countFile = (rel: Buffer, size: number) => {
    if (limits.maxEntryBytes > 0 && size > limits.maxEntryBytes) {
      throw new AppError(
        'payload_too_large',
        `Snapshot cannot be restored: ${show(rel)} is ${size} bytes, over the per-file limit of ${limits.maxEntryBytes} bytes`,
      );
    }
    if (limits.maxBytes > 0 && res.totalBytes + size > limits.maxBytes) {
      throw new AppError(
        'quota_exceeded',
        `Snapshot cannot be restored: its files exceed the namespace quota of ${limits.maxBytes} bytes`,
      );
    }
    if (limits.maxFiles > 0 && res.regularFiles + 1 > limits.maxFiles) {
      throw new AppError(
        'quota_exceeded',
        `Snapshot cannot be restored: it holds more than the namespace quota of ${limits.maxFiles} files`,
      );
    }
    res.totalBytes += size;
    res.regularFiles++;
    res.filesRestored++;
  };

  const truncated = () => invalidArchive('the archive ends in the middle of an entry (truncated)');
  const readMeta = async (size: number, what: string): Promise<Buffer> => {
    if (size > MAX_META) throw invalidArchive(`${what} of ${size} bytes is too large`);
    const data = await reader.read(size + padding(size));
    if (!data) throw truncated();
    return Buffer.from(data.subarray(0, size));
  };
  const skipContent = async (size: number) => {
    if (!(await reader.skip(size + padding(size)))) throw truncated();
  };

  try {
    let pax: PaxValues = {};
    let longName: Buffer | null = null;
    let longLink: Buffer | null = null;
    for (;;) {
      const hb = reader.readNow(BLOCK) ?? (await reader.read(BLOCK));
      if (!hb) throw invalidArchive('the archive has no end-of-archive marker (truncated)');
      if (isZeroBlock(hb)) break;
      const h = parseHeader(hb);
      if (h.typeflag === 'x') {
        pax = { ...pax, ...parsePax(await readMeta(h.size, 'pax header')) };
        continue;
      }
      if (h.typeflag === 'g') {
        await readMeta(h.size, 'pax global header'); // defaults for later entries: nothing we rely on
        continue;
      }
      if (h.typeflag === 'L' || h.typeflag === 'K') {
        const v = await readMeta(h.size, 'GNU long name');
        const nul = v.indexOf(0);
        if (h.typeflag === 'L') longName = nul === -1 ? v : v.subarray(0, nul);
        else longLink = nul === -1 ? v : v.subarray(0, nul);
        continue;
      }
      const named = pax.path ?? longName ?? h.name;
      const sparse = sparseOf(pax, h.typeflag, named);
      const rel = sparse ? pax.sparseName! : named;
      const link = pax.linkpath ?? longLink ?? h.linkname;
      const size = pax.size ?? h.size;
      const mtime: Mtime = {
        sec: Math.min(MAX_MTIME, Math.max(MIN_MTIME, pax.mtimeSec ?? h.mtime)),
        nsec: pax.mtimeNsec ?? 0,
      };
      const mode = h.mode & MODE_MASK;
      pax = {};
      longName = null;
      longLink = null;
      const parts = cleanPath(rel, 'entry');
      const flag = h.typeflag;
      entries++;
      const parentKey = () => keyOf(parts, parts.length - 1);
      const lastName = () => parts[parts.length - 1]!;

      if (flag === '5') {
        await skipContent(size);
        const key = keyOf(parts);
        if (!dirs.has(key)) {
          ensureParents(parts, rel);
          try {
            mkdirat(staging.fd(parentKey()), lastName(), 0o700);
          } catch (err) {
            throw mapEexist(err, rel);
          }
        }
        dirs.set(key, { mode, mtime });
      } else if ((flag === '0' || flag === '7') && sparse) {
        if (parts.length === 0) throw invalidArchive('a file entry names the archive root');
        countFile(rel, sparse.realSize);
        const map = await readSparseMap(reader, size, sparse.realSize, rel, truncated);
        ensureParents(parts, rel);
        const attrs: FileAttrs = { mode, mtime, chown, umask };
        await writeLarge(staging, parentKey(), lastName(), rel, attrs, async (fd) => {
          for (const s of map.segments) {
            let pos = s.offset;
            for await (const piece of reader.take(s.length, truncated)) {
              await io.writeAllAt(fd, piece, pos);
              pos += piece.length;
            }
          }
          // The holes stay holes: only the apparent size is set.
          await io.ftruncate(fd, sparse.realSize);
        });
        if (!(await reader.skip(padding(size)))) throw truncated();
      } else if (flag === '0' || flag === '7') {
        if (parts.length === 0) throw invalidArchive('a file entry names the archive root');
        countFile(rel, size);
        ensureParents(parts, rel);
        const attrs: FileAttrs = { mode, mtime, chown, umask };
        if (size <= SMALL_FILE) {
          const data = reader.readNow(size + padding(size)) ?? (await reader.read(size + padding(size)));
          if (!data) throw truncated();
          const wait = writer.write({
            parent: Buffer.from(parentKey(), 'latin1'),
            name: lastName(),
            rel,
            data: data.subarray(0, size),
            mode,
            chmod: needsChmod(attrs),
            mtimeSec: mtime.sec,
            mtimeNsec: mtime.nsec,
          });
          if (wait) await wait;
        } else {
          await writeLarge(staging, parentKey(), lastName(), rel, attrs, async (fd) => {
            for await (const piece of reader.take(size, truncated)) await io.writeAll(fd, piece);
          });
          if (!(await reader.skip(padding(size)))) throw truncated();
        }
      } else if (flag === '2') {
        if (parts.length === 0) throw invalidArchive('a symlink entry names the archive root');
        if (link.length === 0 || link.includes(0) || link.length > MAX_PATH_BYTES) {
          throw invalidArchive(`symlink ${show(rel)} has an invalid target`);
        }
        await skipContent(size);
        ensureParents(parts, rel);
        res.filesRestored++;
        const dirFd = staging.fd(parentKey());
        // Targets are stored verbatim (absolute or outside included): a link is data, never followed here.
        try {
          symlinkat(link, dirFd, lastName());
        } catch (err) {
          throw mapEexist(err, rel);
        }
        if (chown) fchownat(dirFd, lastName(), chown.uid, chown.gid, AT_SYMLINK_NOFOLLOW);
        utimensat(dirFd, lastName(), mtime.sec, mtime.nsec, AT_SYMLINK_NOFOLLOW);
      } else if (flag === '1') {
        if (parts.length === 0) throw invalidArchive('a hard link entry names the archive root');
        await skipContent(size);
        const targetParts = cleanPath(link, `hard link ${show(rel)} → target`);
        // Security: the target must be a regular file this extraction wrote, reached through its own directories only.
        if (targetParts.length === 0 || !dirs.has(keyOf(targetParts, targetParts.length - 1))) {
          throw invalidArchive(`hard link ${show(rel)} points outside the archive (${show(link)})`);
        }
        await writer.drain(); // the target may still be being written
        const targetName = targetParts[targetParts.length - 1]!;
        const st = fstatat(staging.fd(keyOf(targetParts, targetParts.length - 1)), targetName);
        if (!st || !st.isFile())
          throw invalidArchive(
            `hard link ${show(rel)} points to ${show(link)}, which is not a file earlier in the archive`,
          );
        countFile(rel, st.size);
        ensureParents(parts, rel);
        const dirFd = staging.fd(parentKey());
        const targetDirFd = staging.fd(keyOf(targetParts, targetParts.length - 1));
        try {
          linkat(targetDirFd, targetName, dirFd, lastName(), 0);
        } catch (err) {
          throw mapEexist(err, rel);
        }
      } else if (flag === '3' || flag === '4') {
        throw invalidArchive(`entry ${show(rel)} is a device file`);
      } else if (flag === '6') {
        throw invalidArchive(`entry ${show(rel)} is a FIFO`);
      } else {
        throw invalidArchive(`entry ${show(rel)} has an unsupported type ${JSON.stringify(flag)}`);
      }
      opts.onProgress?.({ entries, bytes: res.totalBytes });
      restorePhase('mid-extract', entries);
      if (performance.now() - burstStart >= BURST_MS) await maybeYield();
    }
    // Read what follows the end marker so gunzip verifies the CRC of the whole stream (and a plain tar ends).
    if (!(await reader.endsWithin(MAX_TRAILER))) throw invalidArchive('unexpected data after the end of the archive');
    await writer.drain();
    staging.close();

    // Directory attributes last, deepest first (a directory is inserted after
    // its parent): a read-only directory must not block its own children.
    const keys = [...dirs.keys()];
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const attrs = dirs.get(key)!;
      const fd =
        key === ''
          ? destFd
          : openat2(destFd, Buffer.from(key, 'latin1'), O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH_NO_LINKS);
      try {
        if (chown) fs.fchownSync(fd, chown.uid, chown.gid);
        fs.fchmodSync(fd, attrs.mode);
        if (attrs.mtime !== null) utimensat(fd, '.', attrs.mtime.sec, attrs.mtime.nsec, 0);
      } finally {
        if (fd !== destFd) closeQuietly(fd);
      }
      await maybeYield();
    }
    return res;
  } catch (err) {
    throw mapStreamError(err);
  } finally {
    await writer.close();
    staging.close();
    if (gunzip) {
      src.off('error', onSrcError);
      src.unpipe?.(gunzip);
      gunzip.destroy();
    }
    src.destroy?.();
  }
}

/**
 * The sparse layout of an entry, from its pax records: GNU's format 1.0 is
 * restored with its holes; the older 0.x formats (whose data would be
 * restored condensed, i.e. wrong) are refused.
 */
function sparseOf(pax: PaxValues, flag: string, named: Buffer): { realSize: number } | null {
  const v = pax.sparseVersion;
  if (!v && !pax.sparseLegacy && pax.sparseRealSize === undefined && !pax.sparseName) return null;
  if (flag !== '0' && flag !== '7') return null; // GNU tar writes these keys only for regular files
  const name = pax.sparseName ?? named;
  if (pax.sparseLegacy || v?.major !== '1' || v.minor !== '0') {
    throw invalidArchive(
      `entry ${show(name)} uses an unsupported sparse format (only GNU tar's PAX sparse format 1.0 is restored)`,
    );
  }
  if (pax.sparseRealSize === undefined || !pax.sparseName) {
    throw invalidArchive(`sparse entry ${show(name)} lacks GNU.sparse.name or GNU.sparse.realsize`);
  }
  return { realSize: pax.sparseRealSize };
}

/**
 * Reads and checks the map at the start of a sparse entry's data: segments
 * in increasing order, inside the apparent size, their lengths adding up to
 * what the entry holds after the map.
 */
async function readSparseMap(
  reader: ByteReader,
  size: number,
  realSize: number,
  rel: Buffer,
  truncated: () => AppError,
): Promise<{ segments: SparseSegment[]; mapBytes: number }> {
  const bad = (why: string) => invalidArchive(`sparse entry ${show(rel)} has a bad map (${why})`);
  const nums: number[] = [];
  let want = -1;
  let digits = '';
  let mapBytes = 0;
  while (want < 0 || nums.length < want) {
    if (mapBytes + BLOCK > size) throw bad('it runs past the entry');
    if (mapBytes + BLOCK > MAX_META) throw bad(`it is larger than ${MAX_META} bytes`);
    const b = reader.readNow(BLOCK) ?? (await reader.read(BLOCK));
    if (!b) throw truncated();
    mapBytes += BLOCK;
    for (let i = 0; i < BLOCK && (want < 0 || nums.length < want); i++) {
      const c = b[i]!;
      if (c >= 0x30 && c <= 0x39) {
        digits += String.fromCharCode(c);
        if (digits.length > 16) throw bad('a number is too large');
      } else if (c === 0x0a && digits !== '') {
        const n = Number(digits);
        if (n > Number.MAX_SAFE_INTEGER) throw bad('a number is too large');
        nums.push(n);
        digits = '';
        if (nums.length === 1) want = 1 + 2 * n;
      } else {
        throw bad('not a list of decimal numbers');
      }
    }
  }
  const segments: SparseSegment[] = [];
  let end = 0;
  let data = 0;
  for (let i = 1; i < nums.length; i += 2) {
    const offset = nums[i]!;
    const length = nums[i + 1]!;
    if (offset < end) throw bad('segments overlap or are out of order');
    if (offset + length > realSize) throw bad('a segment ends past the file size');
    end = offset + length;
    data += length;
    if (length > 0) segments.push({ offset, length });
  }
  if (mapBytes + data !== size) throw bad('its segments do not add up to the entry size');
  return { segments, mapBytes };
}

/** Bits the process umask removes from a new file's mode, probed once per extraction. */
function probeUmask(dirFd: number): number {
  const name = '.umask-probe';
  const fd = openat2(dirFd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o777, BENEATH_NO_LINKS);
  try {
    return 0o777 & ~(fstat(fd).mode & 0o777);
  } finally {
    fs.closeSync(fd);
    unlinkat(dirFd, name, 0);
  }
}

interface FileAttrs {
  mode: number;
  mtime: Mtime;
  chown: ExtractOptions['chown'];
  umask: number;
}

/** open() already applied the mode unless the umask or a sticky bit got in the way: skip a syscall per file. */
const needsChmod = (a: FileAttrs) => a.mode > 0o777 || (a.mode & a.umask) !== 0;
// Security: O_EXCL|O_NOFOLLOW — never opens an existing name, never follows a link.
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

/** Creates `name` in the staging directory `parentKey`, lets `fill` write it, then sets owner, mode and mtime. */
async function writeLarge(
  staging: StagingDirs,
  parentKey: string,
  name: Buffer,
  rel: Buffer,
  a: FileAttrs,
  fill: (fd: number) => Promise<void>,
): Promise<void> {
  let fd: number;
  try {
    fd = await openat2Async(staging.fd(parentKey), name, CREATE_FLAGS, a.mode & 0o777, BENEATH_NO_LINKS);
  } catch (err) {
    throw mapEexist(err, rel);
  }
  try {
    await fill(fd);
    if (a.chown) await io.fchown(fd, a.chown.uid, a.chown.gid);
    if (needsChmod(a)) await io.fchmod(fd, a.mode);
  } catch (err) {
    io.closeQuietly(fd);
    throw err;
  }
  await io.close(fd);
  // By name in its (private) directory: the native call keeps nanoseconds, futimes only microseconds.
  utimensat(staging.fd(parentKey), name, a.mtime.sec, a.mtime.nsec, AT_SYMLINK_NOFOLLOW);
}
