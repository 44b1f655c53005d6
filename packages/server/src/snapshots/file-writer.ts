/**
 * Writes small restored files on a worker thread. The main thread parses and
 * validates while the worker makes the syscalls (open, write, futimes, close
 * per file, plain synchronous calls like tar's), so a restore uses two cores
 * as `gzip -d | tar x` does, and the event loop never waits on the disk.
 * Measured on 10,000 files: 0.95 s vs 1.5 s with 16 concurrent thread-pool
 * callback chains (whose per-syscall hand-offs cost more than the syscalls)
 * and 1.4 s for `tar xzf`.
 *
 * Files travel in batches packed into a fixed pool of ArrayBuffers that are
 * transferred to the worker and back: no copies across threads and no
 * garbage. Per file: a 24-byte header (path length, data length, mode,
 * flags, mtime), the absolute path, then the content. Paths were validated
 * by the caller; the worker creates with O_CREAT|O_EXCL|O_NOFOLLOW, so it
 * never follows a link and never overwrites anything.
 */
import { Worker } from 'node:worker_threads';

const BATCH_BYTES = 1024 * 1024;
const BUFFERS = 4;
const HEADER = 24;
const FLAG_CHMOD = 1;

// Plain CommonJS run with `eval: true`: no separate file to locate, from dist or from the sources.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
const chown = workerData.chown;
parentPort.on('message', ({ id, ab, len }) => {
  const buf = Buffer.from(ab, 0, len);
  let off = 0;
  let index = 0;
  let failure = null;
  try {
    while (off < len) {
      const pathLen = buf.readUInt32LE(off);
      const dataLen = buf.readUInt32LE(off + 4);
      const mode = buf.readUInt32LE(off + 8);
      const flags = buf.readUInt32LE(off + 12);
      const mtime = buf.readDoubleLE(off + 16);
      off += ${HEADER};
      const path = buf.subarray(off, off + pathLen);
      off += pathLen;
      const fd = fs.openSync(path, FLAGS, mode & 0o777);
      try {
        let done = 0;
        while (done < dataLen) done += fs.writeSync(fd, buf, off + done, dataLen - done);
        if (chown) fs.fchownSync(fd, chown.uid, chown.gid);
        if (flags & ${FLAG_CHMOD}) fs.fchmodSync(fd, mode);
        fs.futimesSync(fd, mtime, mtime);
      } finally {
        fs.closeSync(fd);
      }
      off += dataLen;
      index++;
    }
  } catch (err) {
    failure = { index, code: err && err.code ? String(err.code) : null, message: String(err && err.message) };
  }
  parentPort.postMessage({ id, ab, failure }, [ab]);
});
`;

export interface WriterFailure {
  /** Archive path of the file that failed. */
  rel: Buffer;
  code: string | null;
  message: string;
}

interface Reply {
  id: number;
  ab: ArrayBuffer;
  failure: { index: number; code: string | null; message: string } | null;
}

export class FileWriter {
  /** Largest content one file may have (a batch must hold at least one file with a 4 KiB path). */
  static readonly MAX_FILE_BYTES = BATCH_BYTES - HEADER - 4096;

  private readonly worker: Worker;
  private readonly free: ArrayBuffer[] = [];
  private readonly inFlight = new Map<number, Buffer[]>();
  private cur: { ab: ArrayBuffer; buf: Buffer; used: number; rels: Buffer[] } | null = null;
  private nextId = 1;
  private failure: { err: unknown } | null = null;
  private wake: (() => void) | null = null;

  /** `mapFailure` turns a worker-side error into the error the extraction reports. */
  constructor(
    chown: { uid: number; gid: number } | undefined,
    private readonly mapFailure: (f: WriterFailure) => unknown,
  ) {
    for (let i = 0; i < BUFFERS; i++) this.free.push(new ArrayBuffer(BATCH_BYTES));
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { chown: chown ?? null },
      // It only moves bytes: a small heap keeps its footprint small.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    this.worker.on('message', (m: Reply) => {
      const rels = this.inFlight.get(m.id) ?? [];
      this.inFlight.delete(m.id);
      this.free.push(m.ab);
      if (m.failure && !this.failure) {
        const rel = rels[m.failure.index] ?? Buffer.alloc(0);
        this.failure = { err: this.mapFailure({ rel, code: m.failure.code, message: m.failure.message }) };
      }
      this.notify();
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`the file writer thread exited (${code})`)));
  }

  /**
   * Queues a file (data ≤ MAX_FILE_BYTES). Returns a promise only when every
   * buffer is with the worker and it must wait; a failure of an earlier file
   * is thrown here or from drain().
   */
  write(abs: Buffer, rel: Buffer, data: Buffer, mode: number, chmod: boolean, mtime: number): Promise<void> | undefined {
    this.check();
    if (this.cur && this.cur.used + HEADER + abs.length + data.length > BATCH_BYTES) this.send();
    if (!this.cur) {
      const ab = this.free.pop();
      if (!ab) return this.waitForWorker().then(() => this.write(abs, rel, data, mode, chmod, mtime));
      this.cur = { ab, buf: Buffer.from(ab), used: 0, rels: [] };
    }
    const c = this.cur;
    const b = c.buf;
    let off = c.used;
    b.writeUInt32LE(abs.length, off);
    b.writeUInt32LE(data.length, off + 4);
    b.writeUInt32LE(mode, off + 8);
    b.writeUInt32LE(chmod ? FLAG_CHMOD : 0, off + 12);
    b.writeDoubleLE(mtime, off + 16);
    off += HEADER;
    abs.copy(b, off);
    off += abs.length;
    data.copy(b, off);
    c.used = off + data.length;
    c.rels.push(rel);
    return undefined;
  }

  /** Everything queued is on disk; throws the first failure. */
  async drain(): Promise<void> {
    this.send();
    while (this.inFlight.size > 0) await this.waitForWorker();
    this.check();
  }

  /** Stops the thread, after what it was doing (so nothing writes into a tree being removed). */
  async close(): Promise<void> {
    while (this.inFlight.size > 0 && !this.failure) await new Promise<void>((r) => (this.wake = r));
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private send(): void {
    const c = this.cur;
    if (!c) return;
    this.cur = null;
    if (c.used === 0) {
      this.free.push(c.ab);
      return;
    }
    const id = this.nextId++;
    this.inFlight.set(id, c.rels);
    this.worker.postMessage({ id, ab: c.ab, len: c.used }, [c.ab]);
  }

  private waitForWorker(): Promise<void> {
    this.check();
    return new Promise((resolve) => (this.wake = resolve));
  }

  private fail(err: unknown): void {
    this.failure ??= { err };
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private check(): void {
    if (this.failure) throw this.failure.err;
  }
}
