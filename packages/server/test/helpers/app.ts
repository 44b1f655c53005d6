/**
 * The app in-process, for route tests: `buildApp(config, ctx)` over a temp data dir, one workspace with its
 * admin and runtime keys, and requests through Fastify's `inject()` (no socket). With TROVE_TEST_PG=1 the
 * app gets a fresh PostgreSQL database (dropped by close()), as spawned test servers do.
 *
 * Streaming answers (SSE) never end under inject(): `listen()` gives the same app a loopback port for those.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createContext, type AppContext } from '../../src/context.js';
import { registerSubsystems } from '../../src/subsystems.js';
import { createTestDatabase, usePg, type TestDatabase } from '../../../../test/helpers/server.js';
import { rmTree } from '../../../../test/helpers/root.js';

export interface TestAppOptions {
  /** Environment the config is loaded from, on top of the temp data dir (TROVE_DATA_DIR) and a quiet log. */
  env?: Record<string, string>;
  /** Probe the exec sandbox before the first request (as the server does at start); off by default. */
  exec?: boolean;
}

export interface RequestOptions {
  /** Sent as `Authorization: Bearer <key>`; none when absent or null. */
  key?: string | null;
  /** Sent as `X-Namespace`. */
  namespace?: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON (with its content type); a string or Buffer as is. */
  body?: unknown;
  query?: Record<string, string>;
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface TestApp {
  app: FastifyInstance;
  ctx: AppContext;
  config: Config;
  dataDir: string;
  /** The workspace created at start, and its two keys. */
  workspaceId: string;
  adminKey: string;
  runtimeKey: string;
  /** One request through inject(). */
  request(method: Method, url: string, opts?: RequestOptions): Promise<LightMyRequestResponse>;
  /** Requests with one key (and namespace) preset. */
  as(key: string | null, namespace?: string): Client;
  /**
   * A fetch-style function over inject() with the key (and namespace) preset: for tests written against
   * `fetch` (`Response` in, `Response` out), without a socket.
   */
  fetcher(key: string | null, namespace?: string): (path: string, init?: RequestInit) => Promise<Response>;
  /** A new key of the workspace (admin API); `namespace` locks it. */
  createKey(opts?: {
    name?: string;
    namespace?: string | null;
    admin?: boolean;
  }): Promise<{ key_id: string; api_key: string }>;
  /** Listens on a loopback port (once) and returns its base URL, for answers inject() cannot end (SSE). */
  listen(): Promise<string>;
  /** Closes the app and the context, removes the data dir and drops the database. */
  close(): Promise<void>;
}

export interface Client {
  get(url: string, opts?: Omit<RequestOptions, 'key'>): Promise<LightMyRequestResponse>;
  head(url: string, opts?: Omit<RequestOptions, 'key'>): Promise<LightMyRequestResponse>;
  post(url: string, body?: unknown, opts?: Omit<RequestOptions, 'key' | 'body'>): Promise<LightMyRequestResponse>;
  put(url: string, body?: unknown, opts?: Omit<RequestOptions, 'key' | 'body'>): Promise<LightMyRequestResponse>;
  patch(url: string, body?: unknown, opts?: Omit<RequestOptions, 'key' | 'body'>): Promise<LightMyRequestResponse>;
  delete(url: string, opts?: Omit<RequestOptions, 'key'>): Promise<LightMyRequestResponse>;
}

export async function startTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = await mkdtemp(join(tmpdir(), 'trove-route-'));
  let db: TestDatabase | null = null;
  let ctx: AppContext | null = null;
  let app: FastifyInstance | null = null;
  try {
    const env: Record<string, string> = { TROVE_DATA_DIR: dataDir, TROVE_LOG_LEVEL: 'warn', ...opts.env };
    if (usePg && env.TROVE_DATABASE_URL === undefined) {
      db = await createTestDatabase();
      env.TROVE_DATABASE_URL = db.url;
    }
    const config = loadConfig(env);
    ctx = await createContext(config, pino({ level: config.logLevel }));
    await registerSubsystems(ctx);
    if (opts.exec) await ctx.sandbox.init();
    app = await buildApp(config, ctx);
    const ws = await ctx.workspaces.create('test');
    return makeTestApp({
      app,
      ctx,
      config,
      dataDir,
      db,
      workspaceId: ws.workspace_id,
      adminKey: ws.admin_api_key,
      runtimeKey: ws.api_key,
    });
  } catch (err) {
    await app?.close().catch(() => {});
    await ctx?.close().catch(() => {});
    await db?.drop().catch(() => {});
    await rmTree(dataDir);
    throw err;
  }
}

