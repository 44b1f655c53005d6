/**
 * One long-lived PostgreSQL connection outside the query pool, for state that
 * lives in a session: LISTEN registrations and advisory locks. It reconnects
 * by itself; `generation` changes on every new connection, so holders of
 * session state can tell that the server forgot it (a dead session drops its
 * LISTENs and releases its advisory locks).
 */
import pg from 'pg';
import type { Logger } from '../context.js';

export interface PgSessionOptions {
  /** Connection settings; normally the query pool's own options. */
  config: pg.ClientConfig;
  logger: Logger;
  /** Shown in logs and `application_name`. */
  name: string;
  /** Keep a connection open at all times (LISTEN) instead of connecting on first use. */
  eager: boolean;
  /** Runs on every new connection before it is used (e.g. LISTEN). */
  onConnect?: (client: pg.Client) => Promise<void>;
  /** Called once per lost connection. */
  onLost?: (err: Error) => void;
  /** How often an idle connection is probed; a probe that hangs means a silent network cut. */
  probeIntervalMs?: number;
}

const PROBE_TIMEOUT_MS = 5_000;
const MAX_BACKOFF_MS = 2_000;

export class PgSession {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private closed = false;
  private backoffMs = 50;
  private retryTimer: NodeJS.Timeout | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private lastError: Error | null = null;
  /** Increments on every successful connect. */
  generation = 0;

  constructor(private readonly opts: PgSessionOptions) {}

  /** For eager sessions: connect now and keep reconnecting in the background. */
  start(): void {
    if (this.opts.eager) this.connectInBackground();
    const every = this.opts.probeIntervalMs ?? 10_000;
    this.probeTimer = setInterval(() => void this.probe(), every);
    this.probeTimer.unref();
  }

  get connected(): boolean {
    return this.client !== null;
  }

  /** Why the session is down, for health output. */
  get error(): Error | null {
    return this.client ? null : this.lastError;
  }

  /** Runs a query on the session, connecting first when needed (throws the connection error). */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const client = this.client ?? (await this.connect());
    return client.query<R>(text, values);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }

  private connect(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error(`${this.opts.name}: session closed`));
    this.connecting ??= this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async open(): Promise<pg.Client> {
    const connectTimeout = this.opts.config.connectionTimeoutMillis ?? 5_000;
    const client = new pg.Client({
      ...this.opts.config,
      application_name: `trove:${this.opts.name}`,
      keepAlive: true,
      connectionTimeoutMillis: connectTimeout,
    });
    // Must be attached before connect(): an 'error' event without a listener would crash the process.
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('Connection terminated')));
    let timer: NodeJS.Timeout | undefined;
    try {
      // connect() has its own timeout, but a LISTEN on a stalled link does not; bound the whole handshake.
      await Promise.race([
        (async () => {
          await client.connect();
          if (this.opts.onConnect) await this.opts.onConnect(client);
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${this.opts.name}: connecting timed out`)),
            connectTimeout + 5_000,
          );
        }),
      ]);
    } catch (err) {
      this.lastError = err as Error;
      // Not awaited: ending a client whose socket never opened can wait for an 'end' that never comes.
      client.end().catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (this.closed) {
      client.end().catch(() => {});
      throw new Error(`${this.opts.name}: session closed`);
    }
    this.client = client;
    this.generation++;
    this.backoffMs = 50;
    if (this.generation > 1) this.opts.logger.info({ session: this.opts.name }, 'database session re-established');
    return client;
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = null;
    this.lastError = err;
    client.end().catch(() => {});
    if (this.closed) return;
    this.opts.logger.warn({ session: this.opts.name, err: err.message }, 'database session lost; reconnecting');
    this.opts.onLost?.(err);
    if (this.opts.eager) this.connectInBackground();
  }

  private connectInBackground(): void {
    if (this.closed || this.retryTimer || this.client) return;
    this.connect().then(
      () => {},
      (err: Error) => {
        this.opts.logger.debug?.({ session: this.opts.name, err: err.message }, 'database session: connect failed');
        const delay = this.backoffMs;
        this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.connectInBackground();
        }, delay);
        this.retryTimer.unref();
      },
    );
  }

  /** A connection cut without a FIN/RST only shows up when we talk; a probe that hangs is torn down. */
  private async probe(): Promise<void> {
    const client = this.client;
    if (!client || this.closed) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), PROBE_TIMEOUT_MS);
    });
    try {
      const r = await Promise.race([client.query('select 1').then(() => 'ok' as const), timeout]);
      if (r === 'timeout') this.lost(client, new Error('Connection probe timed out'));
    } catch (err) {
      this.lost(client, err as Error);
    } finally {
      clearTimeout(timer);
    }
  }
}
