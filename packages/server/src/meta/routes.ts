/** Health and the OpenAPI document. */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { AppError } from '../errors.js';
import { errors } from '../http/schemas.js';

const RETRY_AFTER_S = 5;

export async function metaRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  // Public, for load balancers and uptime checks: up or down and nothing else (no version, no exec mode, no
  // disk figures for anyone who can reach the port). It writes nothing; the details are /v1/admin/health.
  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        summary: 'Liveness for load balancers: 200 {"status": "ok"} or 503 (no key; details at /v1/admin/health)',
        tags: ['meta'],
        security: [],
        response: {
          200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } },
          503: {
            type: 'object',
            properties: {
              status: { type: 'string', enum: ['unavailable'] },
              detail: { type: 'string' },
              code: { type: 'string' },
            },
          },
        },
      },
    },
    async (_req, reply) => {
      const h = await deps.health();
      if (!h.ok) {
        reply.header('retry-after', String(RETRY_AFTER_S));
        return reply.code(503).send({
          status: 'unavailable',
          detail: 'The server cannot serve requests right now; retry shortly',
          code: 'unavailable',
        });
      }
      return { status: 'ok' };
    },
  );

  const details = {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    version: { type: 'string' },
    database: { type: 'string', description: '`ok` or the kind of failure (`unreachable: ECONNREFUSED`)' },
    volume: { type: 'string', description: '`ok`, `unwritable: <errno>` or `unreachable: ETIMEDOUT` (the data dir)' },
    exec: { type: 'string', enum: ['bubblewrap', 'insecure', 'unavailable'] },
    exec_reason: { type: ['string', 'null'], description: 'Why exec is unavailable' },
    exec_fix: { type: ['string', 'null'], description: 'How to make it available' },
    cgroups: {
      type: ['object', 'null'],
      description: 'Per-exec cgroups: `v1`, `v2` or `none`, the controllers applied, and what is missing',
      properties: {
        mode: { type: 'string' },
        controllers: { type: 'array', items: { type: 'string' } },
        missing: { type: 'array', items: { type: 'string' } },
      },
    },
    warm_sandboxes: {
      type: 'object',
      description:
        'Warm namespace sandboxes on this node: how many run, how many hold no command, the most kept idle, and how long an idle one is kept (ms)',
      properties: {
        running: { type: 'integer' },
        idle: { type: 'integer' },
        max: { type: 'integer' },
        idle_ms: { type: 'integer' },
      },
    },
    sandbox_pool: {
      type: 'object',
      description:
        "Pre-made sandboxes on this node for namespaces' first commands (root only): the configured size (0: off), how many are ready, how many are being made, how many namespaces claimed one, how many claims failed",
      properties: {
        size: { type: 'integer' },
        ready: { type: 'integer' },
        making: { type: 'integer' },
        claimed: { type: 'integer' },
        failed: { type: 'integer' },
      },
    },
    change_tracking: {
      type: ['object', 'null'],
      description:
        'What commands change in the trees, as events: `fanotify` (every change, attributed to its command), `scan` (one-shot execs compared before/after, bounded; background processes not tracked) or `off`; `limits` says what is not recorded',
      properties: {
        mode: { type: 'string' },
        limits: { type: 'array', items: { type: 'string' } },
        max_per_command: { type: 'integer' },
      },
    },
    disk: {
      type: ['object', 'null'],
      description: 'The data volume (null when it could not be read)',
      properties: { free_bytes: { type: 'integer' }, total_bytes: { type: 'integer' } },
    },
  } as const;

  app.get(
    '/v1/admin/health',
    {
      schema: {
        summary:
          'Health details (ours, admin key): database, data volume, disk space, exec sandbox and cgroups, version',
        tags: ['meta'],
        response: {
          200: { type: 'object', properties: details },
          503: { type: 'object', properties: { ...details, detail: { type: 'string' }, code: { type: 'string' } } },
          ...errors(401, 403),
        },
      },
    },
    async (req, reply) => {
      if (req.auth.scope !== 'admin') throw new AppError('scope_forbidden', 'Health details need an admin key.');
      const h = await deps.health();
      const body = {
        status: h.ok ? 'ok' : 'unavailable',
        version: deps.version,
        database: h.database,
        volume: h.volume,
        exec: h.exec.mode,
        exec_reason: h.exec.reason ?? null,
        exec_fix: h.exec.fix ?? null,
        // Host paths (the cgroup parent directory) stay out: the schema lists what is shown.
        cgroups: 'cgroups' in h.exec ? h.exec.cgroups : null,
        change_tracking: h.exec.changes,
        warm_sandboxes: {
          running: h.exec.warm.running,
          idle: h.exec.warm.idle,
          max: h.exec.warm.max,
          idle_ms: h.exec.warm.idleMs,
        },
        sandbox_pool: h.exec.pool,
        disk: h.disk,
      };
      if (h.ok) return body;
      reply.header('retry-after', String(RETRY_AFTER_S));
      return reply
        .code(503)
        .send({ ...body, detail: `database ${h.database}; volume ${h.volume}`, code: 'unavailable' });
    },
  );

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
