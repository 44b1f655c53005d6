/**
 * Writes small restored files on a worker thread, so the main thread only
 * parses and validates while the worker does the syscalls (open, write,
 * futimes, close per file): restore then uses two cores, like `gzip -d | tar x`,
 * and the server's event loop never waits on the disk.
 *
 * Files travel in batches packed into a fixed pool of ArrayBuffers that are
 * transferred to the worker and back (no copies across threads, no garbage):
 * per file a 24-byte header (path length, data length, mode, flags, mtime),
 * the absolute path, then the content. Paths were validated by the caller;
 * the worker creates with O_EXCL|O_NOFOLLOW, so it never follows or
 * overwrites anything.
 */
import { Worker } from 'node:worker_threads';

const BATCH_BYTES = 1024 * 1024;
const BUFFERS = 4;
const HEADER = 24;
const FLAG_CHMOD = 1;

// Plain CommonJS run with `eval: true`: no separate file to locate at run time.
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

export class FileWriter {
  private readonly worker: Worker;
  private readonly free: ArrayBuffer[] = [];
  private readonly inFlight = new Map<number, Buffer[]>();
  private cur: { ab: ArrayBuffer; buf: Buffer; used: number; rels: Buffer[] } | null = null;
  private nextId = 1;
  private failure: unknown = null;
  private wake: (() => void) | null = null;

  /** `mapFailure` turns a worker-side error into the error extraction reports. */
  constructor(
    chown: { uid: number; gid: number } | undefined,
    private readonly mapFailure: (f: WriterFailure) => unknown,
  ) {
    for (let i = 0; i < BUFFERS; i++) this.free.push(new ArrayBuffer(BATCH_BYTES));
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { chown: chown ?? null },
      // It only moves bytes; a small heap keeps its footprint small.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    this.worker.on('message', (m: { id: number; ab: ArrayBuffer; failure: { index: number; code: string | null; message: string } | null }) => {
      const rels = this.inFlight.get(m.id) ?? [];
      this.inFlight.delete(m.id);
      this.free.push(m.ab);
      if (m.failure && !this.failure) {
        this.failure = this.mapFailure({ rel: rels[m.failure.index] ?? Buffer.alloc(0), code: m.failure.code, message: m.failure.message });
      }
      this.notify();
    });
    this.worker.on('error', (err) => {
      this.failure ??= err;
      this.notify();
    });
    this.worker.on('exit', (code) => {
      this.failure ??= new Error(`file writer thread exited (${code})`);
      this.notify();
    });
  }

  /** Largest file add() accepts (a batch must hold at least one). */
  static maxFileBytes(pathBytes: number): number {
    return BATCH_BYTES - HEADER - pathBytes;
  }

  /**
   * Queues a file. Resolves at once while there is room; waits when every
   * buffer is with the worker. A failure of an earlier file is thrown here
   * or from flush().
   */
  async add(abs: Buffer, rel: Buffer, data: Buffer, mode: number, chmod: boolean, mtime: number): Promise<void> {
    this.check();
    const need = HEADER + abs.length + data.length;
    if (this.cur && this.cur.used + need > BATCH_BYTES) this.send();
    while (!this.cur) {
      const ab = this.free.pop();
      if (ab) this.cur = { ab, buf: Buffer.from(ab), used: 0, rels: [] };
      else await this.waitForWorker();
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
  }

  /** Everything queued is on disk (or the first failure is thrown). */
  async flush(): Promise<void> {
    this.send();
    while (this.inFlight.size > 0) await this.waitForWorker();
    this.check();
  }

  async close(): Promise<void> {
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

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }
}
