/**
 * Files of a namespace: atomic writes (temp file in the same directory, fsync,
 * rename), streamed uploads and downloads, listings and deletes. Every path
 * goes through sandbox/paths.ts; every mutation appends an event.
 */
import fs, { constants, promises as fsp, type Stats } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { AppError } from '../errors.js';
import { isoMs } from '../ids.js';
import type { EventService } from '../events/service.js';
import * as io from '../snapshots/fd-io.js';
import { nativeIo } from '../native.js';
import type { NamespaceService } from './namespaces.js';
import type { NamespaceLocks } from './locks.js';
import {
  assertFdInside,
  displayPath,
  followForRead,
  mkdirInside,
  normalizeClientPath,
  openForRead,
  resolveInRoot,
  isInside,
  type Resolved,
} from '../sandbox/paths.js';

export const TEMP_PREFIX = '.trove-tmp-';
const CONTENT_CAP = 1024 * 1024;
/**
 * Upload bytes gathered per writev call: a 1 MiB upload is one thread-pool
 * write instead of two (measured: ~0.1 ms less CPU per 1 MiB PUT), at the cost
 * of up to this much memory per upload in flight.
 */
const WRITE_BATCH = 1024 * 1024;
/** Downloads up to this size are read into one buffer instead of streamed. */
const SMALL_READ = 64 * 1024;
const LIST_CAP = 1000;
/** Directory entries examined between two turns of the event loop (≈ 1 ms of lstat). */
const LSTAT_SLICE = 256;
const LIST_DEPTH = 20;

export interface NsContext {
  workspaceId: string;
  namespace: string;
}

export interface FileLimits {
  maxUploadBytes: number;
  maxReadBytes: number;
  quotaBytes: number;
  quotaFiles: number;
  /** How long a measured usage is trusted (see Config.files.usageCacheMs). */
  usageCacheMs: number;
}

export interface ListEntry {
  name: string;
  path: string;
  is_dir: boolean;
  size_bytes: number | null;
  modified_at: string;
}

interface Usage {
  bytes: number;
  files: number;
  at: number;
}

function notFound(rel: string): AppError {
  return new AppError('path_not_found', `Path not found: ${displayPath(rel)}`);
}

function tooLarge(limit: number): AppError {
  return new AppError('payload_too_large', `File is larger than the upload limit of ${limit} bytes`);
}

export class FileService {
  private readonly usage = new Map<string, Usage>();

  constructor(
    private readonly namespaces: NamespaceService,
    private readonly events: EventService,
    private readonly locks: NamespaceLocks,
    readonly limits: FileLimits,
  ) {}

  private async resolve(ctx: NsContext, clientPath: unknown): Promise<Resolved> {
    const rel = normalizeClientPath(clientPath);
    const root = await this.namespaces.ensure(ctx.workspaceId, ctx.namespace);
    return resolveInRoot(root, rel);
  }

  /** `POST /write`: UTF-8 text. */
  async writeText(ctx: NsContext, clientPath: unknown, content: string) {
    const data = Buffer.from(content, 'utf8');
    return this.writeStream(ctx, clientPath, [data], data.length, 'write');
  }

  /** `PUT /files/{path}`: raw bytes, streamed to disk. */
  async upload(ctx: NsContext, clientPath: unknown, body: Readable | Iterable<Buffer>, contentLength: number | null) {
    return this.writeStream(ctx, clientPath, body, contentLength, 'upload');
  }

