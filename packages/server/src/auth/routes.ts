/** Admin-scope key management under /v1/workspaces/{ws}/keys. */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { requireAdmin } from './service.js';
import { errors, isoTime, workspaceParams } from '../http/schemas.js';

const keyView = {
  type: 'object',
  properties: {
    key_id: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string' },
    scope: { type: 'string', enum: ['admin', 'workspace'] },
    namespace: { type: ['string', 'null'] },
    created_at: isoTime,
  },
} as const;

export async function keyRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post<{ Params: { ws: string }; Body: { name: string; namespace?: string | null; admin?: boolean } }>(
    '/v1/workspaces/:ws/keys',
    {
      schema: {
        summary: 'Create an API key (the secret is shown once)',
        tags: ['keys'],
        params: workspaceParams,
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 128 },
            namespace: { type: ['string', 'null'] },
            admin: { type: 'boolean', default: false },
          },
          required: ['name'],
        },
        response: {
          201: { ...keyView, properties: { ...keyView.properties, api_key: { type: 'string' } } },
          ...errors(400, 401, 403, 404, 422),
        },
      },
    },
    async (req, reply) => {
      requireAdmin(req.auth, req.params.ws, 'keys');
      const created = await deps.auth.createKey(req.params.ws, {
        name: req.body.name,
        scope: req.body.admin ? 'admin' : 'workspace',
        namespace: req.body.namespace ?? null,
      });
      return reply.code(201).send(created);
    },
  );

  app.get<{ Params: { ws: string } }>(
    '/v1/workspaces/:ws/keys',
    {
      schema: {
        summary: 'List active keys',
        tags: ['keys'],
        params: workspaceParams,
        response: {
          200: { type: 'object', properties: { keys: { type: 'array', items: keyView } } },
          ...errors(401, 403, 404),
        },
      },
    },
    async (req) => {
      requireAdmin(req.auth, req.params.ws, 'keys');
      return { keys: await deps.auth.listKeys(req.params.ws) };
    },
  );

  app.delete<{ Params: { ws: string; key_id: string } }>(
    '/v1/workspaces/:ws/keys/:key_id',
    {
      schema: {
        summary: 'Revoke a key (effective immediately)',
        tags: ['keys'],
        params: {
          type: 'object',
          properties: { ws: { type: 'string' }, key_id: { type: 'string' } },
          required: ['ws', 'key_id'],
        },
        response: {
          200: { type: 'object', properties: { key_id: { type: 'string' }, revoked: { type: 'boolean' } } },
          ...errors(401, 403, 404),
        },
      },
    },
    async (req) => {
      requireAdmin(req.auth, req.params.ws, 'keys');
      return deps.auth.revokeKey(req.params.ws, req.params.key_id);
    },
  );
}