function makeTestApp(s: {
  app: FastifyInstance;
  ctx: AppContext;
  config: Config;
  dataDir: string;
  db: TestDatabase | null;
  workspaceId: string;
  adminKey: string;
  runtimeKey: string;
}): TestApp {
  const { app, ctx } = s;
  let listening: Promise<string> | null = null;
  let closed: Promise<void> | null = null;

  const request = (method: Method, url: string, o: RequestOptions = {}): Promise<LightMyRequestResponse> => {
    const headers: Record<string, string> = {};
    if (o.key) headers.authorization = `Bearer ${o.key}`;
    if (o.namespace !== undefined) headers['x-namespace'] = o.namespace;
    let payload: InjectOptions['payload'];
    if (typeof o.body === 'string' || Buffer.isBuffer(o.body)) {
      payload = o.body;
    } else if (o.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(o.body);
    }
    Object.assign(headers, o.headers);
    return app.inject({ method, url, headers, payload, ...(o.query ? { query: o.query } : {}) });
  };

  const as = (key: string | null, namespace?: string): Client => {
    const base = (o: Omit<RequestOptions, 'key'> = {}): RequestOptions => ({ namespace, ...o, key });
    return {
      get: (url, o) => request('GET', url, base(o)),
      head: (url, o) => request('HEAD', url, base(o)),
      post: (url, body, o) => request('POST', url, { ...base(o), body }),
      put: (url, body, o) => request('PUT', url, { ...base(o), body }),
      patch: (url, body, o) => request('PATCH', url, { ...base(o), body }),
      delete: (url, o) => request('DELETE', url, base(o)),
    };
  };

  const fetcher =
    (key: string | null, namespace?: string) =>
    async (path: string, init: RequestInit = {}): Promise<Response> => {
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((value, name) => {
        headers[name] = value;
      });
      if (key) headers.authorization = `Bearer ${key}`;
      if (namespace !== undefined) headers['x-namespace'] = namespace;
      const body = init.body;
      let payload: InjectOptions['payload'];
      if (typeof body === 'string' || Buffer.isBuffer(body)) payload = body;
      else if (body instanceof Uint8Array) payload = Buffer.from(body);
      else if (body !== undefined && body !== null) throw new Error('fetcher: the body must be a string or bytes');
      const method = (init.method ?? 'GET') as Method;
      const res = await app.inject({ method, url: path, headers, payload });
      const out = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) out.append(name, String(v));
      }
      const empty = res.statusCode === 204 || res.statusCode === 304 || method === 'HEAD';
      return new Response(empty ? null : new Uint8Array(res.rawPayload), { status: res.statusCode, headers: out });
    };

  return {
    app,
    ctx,
    config: s.config,
    dataDir: s.dataDir,
    workspaceId: s.workspaceId,
    adminKey: s.adminKey,
    runtimeKey: s.runtimeKey,
    request,
    as,
    fetcher,
    async createKey(o = {}) {
      const res = await request('POST', `/v1/workspaces/${s.workspaceId}/keys`, {
        key: s.adminKey,
        body: { name: o.name ?? 'test', namespace: o.namespace ?? null, admin: o.admin ?? false },
      });
      if (res.statusCode !== 201) throw new Error(`key creation answered ${res.statusCode}: ${res.body}`);
      return res.json<{ key_id: string; api_key: string }>();
    },
    listen: () =>
      (listening ??= app.listen({ host: '127.0.0.1', port: 0 }).then(() => {
        const addr = app.server.address();
        if (!addr || typeof addr === 'string') throw new Error('no port');
        return `http://127.0.0.1:${addr.port}`;
      })),
    close: () =>
      (closed ??= (async () => {
        try {
          await app.close();
          await ctx.close();
        } finally {
          await s.db?.drop();
          await rmTree(s.dataDir);
        }
      })()),
  };
}
