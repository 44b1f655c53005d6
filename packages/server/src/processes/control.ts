/**
 * How a node reaches the node that runs a background process (cluster mode):
 * a signal, or "stop this namespace's processes" before a restore or a
 * deletion. PostgreSQL LISTEN/NOTIFY on one channel, as the event bus does;
 * a signal gets an answer on the same channel. stdin is not routed (a NOTIFY
 * payload is at most 8000 bytes): another node answers 409 for it.
 * A single node (SQLite) has nobody to reach.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type pg from 'pg';
import type { Logger } from '../context.js';
import type { Db } from '../db/index.js';
import { PgSession } from '../db/pg-session.js';
import { SIGNALS, type SignalName } from '../sandbox/launch.js';

export interface ControlHandlers {
  signal(workspaceId: string, id: string, signal: SignalName): Promise<boolean>;
  stopNamespace(workspaceId: string, namespace: string): Promise<void>;
}

export interface ProcessControl {
  /** What this node does when another one asks. */
  serve(handlers: ControlHandlers): void;
  /** Asks `node` to signal a process it runs: delivered or not, or null when it did not answer. */
  signal(node: string, workspaceId: string, id: string, signal: SignalName): Promise<boolean | null>;
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
  stopNamespace(): void {}
  async close(): Promise<void> {}
}

export const CONTROL_CHANNEL = 'trove_process_ctl';
const ANSWER_MS = 5_000;

type Message =
  | { op: 'signal'; to: string; from: string; req: string; ws: string; id: string; signal: SignalName }
  | { op: 'stop'; to: string; from: string; ws: string; ns: string }
  | { op: 'answer'; to: string; req: string; delivered: boolean };

export class PgProcessControl implements ProcessControl {
  private readonly session: PgSession;
  private handlers: ControlHandlers | null = null;
  private node = '';
  private readonly waiting = new Map<string, (delivered: boolean | null) => void>();

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
    const req = randomBytes(8).toString('hex');
    const answer = new Promise<boolean | null>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(req);
        resolve(null);
      }, ANSWER_MS);
      this.waiting.set(req, (d) => {
        clearTimeout(timer);
        resolve(d);
      });
    });
    try {
      await this.send({ op: 'signal', to: node, from: this.node, req, ws: workspaceId, id, signal });
    } catch (err) {
      this.logger.warn({ err, node }, 'process control: cannot reach the other node');
      this.waiting.get(req)?.(null);
    }
    return answer;
  }

  stopNamespace(node: string, workspaceId: string, namespace: string): void {
    void this.send({ op: 'stop', to: node, from: this.node, ws: workspaceId, ns: namespace }).catch((err: unknown) =>
      this.logger.warn({ err, node }, 'process control: cannot reach the other node'),
    );
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
      this.waiting.get(m.req)?.(m.delivered);
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