  private async writeStream(
    ctx: NsContext,
    clientPath: unknown,
    body: Readable | Iterable<Buffer> | AsyncIterable<Buffer>,
    declared: number | null,
    source: 'write' | 'upload',
  ) {
    const r = await this.resolve(ctx, clientPath);
    if (r.rel === '') throw new AppError('path_is_root', 'Cannot write to the namespace root; give a file path');
    const { maxUploadBytes } = this.limits;
    if (declared !== null && maxUploadBytes > 0 && declared > maxUploadBytes) throw tooLarge(maxUploadBytes);
    return this.locks.shared(ctx.workspaceId, ctx.namespace, async () => {
      const created = await mkdirInside(r);
      for (const d of created) await this.namespaces.chown(d);
      const existing = lstatOrNull(r.abs);
      if (existing?.isDirectory()) {
        throw new AppError('path_is_directory', `Path is a directory: ${displayPath(r.rel)}`);
      }
      const budget = await this.quotaBudget(ctx, existing);
      if (declared !== null && budget.bytes !== null && declared > budget.bytes) throw this.quotaError();
      if (budget.files === 0 && !existing) throw this.quotaError();

      const tmp = join(r.parent, TEMP_PREFIX + randomBytes(8).toString('hex'));
      // Security: O_EXCL|O_NOFOLLOW — never write through a planted link; the fd is re-verified.
      // On the pool: creating a name waits for the directory, which concurrent renames and fsyncs hold
      // (synchronous, it cost 14–18 % of PUT throughput in an interleaved A/B).
      const fd = await io.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      let size = 0;
      let closed = false;
      let renamed = false;
      try {
        assertFdInside(fd, r.root, r.rel);
        // On the descriptor, before any byte lands: the name never appears with the wrong owner.
        // Synchronous: it changes only the new inode, which nothing else holds (1.04× PUT/s in an A/B).
        const { owner } = this.namespaces;
        if (owner.enabled) fs.fchownSync(fd, owner.uid, owner.gid);
        const limit = Math.min(
          maxUploadBytes > 0 ? maxUploadBytes : Infinity,
          budget.bytes !== null ? budget.bytes : Infinity,
        );
        // Socket chunks are 16–64 KiB; gathering them into one writev per WRITE_BATCH
        // costs a thread-pool round trip per batch instead of one per chunk.
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        for await (const chunk of body as AsyncIterable<Buffer>) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          size += buf.length;
          if (size > limit) {
            throw size > maxUploadBytes && maxUploadBytes > 0 ? tooLarge(maxUploadBytes) : this.quotaError();
          }
          pending.push(buf);
          pendingBytes += buf.length;
          if (pendingBytes >= WRITE_BATCH || pending.length >= 256) {
            await writeAll(fd, pending, pendingBytes);
            pending = [];
            pendingBytes = 0;
          }
        }
        if (declared !== null && size !== declared) {
          throw new AppError('bad_request', `Upload ended after ${size} of ${declared} bytes`);
        }
        if (pendingBytes > 0) await writeAll(fd, pending, pendingBytes);
        await io.fsyncFd(fd);
        // After the fsync nothing is left to flush: closing is instant, no thread needed.
        closed = true;
        fs.closeSync(fd);
        // rename() replaces a symlink at the target instead of following it.
        await io.rename(tmp, r.abs);
        renamed = true;
        // The data is durable (fsync above); this makes the new name durable.
        await io.fsyncDir(r.parent);
      } finally {
        if (!renamed) {
          if (!closed) io.closeSyncQuietly(fd);
          await fsp.unlink(tmp).catch(() => {});
        }
      }
      this.adjustUsage(ctx, size - (existing?.isFile() ? existing.size : 0), existing ? 0 : 1);
      const path = displayPath(r.rel);
      await this.events.emit({
        workspaceId: ctx.workspaceId,
        namespace: ctx.namespace,
        type: 'file.written',
        data: { path, size_bytes: size, source },
      });
      void this.namespaces.touch(ctx.workspaceId, ctx.namespace).catch(() => {});
      return { path, size_bytes: size };
    });
  }

  /**
   * `GET /files/{path}`: at most maxReadBytes, as a Buffer when small (one read,
   * sent with a single write), else an open descriptor the caller hands to
   * sendFileBody (which closes it).
   */
  async download(ctx: NsContext, clientPath: unknown): Promise<Download> {
    const r = await this.resolve(ctx, clientPath);
    const { fd, st } = await openRegularFile(r);
    const cap = this.limits.maxReadBytes;
    const truncated = cap > 0 && st.size > cap;
    const modifiedMs = st.mtimeMs;
    const want = truncated ? cap : st.size;
    if (want <= SMALL_READ) {
      // Small files skip the pump entirely; a file that shrank since fstat is
      // sent as read, so Content-Length always matches the body.
      let body: Buffer;
      try {
        body = await readHead(fd, want);
      } finally {
        fs.closeSync(fd);
      }
      return { body, size: st.size, length: body.length, truncated, modifiedMs };
    }
    return { body: { fd }, size: st.size, length: want, truncated, modifiedMs };
  }

  /** `GET /v1/files/content`. */
  async content(ctx: NsContext, clientPath: unknown) {
    const r = await this.resolve(ctx, clientPath);
    const { fd, st } = await openRegularFile(r);
    let bytes: Buffer;
    try {
      bytes = await readHead(fd, Math.min(st.size, CONTENT_CAP));
    } finally {
      fs.closeSync(fd);
    }
    const truncated = st.size > CONTENT_CAP;
    const text = decodeUtf8(bytes, truncated);
    return {
      path: displayPath(r.rel),
      size_bytes: st.size,
      modified_at: isoMs(st.mtimeMs),
      encoding: text === null ? 'binary' : 'utf-8',
      content: text,
      truncated,
    };
  }

  /** `POST /delete`: a file, a symlink (never its target) or a directory tree. */
  async delete(ctx: NsContext, clientPath: unknown) {
    const r = await this.resolve(ctx, clientPath);
    if (r.rel === '') throw new AppError('path_is_root', 'The namespace root cannot be deleted');
    return this.locks.shared(ctx.workspaceId, ctx.namespace, async () => {
      const st = lstatOrNull(r.abs);
      if (!st) throw notFound(r.rel);
      // fs.rm removes a symlink itself and never descends through links inside a tree.
      await fsp.rm(r.abs, { recursive: true, force: false });
      await io.fsyncDir(r.parent).catch(() => {});
      this.usage.delete(`${ctx.workspaceId}/${ctx.namespace}`);
      const path = displayPath(r.rel);
      await this.events.emit({
        workspaceId: ctx.workspaceId,
        namespace: ctx.namespace,
        type: 'file.deleted',
        data: { path },
      });
      void this.namespaces.touch(ctx.workspaceId, ctx.namespace).catch(() => {});
      return { deleted: path };
    });
  }

  /** `GET /v1/files`: directories first, then files, alphabetical; recursive is depth-first and flat. */
  async list(ctx: NsContext, clientPath: unknown, recursive: boolean) {
    const r = await this.resolve(ctx, clientPath ?? '');
    const real = await followForRead(r);
    const st = fs.statSync(real);
    if (!st.isDirectory()) throw new AppError('not_a_directory', `Not a directory: ${displayPath(r.rel)}`);
    const entries: ListEntry[] = [];
    let truncated = false;
    const walk = async (dirReal: string, dirRel: string, depth: number): Promise<void> => {
      const items = await readDirEntries(dirReal, dirRel, r.root);
      for (const item of items) {
        if (entries.length >= LIST_CAP) {
          truncated = true;
          return;
        }
        entries.push(item.entry);
        if (recursive && item.entry.is_dir && item.realDir) {
          if (depth + 1 >= LIST_DEPTH) {
            truncated = true;
            continue;
          }
          await walk(item.realDir, item.rel, depth + 1);
          if (truncated && entries.length >= LIST_CAP) return;
        }
      }
    };
    await walk(real, r.rel, 0);
    return { entries, truncated };
  }

  /** Usage of a namespace (bytes, regular files), cached briefly. */
  async usageOf(ctx: NsContext): Promise<{ bytes: number; files: number }> {
    const key = `${ctx.workspaceId}/${ctx.namespace}`;
    const cached = this.usage.get(key);
    if (cached && cached.at > Date.now() - this.limits.usageCacheMs) return cached;
    const root = await this.namespaces.ensure(ctx.workspaceId, ctx.namespace);
    const u = await measure(await fsp.realpath(root));
    this.usage.set(key, { ...u, at: Date.now() });
    return u;
  }

  /** Forget cached usage (after exec or restore changed the tree behind our back). */
  invalidateUsage(ctx: NsContext): void {
    this.usage.delete(`${ctx.workspaceId}/${ctx.namespace}`);
  }

  private adjustUsage(ctx: NsContext, bytes: number, files: number): void {
    const u = this.usage.get(`${ctx.workspaceId}/${ctx.namespace}`);
    if (u) {
      u.bytes += bytes;
      u.files += files;
    }
  }

  private quotaError(): AppError {
    const { quotaBytes, quotaFiles } = this.limits;
    return new AppError(
      'quota_exceeded',
      `Namespace quota exceeded (limits: ${quotaBytes || 'unlimited'} bytes, ${quotaFiles || 'unlimited'} files)`,
    );
  }

  private async quotaBudget(ctx: NsContext, existing: Stats | null): Promise<{ bytes: number | null; files: number | null }> {
    const { quotaBytes, quotaFiles } = this.limits;
    if (!quotaBytes && !quotaFiles) return { bytes: null, files: null };
    const u = await this.usageOf(ctx);
    const freed = existing?.isFile() ? existing.size : 0;
    return {
      bytes: quotaBytes ? Math.max(0, quotaBytes - u.bytes + freed) : null,
      files: quotaFiles ? Math.max(0, quotaFiles - u.files) : null,
    };
  }
}

