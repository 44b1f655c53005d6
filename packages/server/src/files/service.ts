/**
 * Files of a namespace: atomic writes (temp file in the server's private
 * scratch directory, fsync, renameat into place), streamed uploads,
 * downloads (an open descriptor and its metadata: http/send-file.ts sends
 * the bytes), listings and deletes. Every operation on the tree goes through
 * tree/ (descriptors resolved beneath the namespace root); every mutation
 * appends an event. The namespace's quota and the volume's reserve are quota.ts's; If-Match and
 * If-None-Match are conditions.ts's.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { AppError } from '../errors.js';
import { isoMs } from '../ids.js';
import type { EventService } from '../events/service.js';
import * as io from '../tree/fd-io.js';
import type { NamespaceService, NsContext } from '../namespaces/service.js';
import type { NamespaceLocks } from '../locks/namespace-locks.js';
import { checkConditions, etagOf, isStar, type WriteConditions } from './conditions.js';
import type { NamespaceQuota } from './quota.js';
import { dirSyncer } from '../tree/dir-sync.js';
import {
  closeQuietly,
  displayPath,
  errCode,
  fstat,
  normalizeClientPath,
  type NamespaceTree,
  type Stat,
  type TempFile,
  writevFsyncAsync,
} from '../tree/index.js';

const CONTENT_CAP = 1024 * 1024;
/**
 * Upload bytes gathered per writev call: a 1 MiB upload is one thread-pool
 * write instead of two (measured: ~0.1 ms less CPU per 1 MiB PUT), at the cost
 * of up to this much memory per upload in flight.
 */
const WRITE_BATCH = 1024 * 1024;
/** Content reads up to this size are synchronous (see readHead). */
const SMALL_READ = 64 * 1024;
const LIST_CAP = 1000;
const LIST_DEPTH = 20;

/** Size limits of one file (the namespace's quota is NamespaceQuota's). */
export interface FileLimits {
  maxUploadBytes: number;
  maxReadBytes: number;
}

export interface ListEntry {
  name: string;
  path: string;
  is_dir: boolean;
  size_bytes: number | null;
  modified_at: string;
}

function tooLarge(limit: number): AppError {
  return new AppError('payload_too_large', `File is larger than the upload limit of ${limit} bytes`);
}

export class FileService {
  /** Per-path queues of the commit step (exclusivePath). */
  private readonly pathLocks = new Map<string, Promise<void>>();

  constructor(
    private readonly namespaces: NamespaceService,
    private readonly events: EventService,
    private readonly locks: NamespaceLocks,
    readonly limits: FileLimits,
    /** The namespace's usage against its quota, and the volume's reserve. */
    readonly quota: NamespaceQuota,
  ) {}

  /**
   * The namespace's tree, created on first use when `create`; null when it
   * does not exist and `create` is false (reads never create a namespace).
   */
  private async tree(ctx: NsContext, create: true): Promise<NamespaceTree>;
  private async tree(ctx: NsContext, create: false): Promise<NamespaceTree | null>;
  private async tree(ctx: NsContext, create: boolean): Promise<NamespaceTree | null> {
    if (create) await this.namespaces.ensure(ctx.workspaceId, ctx.namespace);
    return this.namespaces.openTree(ctx.workspaceId, ctx.namespace);
  }

  /** `POST /write`: UTF-8 text. */
  async writeText(ctx: NsContext, clientPath: unknown, content: string, cond: WriteConditions = {}) {
    const data = Buffer.from(content, 'utf8');
    return this.writeStream(ctx, clientPath, [data], data.length, 'write', cond);
  }

  /** `PUT /files/{path}`: raw bytes, streamed to disk. */
  async upload(
    ctx: NsContext,
    clientPath: unknown,
    body: Readable | Iterable<Buffer>,
    contentLength: number | null,
    cond: WriteConditions = {},
  ) {
    return this.writeStream(ctx, clientPath, body, contentLength, 'upload', cond);
  }

