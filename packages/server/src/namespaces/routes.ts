/** Ours: list namespaces of a workspace; delete one (admin). */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { AppError } from '../errors.js';
import { requireAdmin, requireWorkspace } from '../auth/service.js';
import { validateNamespaceName } from './service.js';
import { errors, isoTime, workspaceParams } from '../http/schemas.js';

export async function namespaceRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get<{ Params: { ws: string } }>(
    '/v1/workspaces/:ws/namespaces',
    {
      schema: {
        summary: 'List namespaces with size and last activity (ours)',
        tags: ['namespaces'],
        params: workspaceParams,
        response: {
          200: {
            type: 'object',
            properties: {
              namespaces: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    created_at: isoTime,
                    last_activity_at: isoTime,
                    size_bytes: { type: 'integer' },
                    file_count: { type: 'integer' },
                  },
                },
              },
            },
          },
          ...errors(401, 404),
        },
      },
    },
    async (req) => {
      requireWorkspace(req.auth, req.params.ws);
      let rows = await deps.namespaces.list(req.auth.workspaceId);
      if (req.auth.namespace !== null) rows = rows.filter((r) => r.name === req.auth.namespace);
      const namespaces = [];
      for (const r of rows) {
        const u = await deps.files.quota.usageOf({ workspaceId: req.auth.workspaceId, namespace: r.name });
        namespaces.push({ ...r, size_bytes: u.bytes, file_count: u.files });
      }
      return { namespaces };
    },
  );

  app.delete<{ Params: { ws: string; ns: string } }>(
    '/v1/workspaces/:ws/namespaces/:ns',
    {
      schema: {
        summary: 'Delete a namespace, its files and its snapshots (admin; ours)',
        tags: ['namespaces'],
        params: {
          type: 'object',
          properties: { ws: { type: 'string' }, ns: { type: 'string' } },
          required: ['ws', 'ns'],
        },
        response: {
          200: { type: 'object', properties: { namespace: { type: 'string' }, deleted: { type: 'boolean' } } },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (req) => {
      requireAdmin(req.auth, req.params.ws, 'namespaces');
      const ns = validateNamespaceName(req.params.ns);
      if (!(await deps.namespaces.exists(req.params.ws, ns))) {
        throw new AppError('namespace_not_found', `Namespace not found: ${ns}`);
      }
      await deps.deleteNamespace(req.params.ws, ns);
      return { namespace: ns, deleted: true };
    },
  );
}
