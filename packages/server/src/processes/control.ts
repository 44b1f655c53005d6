/**
 * How a node reaches the node that runs a background process (cluster mode):
 * a signal, a stdin write or close, or "stop this namespace's processes"
 * before a restore or a deletion. PostgreSQL LISTEN/NOTIFY on one channel, as
 * the event bus does; a signal or a stdin request gets an answer on the same
 * channel. A NOTIFY payload is at most 8000 bytes and a stdin write up to
 * 1 MiB, so the bytes travel through the shared data volume: the asking node
 * writes them to a file in the process's output directory and the
 * notification names that file; the owning node reads it (bounded), removes
 * it and answers with the outcome. A file nobody took (no answer) is removed
 * by the node that wrote it. A single node (SQLite) has nobody to reach.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import type pg from 'pg';
import type { Logger } from '../context.js';
import type { Db } from '../db/index.js';
import { PgSession } from '../db/pg-session.js';
import { SIGNALS, type SignalName } from '../sandbox/launch.js';

/** Why a stdin request was not carried out: stdin closed, 1 MiB already waiting, process ended, or not run here. */
export type StdinError = 'closed' | 'full' | 'gone' | 'not_found';
export type StdinOutcome = { ok: true; written: number; stdinOpen: boolean } | { ok: false; error: StdinError };

export interface ControlHandlers {
  signal(workspaceId: string, id: string, signal: SignalName): Promise<boolean>;
  /**
   * Writes to (and with `close`, closes) the stdin of a process this node runs. `take(dir)` reads and
   * removes the bytes the asking node left in the process's output directory `dir` (empty when none):
   * the handler calls it only once it knows the process is its own and of `workspaceId`.
   */
  stdin(workspaceId: string, id: string, take: (dir: string) => Promise<Buffer>, close: boolean): Promise<StdinOutcome>;
  stopNamespace(workspaceId: string, namespace: string): Promise<void>;
}

export interface ProcessControl {
  /** What this node does when another one asks. */
  serve(handlers: ControlHandlers): void;
  /** Asks `node` to signal a process it runs: delivered or not, or null when it did not answer. */
  signal(node: string, workspaceId: string, id: string, signal: SignalName): Promise<boolean | null>;
  /**
   * Asks `node` to write `data` to the stdin of a process it runs (and close it with `close`); `dir` is the
   * process's output directory on the shared volume, as this node sees it. Null when it did not answer.
   */
  stdin(
    node: string,
    workspaceId: string,
    id: string,
    dir: string,
    data: Buffer,
    close: boolean,
  ): Promise<StdinOutcome | null>;
  /** Asks `node` to stop a namespace's processes (the caller watches their records end). */
  stopNamespace(node: string, workspaceId: string, namespace: string): void;
  /** Tells this instance which node id it answers for. */
  bind(node: string): void;
  close(): Promise<void>;
}

export class LocalProcessControl implements ProcessControl {
  serve(): void {}
  bind(): void {}
  async signal(): Promise<boolean | null> {
    return null;
  }
  async stdin(): Promise<StdinOutcome | null> {
    return null;
  }
  stopNamespace(): void {}
  async close(): Promise<void> {}
}

export const CONTROL_CHANNEL = 'trove_process_ctl';
const ANSWER_MS = 5_000;
/** A stdin write through the shared volume is at most what a local one may be. */
const MAX_STDIN_BYTES = 1024 * 1024;
/** The only file name a stdin request may name: no separator, no dot, nothing but what stdinFileName makes. */
const STDIN_FILE = /^stdin-[0-9a-f]{32}$/;
const STDIN_ERRORS: readonly StdinError[] = ['closed', 'full', 'gone', 'not_found'];

type Answer = {
  op: 'answer';
  to: string;
  req: string;
  /** signal */
  delivered?: boolean;
  /** stdin: done */
  written?: number;
  stdin_open?: boolean;
  /** stdin: not done */
  error?: StdinError;
};

type Message =
  | { op: 'signal'; to: string; from: string; req: string; ws: string; id: string; signal: SignalName }
  | { op: 'stdin'; to: string; from: string; req: string; ws: string; id: string; file?: string; close: boolean }
  | { op: 'stop'; to: string; from: string; ws: string; ns: string }
  | Answer;

export class PgProcessControl implements ProcessControl {
  private readonly session: PgSession;
  private handlers: ControlHandlers | null = null;
  private node = '';
  private readonly waiting = new Map<string, (answer: Answer | null) => void>();

  constructor(
    private readonly db: Db,
    config: pg.ClientConfig,
    private readonly logger: Logger,
  ) {
    this.session = new PgSession({
      config,
      logger,
      name: 'process-control',
      eager: true,
      onConnect: async (client) => {
        client.on('notification', (m) => {
          if (m.channel === CONTROL_CHANNEL && m.payload) void this.receive(m.payload);
        });
        await client.query(`LISTEN ${CONTROL_CHANNEL}`);
      },
    });
    this.session.start();
  }

  bind(node: string): void {
    this.node = node;
  }

  serve(handlers: ControlHandlers): void {
    this.handlers = handlers;
  }

  async signal(node: string, workspaceId: string, id: string, signal: SignalName): Promise<boolean | null> {
    const a = await this.ask(node, (req) => ({
      op: 'signal',
      to: node,
      from: this.node,
      req,
      ws: workspaceId,
      id,
      signal,
    }));
    return typeof a?.delivered === 'boolean' ? a.delivered : null;
  }

