/** Signup (`POST /v1/workspaces`) and identity (`GET /v1/me`). */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { AppError } from '../errors.js';
import { errors } from '../http/schemas.js';

export async function workspaceRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post<{ Body: { name: string } }>(
    '/v1/workspaces',
    {
      config: { public: true },
      schema: {
        summary: 'Create a workspace (open signup; disabled unless TROVE_ALLOW_SIGNUP=1)',
        tags: ['workspaces'],
        body: {
          type: 'object',
          properties: { name: { type: 'string', minLength: 1, maxLength: 128 } },
          required: ['name'],
        },
        response: {
          201: {
            type: 'object',
            properties: {
              workspace_id: { type: 'string' },
              name: { type: 'string' },
              api_key: { type: 'string', description: 'Workspace runtime key, shown once' },
              admin_api_key: { type: 'string', description: 'Admin key (ours), shown once' },
            },
          },
          ...errors(403, 422),
        },
      },
    },
    async (req, reply) => {
      if (!deps.config.allowSignup) {
        throw new AppError(
          'signup_disabled',
          'Signup is disabled on this server (the operator can set TROVE_ALLOW_SIGNUP=1)',
        );
      }
      const ws = await deps.workspaces.create(req.body.name);
      req.log.info({ workspace_id: ws.workspace_id }, 'workspace created by signup');
      return reply.code(201).send(ws);
    },
  );

  app.get(
    '/v1/me',
    {
      schema: {
        summary: 'Identity of the calling key',
        tags: ['workspaces'],
        response: {
          200: {
            type: 'object',
            properties: {
              workspace_id: { type: 'string' },
              key_id: { type: 'string' },
              key_name: { type: 'string' },
              scope: { type: 'string', enum: ['admin', 'workspace'] },
              namespace: { type: ['string', 'null'] },
            },
          },
          ...errors(401),
        },
      },
    },
    async (req) => ({
      workspace_id: req.auth.workspaceId,
      key_id: req.auth.keyId,
      key_name: req.auth.keyName,
      scope: req.auth.scope,
      namespace: req.auth.namespace,
    }),
  );
}