  /**
   * Runs `fn` alone among this node's writes of one path: a conditional write's check and its rename
   * happen with no other API write of that path in between (two `If-Match` writes: one wins, one gets 412).
   */
  private async exclusivePath<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.pathLocks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = before.then(() => mine);
    this.pathLocks.set(key, chained);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.pathLocks.get(key) === chained) this.pathLocks.delete(key);
    }
  }

  private async writeStream(
    ctx: NsContext,
    clientPath: unknown,
    body: Readable | Iterable<Buffer> | AsyncIterable<Buffer>,
    declared: number | null,
    source: 'write' | 'upload',
    cond: WriteConditions,
  ) {
    const rel = normalizeClientPath(clientPath);
    if (rel === '') throw new AppError('path_is_root', 'Cannot write to the namespace root; give a file path');
    const { maxUploadBytes } = this.limits;
    if (declared !== null && maxUploadBytes > 0 && declared > maxUploadBytes) throw tooLarge(maxUploadBytes);
    return this.locks.shared(ctx.workspaceId, ctx.namespace, async () => {
      await this.quota.assertCanGrow(ctx, declared ?? 0, true);
      const tree = (await this.tree(ctx, true))!;
      let size = 0;
      let etag = '';
      let existing: Stat | null;
      try {
        const dir = await tree.openParent(rel, true);
        try {
          existing = tree.statIn(dir.fd, dir.name);
          if (existing?.isDirectory()) {
            throw new AppError('path_is_directory', `Path is a directory: ${displayPath(rel)}`);
          }
          // Checked before the body is read (fail fast), and again just before the rename.
          checkConditions(cond, existing, rel);
          const budget = await this.quota.budget(ctx, tree, existing);
          if (declared !== null && budget.bytes !== null && declared > budget.bytes) throw this.quota.exceededError();
          if (budget.files === 0 && !existing) throw this.quota.exceededError();
          const limit = Math.min(
            maxUploadBytes > 0 ? maxUploadBytes : Infinity,
            budget.bytes !== null ? budget.bytes : Infinity,
          );
          // Made with its first bytes (one thread-pool job creates, owns, writes and, for a body of one
          // batch, fsyncs it): a body that fails before its first batch is full leaves no file at all.
          let tmp: TempFile | null = null;
          let closed = false;
          let committed = false;
          try {
            // Socket chunks are 16–64 KiB; gathering them into one writev per WRITE_BATCH
            // costs a thread-pool round trip per batch instead of one per chunk. A full batch is written
            // only once more bytes follow it: the last one always goes with the fsync below (a 1 MiB body
            // is one thread-pool job, not a write and then an fsync of nothing left).
            let pending: Buffer[] = [];
            let pendingBytes = 0;
            for await (const chunk of body as AsyncIterable<Buffer>) {
              const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
              size += buf.length;
              if (size > limit) {
                throw size > maxUploadBytes && maxUploadBytes > 0
                  ? tooLarge(maxUploadBytes)
                  : this.quota.exceededError();
              }
              if (pendingBytes >= WRITE_BATCH || pending.length >= 256) {
                if (tmp) await writeAll(tmp.fd, pending, pendingBytes);
                else tmp = await tree.createTemp(dir, pending, false);
                pending = [];
                pendingBytes = 0;
              }
              pending.push(buf);
              pendingBytes += buf.length;
            }
            if (declared !== null && size !== declared) {
              throw new AppError('bad_request', `Upload ended after ${size} of ${declared} bytes`);
            }
            // The last bytes and the fsync in one thread-pool job (each job waits for the event loop again).
            if (tmp) await writevFsyncAsync(tmp.fd, pending);
            else tmp = await tree.createTemp(dir, pending, true);
            const file = tmp;
            // The inode keeps its number, size and mtime through the rename: this is the new file's ETag.
            etag = etagOf(fstat(file.fd));
            // renameat replaces a file or a symlink at the target instead of following it.
            let target = dir;
            try {
              for (let attempt = 1; ; attempt++) {
                try {
                  const into = target;
                  await this.exclusivePath(`${ctx.workspaceId}/${ctx.namespace}/${rel}`, async () => {
                    checkConditions(cond, tree.statIn(into.fd, into.name), rel);
                    await tree.commit(file, into, { noReplace: isStar(cond.ifNoneMatch) });
                  });
                  break;
                } catch (err) {
                  // The parent was removed meanwhile (a concurrent delete, a command): make it again, beneath the root.
                  if (errCode(err) !== 'ENOENT' || attempt === 3) throw err;
                  if (target !== dir) closeQuietly(target.fd);
                  target = dir;
                  target = await tree.openParent(rel, true);
                }
              }
              committed = true;
              // After the fsync nothing is left to flush: closing is instant, no thread needed.
              closed = true;
              fs.closeSync(file.fd);
              // The data is durable (fsync above); this makes the new name durable (one fsync shared by
              // the writes landing in this directory meanwhile: dir-sync.ts).
              await dirSyncer.sync(target.fd);
            } finally {
              if (target !== dir) closeQuietly(target.fd);
            }
          } finally {
            if (tmp && !closed) io.closeSyncQuietly(tmp.fd);
            if (tmp && !committed) await tree.discard(tmp);
          }
        } finally {
          closeQuietly(dir.fd);
        }
      } finally {
        tree.close();
      }
      this.quota.adjust(ctx, size - (existing?.isFile() ? existing.size : 0), existing ? 0 : 1);
      const path = displayPath(rel);
      await this.events.emit({
        workspaceId: ctx.workspaceId,
        namespace: ctx.namespace,
        type: 'file.written',
        data: { path, size_bytes: size, source },
      });
      void this.namespaces.touch(ctx.workspaceId, ctx.namespace).catch(() => {});
      return { path, size_bytes: size, etag };
    });
  }

  /**
   * `GET /files/{path}`: the file opened for reading beneath the namespace
   * root, with what its response needs. The caller sends at most `length`
   * bytes of `fd` (maxReadBytes caps it) and closes `fd`.
   */
  download(ctx: NsContext, clientPath: unknown): Download {
    const { fd, st } = this.openFile(ctx, clientPath);
    const cap = this.limits.maxReadBytes;
    const truncated = cap > 0 && st.size > cap;
    return {
      fd,
      size: st.size,
      length: truncated ? cap : st.size,
      truncated,
      modifiedMs: st.mtimeMs,
      etag: etagOf(st),
    };
  }

  /** `GET /v1/files/content`. */
  async content(ctx: NsContext, clientPath: unknown) {
    const rel = normalizeClientPath(clientPath);
    const { fd, st } = this.openFile(ctx, rel);
    let bytes: Buffer;
    try {
      bytes = await readHead(fd, Math.min(st.size, CONTENT_CAP));
    } finally {
      fs.closeSync(fd);
    }
    const truncated = st.size > CONTENT_CAP;
    const text = decodeUtf8(bytes, truncated);
    return {
      path: displayPath(rel),
      size_bytes: st.size,
      modified_at: isoMs(st.mtimeMs),
      encoding: text === null ? 'binary' : 'utf-8',
      content: text,
      truncated,
      etag: etagOf(st),
    };
  }

  /**
   * A regular file opened for reading (links inside the tree followed); 404 in a namespace never used.
   * Synchronous, as nginx opens: from the dentry cache openat2 and fstat take a few µs, a thread-pool
   * round trip ~30.
   */
  private openFile(ctx: NsContext, clientPath: unknown) {
    const rel = normalizeClientPath(clientPath);
    const tree = this.namespaces.openTree(ctx.workspaceId, ctx.namespace);
    if (!tree) throw new AppError('path_not_found', `Path not found: ${displayPath(rel)}`);
    try {
      return tree.openFile(rel);
    } finally {
      tree.close();
    }
  }

  /** `POST /delete`: a file, a symlink (never its target) or a directory tree. */
  async delete(ctx: NsContext, clientPath: unknown) {
    const rel = normalizeClientPath(clientPath);
    if (rel === '') throw new AppError('path_is_root', 'The namespace root cannot be deleted');
    const path = displayPath(rel);
    return this.locks.shared(ctx.workspaceId, ctx.namespace, async () => {
      const tree = await this.tree(ctx, false);
      if (!tree) throw new AppError('path_not_found', `Path not found: ${path}`);
      try {
        const dir = await tree.openParent(rel, false).catch((err: unknown) => {
          // A missing or non-directory parent means the path names nothing.
          if (err instanceof AppError && (err.code === 'not_a_directory' || err.code === 'path_not_found')) {
            throw new AppError('path_not_found', `Path not found: ${path}`);
          }
          throw err;
        });
        try {
          if (!(await tree.remove(dir))) throw new AppError('path_not_found', `Path not found: ${path}`);
          await io.fsyncFd(dir.fd).catch(() => {});
        } finally {
          closeQuietly(dir.fd);
        }
      } finally {
        tree.close();
      }
      this.quota.invalidateUsage(ctx);
      await this.events.emit({
        workspaceId: ctx.workspaceId,
        namespace: ctx.namespace,
        type: 'file.deleted',
        // Ours: the files API's deletes say so, as its writes do (source write/upload); commands' say exec.
        data: { path, source: 'api' },
      });
      void this.namespaces.touch(ctx.workspaceId, ctx.namespace).catch(() => {});
      return { deleted: path };
    });
  }

  /**
   * `GET /v1/files`: directories first, then files, alphabetical; recursive is depth-first and flat.
   * At most LIST_CAP entries are read, from a directory of any size (see NamespaceTree.list).
   */
  async list(
    ctx: NsContext,
    clientPath: unknown,
    recursive: boolean,
  ): Promise<{ entries: ListEntry[]; truncated: boolean }> {
    const rel = normalizeClientPath(clientPath ?? '');
    const tree = await this.tree(ctx, false);
    if (!tree) {
      // A namespace never used is an empty tree: its root lists as empty, anything below it is missing.
      if (rel === '') return { entries: [], truncated: false };
      throw new AppError('path_not_found', `Path not found: ${displayPath(rel)}`);
    }
    try {
      const { entries, truncated } = await tree.list(rel, recursive, LIST_CAP, LIST_DEPTH);
      return {
        entries: entries.map((e) => ({
          name: e.name,
          path: displayPath(e.rel),
          is_dir: e.isDir,
          size_bytes: e.isDir ? null : e.size,
          modified_at: isoMs(e.mtimeMs),
        })),
        truncated,
      };
    } finally {
      tree.close();
    }
  }
}

/** A file opened for download (FileService.download). */
export interface Download {
  /** Open for reading; whoever sends the body closes it. */
  fd: number;
  /** The file's size. */
  size: number;
  /** Bytes to send: the size, or maxReadBytes when the file is larger (`truncated`). */
  length: number;
  truncated: boolean;
  modifiedMs: number;
  /** The file's version (see etagOf). */
  etag: string;
}

/** Writes every buffer at the current position; writev may stop short (ENOSPC is reported on the retry). */
async function writeAll(fd: number, bufs: Buffer[], total: number): Promise<void> {
  const written = await new Promise<number>((resolve, reject) =>
    fs.writev(fd, bufs, (err, n) => (err ? reject(err) : resolve(n))),
  );
  if (written < total) await io.writeAll(fd, Buffer.concat(bufs).subarray(written));
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