export interface Download {
  /** The bytes (small files), or an open descriptor to stream `length` bytes from with sendFileBody. */
  body: Buffer | { fd: number };
  size: number;
  length: number;
  truncated: boolean;
  modifiedMs: number;
}

/** Chunk of a large download: one read and one socket write each. */
const SEND_CHUNK = 256 * 1024;
/** A first chunk sent through res.write when the headers could not leave at once (see sendFileBody). */
const FIRST_CHUNK = 64 * 1024;
/**
 * At most this much per sendfile call, like nginx's sendfile_max_chunk: a file that is not in the page
 * cache is read from disk inside the call, on the event loop, so one call's stall stays bounded.
 */
const SENDFILE_MAX_CHUNK = 2 * 1024 * 1024;
/** Bytes sendfile may push in a row before the loop gets a turn (a fast reader keeps the socket drained). */
const SENDFILE_BURST = 4 * 1024 * 1024;
const EAGAIN = -osConstants.errno.EAGAIN;

/**
 * Writes the first `length` bytes of `fd` as the response body, then ends the
 * response; closes `fd` in every case. Headers must have been set (writeHead),
 * not necessarily sent. With sendfile they are flushed on their own first, so
 * the kernel sends the whole body; see pumpFile for the rest.
 */
export async function sendFileBody(res: ServerResponse, fd: number, length: number): Promise<void> {
  const headersFirst = nativeIo() !== null && length > 0 && !res.headersSent;
  if (headersFirst) res.flushHeaders();
  if (await pumpFile(res, res.socket, fd, length, headersFirst)) res.end();
}

