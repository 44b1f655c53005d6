/**
 * Where snapshot archives live. One small interface so an S3-compatible store
 * can replace the local directory without touching callers: keys are opaque
 * relative names (`<workspace>/<snapshot>.tar.gz`), bodies are streams.
 */
import fs, { constants, promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';
import { fsyncFd, writeAll } from '../tree/fd-io.js';

export interface BlobStore {
  /** Stores the whole body under `key`, atomically: readers see the old blob, then the complete new one. */
  put(key: string, body: NodeJS.ReadableStream | AsyncIterable<Uint8Array>): Promise<{ sizeBytes: number }>;
  /** A stream of the blob; AppError('snapshot_not_found') when it does not exist. */
  get(key: string): Promise<NodeJS.ReadableStream>;
  /** Like get(), with the blob's size when the store knows it (downloads send it as Content-Length). */
  open(key: string): Promise<{ body: NodeJS.ReadableStream; sizeBytes: number | null }>;
  /** Idempotent. */
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Every stored key with its last-modified time (used to find blobs whose row was never written). */
  list?(): AsyncIterable<{ key: string; modifiedMs: number }>;
}

// Components start with an alphanumeric so no key can name `..`, a hidden
// file or the store's own temp directory.
const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?:\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,7}$/;
const TEMP_DIR = '.tmp';

/**
 * Makes a rename, create or unlink in the store's directory `dir` durable
 * (the directory entry itself is fsynced). Only the fsync goes to the thread
 * pool: opening a directory read-only and closing it never wait on the disk.
 */
async function fsyncDir(dir: string): Promise<void> {
  const fd = fs.openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export class LocalBlobStore implements BlobStore {
  constructor(readonly dir: string) {}

  /**
   * Creates the directory and removes temp files older than `staleMs` that a
   * crashed put() left behind (younger ones may belong to a live writer).
   */
  async init(staleMs = 3600_000): Promise<void> {
    await fsp.mkdir(join(this.dir, TEMP_DIR), { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, TEMP_DIR);
    for (const name of await fsp.readdir(tmp)) {
      const p = join(tmp, name);
      const st = await fsp.lstat(p).catch(() => null);
      if (st && st.mtimeMs < Date.now() - staleMs) await fsp.rm(p, { force: true, recursive: true });
    }
  }

  private pathFor(key: string): string {
    // Security: keys come from our own ids, but a key is never allowed to leave the store's directory.
    if (typeof key !== 'string' || !KEY_RE.test(key)) throw new TypeError(`Invalid blob key: ${JSON.stringify(key)}`);
    return join(this.dir, ...key.split('/'));
  }

  async put(key: string, body: NodeJS.ReadableStream | AsyncIterable<Uint8Array>): Promise<{ sizeBytes: number }> {
    const target = this.pathFor(key);
    const tmpDir = join(this.dir, TEMP_DIR);
    await fsp.mkdir(tmpDir, { recursive: true, mode: 0o700 });
    await fsp.mkdir(dirname(target), { recursive: true, mode: 0o700 });
    const tmp = join(tmpDir, randomBytes(12).toString('hex'));
    const fh = await fsp.open(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    let size = 0;
    let closed = false;
    try {
      for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
        const buf =
          typeof chunk === 'string'
            ? Buffer.from(chunk)
            : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        await writeAll(fh.fd, buf);
        size += buf.length;
      }
      // Durable before visible: a crash after rename must not leave a short blob.
      await fh.sync();
      await fh.close();
      closed = true;
      await fsp.rename(tmp, target);
      await fsyncDir(dirname(target));
      return { sizeBytes: size };
    } catch (err) {
      if (!closed) await fh.close().catch(() => {});
      await fsp.unlink(tmp).catch(() => {});
      throw err;
    }
  }

  async get(key: string): Promise<NodeJS.ReadableStream> {
    return (await this.open(key)).body;
  }

  async open(key: string): Promise<{ body: NodeJS.ReadableStream; sizeBytes: number | null }> {
    const path = this.pathFor(key);
    // Opening first turns a missing blob into a clean 404 instead of a stream error later.
    const fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ELOOP')
        throw new AppError('snapshot_not_found', `Snapshot data not found: ${key}`);
      throw err;
    });
    let sizeBytes: number;
    try {
      // The size of what was opened: blobs are replaced by rename, never rewritten in place.
      sizeBytes = (await fh.stat()).size;
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
    return { body: fh.createReadStream({ highWaterMark: 1024 * 1024 }), sizeBytes };
  }

  async delete(key: string): Promise<void> {
    const path = this.pathFor(key);
    try {
      await fsp.unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return;
    }
    await fsyncDir(dirname(path)).catch(() => {});
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await fsp.lstat(this.pathFor(key))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async *list(): AsyncIterable<{ key: string; modifiedMs: number }> {
    const walk = async function* (dir: string, prefix: string): AsyncGenerator<{ key: string; modifiedMs: number }> {
      let entries;
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const d of entries) {
        const key = prefix ? `${prefix}/${d.name}` : d.name;
        if (d.isDirectory()) {
          if (d.name !== TEMP_DIR) yield* walk(join(dir, d.name), key);
        } else if (d.isFile() && KEY_RE.test(key)) {
          const st = await fsp.lstat(join(dir, d.name)).catch(() => null);
          if (st) yield { key, modifiedMs: st.mtimeMs };
        }
      }
    };
    yield* walk(this.dir, '');
  }
}
