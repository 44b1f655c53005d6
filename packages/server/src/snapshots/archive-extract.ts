/**
 * Extracts a gzip'd tar into an empty staging directory, validating every
 * entry before it touches the disk. The staging directory is private (0700
 * under the server's own 0700 tree), so the only links in it are the ones
 * this code created; a set of the directories created here decides where
 * an entry may go, and nothing is ever written through a symlink.
 *
 * Small files are handed in batches to a writer thread (file-writer.ts),
 * which makes tar's plain synchronous syscalls while this thread parses and
 * validates the next entries. Directories and links are created here,
 * synchronously and in archive order, so a file is only queued once its
 * parent exists; those bursts are cut to ~2 ms by yielding to the event
 * loop. Large files are streamed from here with asynchronous writes.
 */
import fs, { constants } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { AppError } from '../errors.js';
import { ByteReader } from './byte-reader.js';
import * as io from './fd-io.js';
import { FileWriter } from './file-writer.js';
import { crashPoint } from './crash-points.js';
import { BLOCK, isZeroBlock, padding, parseHeader, parsePax, TarFormatError, type PaxValues } from './tar-format.js';

/** Limits a restore must respect (0 = unlimited). */
export interface ArchiveLimits {
  /** Sum of regular file sizes (the namespace byte quota). */
  maxBytes: number;
  /** Regular files, hard links included (the namespace file quota; directories and symlinks do not count, as in FileService). */
  maxFiles: number;
  /** Largest single file. */
  maxEntryBytes: number;
}

export interface ExtractOptions {
  /** Owner for every restored entry (when the server runs as root and exec uses another uid). */
  chown?: { uid: number; gid: number };
  /** Called after each entry is processed. */
  onProgress?: (p: { entries: number; bytes: number }) => void;
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
/** pax / GNU long-name payloads are metadata; anything bigger is an attack. */
const MAX_META = 1024 * 1024;
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;
/** Data allowed after the end-of-archive marker (tar's blocking pads with zeros). */
const MAX_TRAILER = 1024 * 1024;
const MIN_MTIME = -(2 ** 31);
const MAX_MTIME = 2 ** 34;
const SLASH = 0x2f;
const SLASH_BUF = Buffer.from('/');

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
    if (part.length > MAX_NAME_BYTES) throw invalidArchive(`${what} ${show(raw)} has a name longer than ${MAX_NAME_BYTES} bytes`);
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
  mtime: number | null;
}

function mapEexist(err: unknown, rel: Buffer): unknown {
  if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
    return invalidArchive(`entry ${show(rel)} appears twice or conflicts with an earlier entry`);
  }
  return err;
}

function mapStreamError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  if (err instanceof TarFormatError) return invalidArchive(err.message);
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return invalidArchive('the compressed data is corrupt or truncated (not a gzip stream written by a snapshot)');
  }
  return err;
}

/**
 * Extracts `input` (gzip'd tar) into `dest`, an existing empty directory.
 * Throws AppError (snapshot_invalid / quota_exceeded / payload_too_large)
 * for a bad or oversized archive; `dest` is then partially filled and the
 * caller removes it.
 */