/** Where pumpFile writes: a ServerResponse, or the raw socket of the download lane. */
export interface FileSink {
  write(chunk: Buffer, cb: (err?: Error | null) => void): unknown;
  readonly writableLength: number;
  readonly destroyed: boolean;
  destroy(): unknown;
  once(event: 'close', fn: () => void): unknown;
  off(event: 'close', fn: () => void): unknown;
}

/**
 * Writes the first `length` bytes of `fd` to `sink`, whose bytes go out on
 * `socket`; closes `fd` in every case. True when every byte has reached the
 * kernel; false when the sink was destroyed (the file shrank, the client went
 * away): a body shorter than its Content-Length must not look complete.
 * `sentBefore`: everything the sink was given so far may still be queued (the
 * headers); sendfile waits until it has left.
 *
 * With the native addon (native.ts), the kernel copies the file to the
 * socket itself: no read into a buffer, no second copy. Its calls never wait
 * (the socket is non-blocking): when the send buffer is full the next chunk
 * goes through sink.write instead, and that write's callback, once the socket
 * has drained, is the signal to resume sendfile. sendfile only runs once
 * everything written before it has left Node's buffers, so the bytes stay in
 * order. As with nginx's sendfile, data not in the page cache is read from
 * disk inside the call: each call is capped at SENDFILE_MAX_CHUNK and the
 * loop gets a turn every SENDFILE_BURST bytes.
 *
 * Without the addon (or for those fallbacks), two buffers are reused for the
 * whole download: one is read into while the other is being written, and a
 * buffer is refilled only after its write callback (the socket holds it until
 * then). A file read stream allocates a fresh off-heap buffer per read
 * instead; at GB/s that volume alone makes V8 run full collections back to
 * back (2.5× the CPU per 1 MiB download, see bench/README.md). At most two
 * chunks are in flight, so a slow client holds 512 KiB, not the file.
 */
