/** Health and the OpenAPI document. */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../../app.js';

export async function metaRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        summary: 'Health: database and volume reachability',
        tags: ['meta'],
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string' },
              database: { type: 'string' },
              volume: { type: 'string' },
              exec: { type: 'string' },
              version: { type: 'string' },
            },
          },
          503: {
            type: 'object',
            properties: { status: { type: 'string' }, detail: { type: 'string' }, code: { type: 'string' }, database: { type: 'string' }, volume: { type: 'string' } },
          },
        },
      },
    },
    async (_req, reply) => {
      const h = await deps.health();
      if (!h.ok) {
        reply.header('retry-after', '5');
        return reply.code(503).send({ status: 'unavailable', detail: h.detail, code: 'unavailable', database: h.database, volume: h.volume });
      }
      return { status: 'ok', database: h.database, volume: h.volume, exec: h.exec, version: deps.version };
    },
  );

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