export async function extractArchive(
  input: NodeJS.ReadableStream,
  dest: string,
  limits: ArchiveLimits,
  opts: ExtractOptions = {},
): Promise<ExtractResult> {
  const destBuf = Buffer.from(dest);
  const umask = probeUmask(destBuf);
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const src = input as NodeJS.ReadableStream & { destroy?: (e?: Error) => void };
  const onSrcError = (err: Error) => gunzip.destroy(err);
  src.on('error', onSrcError);
  src.pipe(gunzip);
  // Up to 2 MiB inflated ahead: inflation (on the thread pool) overlaps the writes.
  const reader = ByteReader.fromStream(gunzip, 2 * 1024 * 1024);
  const chown = opts.chown;
  const writer = new FileWriter(opts.chown, (f) =>
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

  const absOf = (parts: Buffer[], n = parts.length): Buffer => {
    const bufs: Buffer[] = [destBuf];
    for (let i = 0; i < n; i++) bufs.push(SLASH_BUF, parts[i]!);
    return Buffer.concat(bufs);
  };

  /** Creates missing parents; refuses a parent that is not a directory created here. */
  const ensureParents = (parts: Buffer[], rel: Buffer) => {
    for (let i = 1; i < parts.length; i++) {
      const key = keyOf(parts, i);
      if (dirs.has(key)) continue;
      try {
        fs.mkdirSync(absOf(parts, i), { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
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
      throw new AppError('quota_exceeded', `Snapshot cannot be restored: its files exceed the namespace quota of ${limits.maxBytes} bytes`);
    }
    if (limits.maxFiles > 0 && res.regularFiles + 1 > limits.maxFiles) {
      throw new AppError('quota_exceeded', `Snapshot cannot be restored: it holds more than the namespace quota of ${limits.maxFiles} files`);
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
      const rel = pax.path ?? longName ?? h.name;
      const link = pax.linkpath ?? longLink ?? h.linkname;
      const size = pax.size ?? h.size;
      const mtimeSec = Math.min(MAX_MTIME, Math.max(MIN_MTIME, pax.mtimeSec ?? h.mtime));
      // Node's utimes keeps microseconds and truncates; aiming at the middle of
      // the microsecond makes the double's rounding error land on the right one.
      const mtime = mtimeSec + (Math.floor((pax.mtimeNsec ?? 0) / 1000) + 0.5) / 1e6;
      const mode = h.mode & MODE_MASK;
      pax = {};
      longName = null;
      longLink = null;
      const parts = cleanPath(rel, 'entry');
      const flag = h.typeflag;
      entries++;

      if (flag === '5') {
        await skipContent(size);
        const key = keyOf(parts);
        if (!dirs.has(key)) {
          ensureParents(parts, rel);
          try {
            fs.mkdirSync(absOf(parts), { mode: 0o700 });
          } catch (err) {
            throw mapEexist(err, rel);
          }
        }
        dirs.set(key, { mode, mtime });
      } else if (flag === '0' || flag === '7') {
        if (parts.length === 0) throw invalidArchive('a file entry names the archive root');
        countFile(rel, size);
        ensureParents(parts, rel);
        const attrs: FileAttrs = { mode, mtime, chown, umask };
        if (size <= SMALL_FILE) {
          const data = reader.readNow(size + padding(size)) ?? (await reader.read(size + padding(size)));
          if (!data) throw truncated();
          const wait = writer.write(absOf(parts), rel, data.subarray(0, size), mode, needsChmod(attrs), mtime);
          if (wait) await wait;
        } else {
          await writeLarge(absOf(parts), rel, reader.take(size, truncated), attrs);
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
        const abs = absOf(parts);
        // Targets are stored verbatim (absolute or outside included): a link is data, never followed here.
        try {
          fs.symlinkSync(link, abs);
        } catch (err) {
          throw mapEexist(err, rel);
        }
        if (chown) fs.lchownSync(abs, chown.uid, chown.gid);
        fs.lutimesSync(abs, mtime, mtime);
      } else if (flag === '1') {
        if (parts.length === 0) throw invalidArchive('a hard link entry names the archive root');
        await skipContent(size);
        const targetParts = cleanPath(link, `hard link ${show(rel)} → target`);
        // Security: the target must be a regular file this extraction wrote, reached through its own directories only.
        if (targetParts.length === 0 || !dirs.has(keyOf(targetParts, targetParts.length - 1))) {
          throw invalidArchive(`hard link ${show(rel)} points outside the archive (${show(link)})`);
        }
        await writer.drain(); // the target may still be being written
        const target = absOf(targetParts);
        let st: fs.Stats | undefined;
        try {
          st = fs.lstatSync(target);
        } catch {
          st = undefined;
        }
        if (!st || !st.isFile()) throw invalidArchive(`hard link ${show(rel)} points to ${show(link)}, which is not a file earlier in the archive`);
        countFile(rel, st.size);
        ensureParents(parts, rel);
        try {
          fs.linkSync(target, absOf(parts));
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
      crashPoint('mid-extract', entries);
      if (performance.now() - burstStart >= BURST_MS) await maybeYield();
    }
    // Read what follows the end marker so gunzip verifies the CRC of the whole stream.
    if (!(await reader.endsWithin(MAX_TRAILER))) throw invalidArchive('unexpected data after the end of the archive');
    await writer.drain();

    // Directory modes last: a read-only directory must not block its own children.
    for (const [key, attrs] of dirs) {
      const abs = key === '' ? destBuf : Buffer.concat([destBuf, SLASH_BUF, Buffer.from(key, 'latin1')]);
      if (chown) fs.lchownSync(abs, chown.uid, chown.gid);
      fs.chmodSync(abs, attrs.mode);
      if (attrs.mtime !== null) fs.utimesSync(abs, attrs.mtime, attrs.mtime);
      await maybeYield();
    }
    return res;
  } catch (err) {
    throw mapStreamError(err);
  } finally {
    await writer.close();
    src.off('error', onSrcError);
    src.unpipe?.(gunzip);
    gunzip.destroy();
    src.destroy?.();
  }
}

/** Bits the process umask removes from a new file's mode, probed once per extraction. */
function probeUmask(dir: Buffer): number {
  const probe = Buffer.concat([dir, Buffer.from('/.umask-probe')]);
  const fd = fs.openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o777);
  try {
    return 0o777 & ~(fs.fstatSync(fd).mode & 0o777);
  } finally {
    fs.closeSync(fd);
    fs.unlinkSync(probe);
  }
}

interface FileAttrs {
  mode: number;
  mtime: number;
  chown: ExtractOptions['chown'];
  umask: number;
}

/** open() already applied the mode unless the umask or a sticky bit got in the way: skip a syscall per file. */
const needsChmod = (a: FileAttrs) => a.mode > 0o777 || (a.mode & a.umask) !== 0;
// Security: O_EXCL|O_NOFOLLOW — never opens an existing path, never follows a link.
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

async function writeLarge(abs: Buffer, rel: Buffer, pieces: AsyncGenerator<Buffer>, a: FileAttrs): Promise<void> {
  let fd: number;
  try {
    fd = await io.open(abs, CREATE_FLAGS, a.mode & 0o777);
  } catch (err) {
    throw mapEexist(err, rel);
  }
  try {
    for await (const piece of pieces) await io.writeAll(fd, piece);
    if (a.chown) await io.fchown(fd, a.chown.uid, a.chown.gid);
    if (needsChmod(a)) await io.fchmod(fd, a.mode);
    await io.futimes(fd, a.mtime, a.mtime);
  } catch (err) {
    io.closeQuietly(fd);
    throw err;
  }
  await io.close(fd);
}