export async function pumpFile(
  sink: FileSink,
  socket: Socket | null,
  fd: number,
  length: number,
  sentBefore: boolean,
): Promise<boolean> {
  const addon = nativeIo();
  const size = Math.min(SEND_CHUNK, length);
  // Allocated when first needed: with sendfile most downloads never need one.
  const bufs: Array<Buffer | null> = [null, null];
  // Resolve with the write's error (or null): a rejected promise nobody awaits yet would crash the process.
  const inFlight: Array<Promise<Error | null | undefined> | null> = [null, null];
  // A write's callback may never come once the client has gone (data still queued in the sink):
  // every wait also ends when the sink closes, so the descriptor is always released.
  let onClose: () => void = () => {};
  const closed = new Promise<Error>((resolve) => {
    onClose = () => resolve(new Error('response closed'));
    sink.once('close', onClose);
  });
  const settled = (p: Promise<Error | null | undefined>) => Promise.race([p, closed]);
  const fail = () => {
    sink.destroy();
    return false;
  };
  let pos = 0;
  let k = 0;
  let burst = 0;
  try {
    while (pos < length) {
      if (addon && (pos > 0 || sentBefore)) {
        // Everything written before must have reached the kernel.
        for (let i = 0; i < 2; i++) {
          const p = inFlight[i];
          if (p && (await settled(p))) return fail();
          inFlight[i] = null;
        }
        if (sink.destroyed) return false;
        const sock = socketFd(socket);
        if (sock !== null && sink.writableLength === 0) {
          const n = addon.sendfile(sock, fd, pos, Math.min(SENDFILE_MAX_CHUNK, length - pos));
          if (n > 0) {
            pos += n;
            burst += n;
            if (burst >= SENDFILE_BURST) {
              burst = 0;
              await yieldToLoop();
            }
            continue;
          }
          // 0: the file shrank since fstat; EPIPE, ECONNRESET…: the client is gone.
          if (n !== EAGAIN) return fail();
          // The send buffer is full: one buffered chunk, whose callback says it drained.
          burst = 0;
        }
      }
      const pending = inFlight[k];
      if (pending && (await settled(pending))) return fail();
      if (sink.destroyed) return false;
      const buf = (bufs[k] ??= Buffer.allocUnsafeSlow(pos === 0 && addon ? Math.min(FIRST_CHUNK, size) : size));
      const want = Math.min(buf.length, length - pos);
      const n = await io.read(fd, buf, 0, want, pos);
      if (n === 0) return fail(); // the file shrank since fstat
      pos += n;
      const chunk = n === buf.length ? buf : buf.subarray(0, n);
      inFlight[k] = new Promise((resolve) => sink.write(chunk, resolve));
      k ^= 1;
    }
    for (const p of inFlight) if (p && (await settled(p))) return fail();
    return !sink.destroyed;
  } catch {
    return fail();
  } finally {
    sink.off('close', onClose);
    io.closeSyncQuietly(fd);
  }
}

/** The descriptor of a plain TCP socket (not TLS), or null. */
function socketFd(socket: Socket | null): number | null {
  const sock = socket as (Socket & { _handle?: { fd?: unknown }; encrypted?: boolean }) | null;
  if (!sock || sock.destroyed || sock.encrypted) return null;
  const fd = sock._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Read-only metadata, so synchronous (see sandbox/paths.ts). */
function lstatOrNull(p: string): Stats | null {
  return fs.lstatSync(p, { throwIfNoEntry: false }) ?? null;
}

/** Writes every buffer at the current position; writev may stop short (ENOSPC is reported on the retry). */
async function writeAll(fd: number, bufs: Buffer[], total: number): Promise<void> {
  const written = await new Promise<number>((resolve, reject) =>
    fs.writev(fd, bufs, (err, n) => (err ? reject(err) : resolve(n))),
  );
  if (written < total) await io.writeAll(fd, Buffer.concat(bufs).subarray(written));
}

/**
 * Opens a resolved path for reading. The common case (a regular file) costs one
 * open: O_NOFOLLOW refuses a final symlink and the descriptor's /proc link is
 * re-checked, so no realpath is needed. Only a final symlink (ELOOP) takes the
 * slower path that follows it and verifies the target stays inside the root.
 */
async function openResolved(r: Resolved) {
  try {
    return await openForRead(r.root, r.abs, r.rel);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOOP') throw mapOpenError(err, r.rel);
  }
  const real = await followForRead(r);
  try {
    return await openForRead(r.root, real, r.rel);
  } catch (err) {
    throw mapOpenError(err, r.rel);
  }
}

function mapOpenError(err: unknown, rel: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  // ENOTDIR: a component turned into a file between resolving and opening (a race with exec).
  if (code === 'ENOENT' || code === 'ENOTDIR') return notFound(rel);
  if (code === 'ELOOP') return new AppError('path_outside_namespace', `Path resolves outside the namespace: ${displayPath(rel)}`);
  if (code === 'ENXIO') return new AppError('bad_request', `Not a regular file: ${displayPath(rel)}`);
  if (code === 'EACCES') return new AppError('forbidden', `Permission denied: ${displayPath(rel)}`);
  return err;
}

/** UTF-8 text or null for binary; a multi-byte character cut by truncation is dropped. */
function decodeUtf8(bytes: Buffer, truncated: boolean): string | null {
  if (bytes.includes(0)) return null;
  let end = bytes.length;
  if (truncated) {
    // Drop a multi-byte character that the cap cut in half (at most 3 bytes).
    let lead = end - 1;
    while (lead > end - 4 && lead >= 0 && (bytes[lead]! & 0xc0) === 0x80) lead--;
    if (lead >= 0) {
      const b = bytes[lead]!;
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
      if (end - lead < need) end = lead;
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, end));
  } catch {
    return null;
  }
}

