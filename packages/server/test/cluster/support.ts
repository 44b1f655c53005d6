/**
 * Shared pieces of the cluster tests: whether PostgreSQL is there, a TCP
 * proxy in front of it that a test can cut (to take the database away from
 * one node without stopping the shared server), and polling helpers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll } from 'vitest';
import {
  createTestDatabase,
  pgAdminUrl,
  type StartedServer,
  type TestDatabase,
} from '../../../../test/helpers/server.js';

/**
 * Cluster tests need PostgreSQL. Without it they are skipped with a reason,
 * unless TROVE_TEST_PG=1 says it must be there (CI), where they fail instead.
 */
export async function pgAvailable(): Promise<{ ok: boolean; reason: string }> {
  const client = new pg.Client({ connectionString: pgAdminUrl, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return { ok: true, reason: '' };
  } catch (err) {
    const reason = `PostgreSQL is not reachable at ${pgAdminUrl} (${(err as Error).message}); start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`;
    if (process.env.TROVE_TEST_PG === '1') throw new Error(reason);
    return { ok: false, reason };
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The state a cluster test's nodes share: a fresh database and data dir made
 * by `create()`, and `nodes` to push started servers on. Everything is closed,
 * dropped and removed after the file's tests.
 */
export function useSharedState(prefix: string) {
  const nodes: StartedServer[] = [];
  let db: TestDatabase | undefined;
  let dataDir: string | undefined;
  afterAll(async () => {
    for (const n of nodes) await n.close().catch(() => {});
    await db?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    nodes,
    async create(): Promise<{ db: TestDatabase; dataDir: string }> {
      db = await createTestDatabase();
      dataDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
      return { db, dataDir };
    },
  };
}

/** A plain TCP forwarder; `cut()` drops every connection and refuses new ones until `restore()`. */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(port = 0): Promise<number> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    return this.port;
  }

  /** The database "goes away": open connections are reset and the port refuses new ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The database is back on the same address. */
  async restore(): Promise<void> {
    await this.start(this.port);
  }

  async close(): Promise<void> {
    await this.cut();
  }
}

/** The URL `databaseUrl` with its host and port replaced by the proxy's. */
export function viaProxy(databaseUrl: string, proxy: TcpProxy): string {
  const u = new URL(databaseUrl);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | null | undefined | false>,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export interface Delivery {
  path: string;
  eventId: string;
  type: string;
  at: number;
}

/** A webhook receiver that records every request and answers 200 after `delayMs`. */
export class Receiver {
  readonly hits: Delivery[] = [];
  delayMs = 0;
  private server: import('node:http').Server | null = null;
  port = 0;

  async start(): Promise<void> {
    const http = await import('node:http');
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: { id?: string; type?: string } = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: string; type?: string };
        } catch {
          // recorded with an empty id: the test sees it as a bad delivery
        }
        this.hits.push({ path: req.url ?? '', eventId: body.id ?? '', type: body.type ?? '', at: Date.now() });
        setTimeout(() => {
          res.statusCode = 200;
          res.end('ok');
        }, this.delayMs);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Distinct (path, event id) pairs received. */
  distinct(): Set<string> {
    return new Set(this.hits.map((h) => `${h.path} ${h.eventId}`));
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}