  async stdin(
    node: string,
    workspaceId: string,
    id: string,
    dir: string,
    data: Buffer,
    close: boolean,
  ): Promise<StdinOutcome | null> {
    let file: string | undefined;
    if (data.length > 0) {
      file = 'stdin-' + randomBytes(16).toString('hex');
      await writeStdinFile(dir, file, data);
    }
    const a = await this.ask(node, (req) => ({
      op: 'stdin',
      to: node,
      from: this.node,
      req,
      ws: workspaceId,
      id,
      file,
      close,
    }));
    const outcome = a ? stdinOutcome(a) : null;
    // The owner removes the file once it has read it; one it did not take (no answer, or not its process)
    // would otherwise stay until the output directory goes. An answer that comes after this removal
    // finds no file and writes nothing.
    if (file && !outcome?.ok) {
      await fsp
        .rm(join(dir, file), { force: true })
        .catch((err: unknown) =>
          this.logger.warn({ err, process_id: id }, 'process control: cannot remove a stdin file'),
        );
    }
    return outcome;
  }

  stopNamespace(node: string, workspaceId: string, namespace: string): void {
    void this.send({ op: 'stop', to: node, from: this.node, ws: workspaceId, ns: namespace }).catch((err: unknown) =>
      this.logger.warn({ err, node }, 'process control: cannot reach the other node'),
    );
  }

  /** Sends a request to `node` and waits for its answer: null when none came within ANSWER_MS. */
  private async ask(node: string, build: (req: string) => Message): Promise<Answer | null> {
    const req = randomBytes(8).toString('hex');
    const answer = new Promise<Answer | null>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(req);
        resolve(null);
      }, ANSWER_MS);
      this.waiting.set(req, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
    });
    try {
      await this.send(build(req));
    } catch (err) {
      this.logger.warn({ err, node }, 'process control: cannot reach the other node');
      this.waiting.get(req)?.(null);
      this.waiting.delete(req);
    }
    return answer;
  }

  private async send(m: Message): Promise<void> {
    await sql`select pg_notify(${CONTROL_CHANNEL}, ${JSON.stringify(m)})`.execute(this.db);
  }

  private async receive(payload: string): Promise<void> {
    let m: Message;
    try {
      m = JSON.parse(payload) as Message;
    } catch {
      return;
    }
    if (m.to !== this.node) return;
    if (m.op === 'answer') {
      this.waiting.get(m.req)?.(m);
      this.waiting.delete(m.req);
      return;
    }
    const h = this.handlers;
    if (!h) return;
    try {
      if (m.op === 'signal') {
        // Only a signal the API accepts: the channel is the database's, not a tenant's, but stays narrow anyway.
        const delivered = SIGNALS.includes(m.signal) ? await h.signal(m.ws, m.id, m.signal) : false;
        await this.send({ op: 'answer', to: m.from, req: m.req, delivered });
      } else if (m.op === 'stdin') {
        const file = m.file;
        // Security: the message names a file, never a path: exactly the name stdin() makes, so it cannot
        // leave the process's output directory (no separator, no `..`) nor name its output segments.
        if (file !== undefined && (typeof file !== 'string' || !STDIN_FILE.test(file))) {
          this.logger.warn({ process_id: m.id }, 'process control: refused a stdin request naming an invalid file');
          return;
        }
        const take = (dir: string) =>
          file === undefined ? Promise.resolve(Buffer.alloc(0)) : takeStdinFile(dir, file);
        const r = await h.stdin(m.ws, m.id, take, m.close === true);
        await this.send(
          r.ok
            ? { op: 'answer', to: m.from, req: m.req, written: r.written, stdin_open: r.stdinOpen }
            : { op: 'answer', to: m.from, req: m.req, error: r.error },
        );
      } else if (m.op === 'stop') {
        await h.stopNamespace(m.ws, m.ns);
      }
    } catch (err) {
      this.logger.warn({ err, op: m.op }, 'process control: request from another node failed');
    }
  }

  async close(): Promise<void> {
    for (const w of this.waiting.values()) w(null);
    this.waiting.clear();
    await this.session.close();
  }
}

/** The outcome an answer carries, or null when it carries none (a malformed answer counts as none). */
function stdinOutcome(a: Answer): StdinOutcome | null {
  if (a.error !== undefined) return STDIN_ERRORS.includes(a.error) ? { ok: false, error: a.error } : null;
  if (typeof a.written === 'number' && typeof a.stdin_open === 'boolean')
    return { ok: true, written: a.written, stdinOpen: a.stdin_open };
  return null;
}

/** Writes the bytes of a stdin request to a new file `name` in `dir`, complete before the request names it. */
async function writeStdinFile(dir: string, name: string, data: Buffer): Promise<void> {
  // Security: a new file only (O_EXCL), never through a link.
  const fh = await fsp.open(join(dir, name), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(data);
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(join(dir, name), { force: true }).catch(() => {});
    throw err;
  }
  await fh.close();
}

/** Reads and removes the stdin file `name` (already checked against STDIN_FILE) of `dir`: at most 1 MiB. */
async function takeStdinFile(dir: string, name: string): Promise<Buffer> {
  const path = join(dir, name);
  // Security: no link followed; O_NONBLOCK so that a FIFO put there cannot hang the handler on open.
  const fh = await fsp.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  try {
    const st = await fh.stat();
    // Security: a regular file of at most 1 MiB; the read is bounded too, should it grow meanwhile.
    if (!st.isFile() || st.size > MAX_STDIN_BYTES)
      throw new Error(`stdin file ${name} is not a regular file of at most 1 MiB`);
    const buf = Buffer.alloc(MAX_STDIN_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > MAX_STDIN_BYTES) throw new Error(`stdin file ${name} is larger than 1 MiB`);
    }
    await fsp.unlink(path);
    return Buffer.from(buf.subarray(0, n));
  } finally {
    await fh.close();
  }
}