interface DirItem {
  entry: ListEntry;
  rel: string;
  realDir: string | null;
}

/**
 * The lstat of each entry is synchronous (read-only metadata, see
 * sandbox/paths.ts): ~3 µs each instead of a ~30 µs thread-pool round trip,
 * ten times less CPU for a large listing. A huge directory is done in slices
 * with a turn of the event loop between them, so no request waits long behind it.
 */
async function readDirEntries(dirReal: string, dirRel: string, root: string): Promise<DirItem[]> {
  const dirents = await fsp.readdir(dirReal, { withFileTypes: true });
  const items: DirItem[] = [];
  for (let i = 0; i < dirents.length; i++) {
    if (i > 0 && i % LSTAT_SLICE === 0) await yieldToLoop();
    const d = dirents[i]!;
    if (d.name.startsWith(TEMP_PREFIX)) continue;
    const host = join(dirReal, d.name);
    const rel = dirRel === '' ? d.name : `${dirRel}/${d.name}`;
    let st: Stats | undefined;
    try {
      st = fs.lstatSync(host, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (!st) continue; // vanished while listing
    let isDir = st.isDirectory();
    let size = st.size;
    let realDir: string | null = isDir ? host : null;
    if (st.isSymbolicLink()) {
      // Show a contained link as what it points to; never descend through it.
      try {
        const target = fs.realpathSync.native(host);
        if (isInside(root, target)) {
          const ts = fs.statSync(target);
          isDir = ts.isDirectory();
          size = ts.size;
        }
      } catch {
        /* dangling: a file-like entry */
      }
      realDir = null;
    }
    items.push({
      entry: {
        name: d.name,
        path: displayPath(rel),
        is_dir: isDir,
        size_bytes: isDir ? null : size,
        modified_at: isoMs(st.mtimeMs),
      },
      rel,
      realDir,
    });
  }
  items.sort((a, b) => {
    if (a.entry.is_dir !== b.entry.is_dir) return a.entry.is_dir ? -1 : 1;
    return a.entry.name < b.entry.name ? -1 : a.entry.name > b.entry.name ? 1 : 0;
  });
  return items;
}

async function measure(root: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let dirents;
    try {
      dirents = await fsp.readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const d of dirents) {
      const p = join(dir, d.name);
      if (d.isDirectory()) stack.push(p);
      else if (d.isFile()) {
        try {
          bytes += (await fsp.lstat(p)).size;
          files++;
        } catch {
          /* vanished */
        }
      }
    }
  }
  return { bytes, files };
}

/** Opens a resolved path for reading; 400 unless it is a regular file (the descriptor is closed then). */
async function openRegularFile(r: Resolved): Promise<{ fd: number; st: Stats }> {
  const fd = await openResolved(r);
  try {
    // fstat of an open descriptor never touches the disk: synchronous.
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new AppError('path_is_directory', `Path is a directory: ${displayPath(r.rel)}`);
    if (!st.isFile()) throw new AppError('bad_request', `Not a regular file: ${displayPath(r.rel)}`);
    return { fd, st };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * Up to `want` bytes from the start of the file; fewer when it shrank since it was measured.
 * Up to SMALL_READ the read is synchronous, as nginx reads: from the page cache it costs a few
 * µs against ~30 µs for a thread-pool round trip; a cold read blocks the loop for one disk read.
 */
async function readHead(fd: number, want: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(want);
  const sync = want <= SMALL_READ;
  let got = 0;
  while (got < want) {
    const bytesRead = sync ? fs.readSync(fd, buf, got, want - got, got) : await io.read(fd, buf, got, want - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === want ? buf : buf.subarray(0, got);
}
