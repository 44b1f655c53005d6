/**
 * WAL checkpoints for the embedded SQLite database, on a worker thread.
 *
 * better-sqlite3 runs on the event loop. With SQLite's default automatic
 * checkpoint, every ~1000th page written makes one commit copy the WAL into
 * the database and fsync it, inside that commit: measured 10–130 ms during
 * which the whole server (every request, every long-poll wake-up) stands still,
 * about once per 140 events. So the server's connection has
 * `wal_autocheckpoint = 0` and this worker, with its own connection to the
 * same file, runs a PASSIVE checkpoint (never blocks writers or readers) every
 * `intervalMs`, fsyncs included. If the worker cannot run, the connection goes
 * back to automatic checkpoints: slower, never unbounded.
 *
 * A WAL starts over from its beginning only when a write transaction begins
 * with every frame already copied back. Under a steady stream of writes that
 * moment may never come, so once the log is long and fully copied the server's
 * connection runs a RESTART checkpoint itself (openStore): little left to copy,
 * so a short pause once per many thousand pages instead of a long one every
 * thousand.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerLogger {
  warn(obj: object | string, msg?: string): void;
}

/** The worker's whole program (CommonJS, as eval'd workers are). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const SQLite = require(workerData.sqliteModule);
const db = new SQLite(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
let failures = 0;
const tick = () => {
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    failures = 0;
    parentPort.postMessage({ t: 'checkpoint', log: r.log, checkpointed: r.checkpointed });
  } catch (err) {
    // SQLITE_BUSY (another checkpoint) is normal; keep trying, report only a lasting failure.
    if (++failures === 10) parentPort.postMessage({ t: 'error', message: String(err && err.message) });
  }
};
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'checkpoint') tick();
  if (m === 'close') {
    clearInterval(timer);
    db.close();
    parentPort.close();
  }
});
parentPort.postMessage({ t: 'ready' });
`;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly ready: Promise<void>;
  private closed = false;
  private failed = false;
  private exited = false;
  /** WAL frames and checkpointed frames after the last checkpoint (tests, diagnostics). */
  last: { log: number; checkpointed: number } | null = null;
  private readonly waiters: Array<() => void> = [];

  /**
   * Starts the worker. `onFailure` runs once when it cannot work (then the caller re-enables
   * automatic checkpoints on its own connection).
   */
  constructor(
    file: string,
    intervalMs: number,
    private readonly log: CheckpointerLogger,
    private readonly onFailure: () => void,
    /** Called after each checkpoint with the WAL's frame counts (see openStore: restarting a long log). */
    private readonly onCheckpoint: (r: { log: number; checkpointed: number }) => void = () => {},
  ) {
    const sqliteModule = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, { eval: true, workerData: { file, intervalMs, sqliteModule } });
    // Never keeps the process alive on its own.
    this.worker.unref();
    const fail = (why: string) => {
      if (this.failed || this.closed) return;
      this.failed = true;
      for (const w of this.waiters.splice(0)) w();
      this.log.warn(
        { why },
        'SQLite checkpoint worker failed; the server checkpoints on its own connection (slower commits now and then)',
      );
      this.onFailure();
    };
    this.ready = new Promise<void>((resolve) => {
      this.worker.on('message', (m: { t: string; log?: number; checkpointed?: number; message?: string }) => {
        if (m.t === 'ready') resolve();
        else if (m.t === 'checkpoint') {
          this.last = { log: m.log!, checkpointed: m.checkpointed! };
          for (const w of this.waiters.splice(0)) w();
          this.onCheckpoint(this.last);
        } else if (m.t === 'error') fail(m.message ?? 'checkpoint failed');
      });
      this.worker.on('error', (err) => {
        fail(err.message);
        resolve();
      });
      this.worker.on('exit', (code) => {
        this.exited = true;
        if (!this.closed) fail(`exited with code ${code}`);
        resolve();
      });
    });
  }

  /** Runs a checkpoint now and resolves after it (tests). */
  async checkpointNow(): Promise<{ log: number; checkpointed: number } | null> {
    await this.ready;
    if (this.closed || this.failed) return null;
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.worker.postMessage('checkpoint');
    await done;
    return this.last;
  }

  /** Stops the worker and closes its connection (before the server's own connection closes). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ready;
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('close');
    const timer = setTimeout(() => void this.worker.terminate(), 5_000);
    await exited;
    clearTimeout(timer);
    for (const w of this.waiters.splice(0)) w();
  }
}
