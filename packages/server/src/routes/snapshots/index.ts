/** Runtime snapshot endpoints: /v1/snapshots (create, list), /v1/snapshots/{id}/restore, DELETE /v1/snapshots/{id}. */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../../app.js';
import type { SnapshotService } from '../../services/snapshots.js';
import { nsContext } from '../files/index.js';
import { errors, isoTime, nsHeader } from '../shared-schemas.js';

const snapshot = {
  type: 'object',
  properties: {
    snapshot_id: { type: 'string', description: 'snap-…' },
    namespace: { type: 'string' },
    label: { type: ['string', 'null'] },
    size_bytes: { type: 'integer', description: 'Bytes of the stored (compressed) archive' },
    file_count: { type: 'integer', description: 'Files and symlinks in the snapshot (ours)' },
    created_at: isoTime,
  },
} as const;

const idParams = {
  type: 'object',
  properties: { id: { type: 'string' } },
  required: ['id'],
} as const;

export function snapshotRoutes(service: SnapshotService) {
  return async function routes(app: FastifyInstance, _deps: AppDeps): Promise<void> {
    app.post<{ Body: { label?: string | null } | undefined }>(
      '/v1/snapshots',
      {
        schema: {
          summary: 'Snapshot the namespace (a gzip tar of its tree; writes and execs wait while it is taken)',
          tags: ['snapshots'],
          headers: nsHeader,
          body: {
            type: ['object', 'null'],
            properties: { label: { type: ['string', 'null'], maxLength: 128 } },
          },
          response: { 200: snapshot, ...errors(400, 401, 403, 409, 422) },
        },
      },
      async (req) => service.create(nsContext(req), req.body?.label ?? null),
    );

    app.get(
      '/v1/snapshots',
      {
        schema: {
          summary: 'List the namespace’s snapshots, newest first',
          tags: ['snapshots'],
          headers: nsHeader,
          response: {
            200: { type: 'object', properties: { snapshots: { type: 'array', items: snapshot } } },
            ...errors(400, 401, 403),
          },
        },
      },
      async (req) => ({ snapshots: await service.list(nsContext(req)) }),
    );

    app.post<{ Params: { id: string } }>(
      '/v1/snapshots/:id/restore',
      {
        schema: {
          summary: 'Make the namespace exactly the snapshot (validated, atomic; no body)',
          tags: ['snapshots'],
          headers: nsHeader,
          params: idParams,
          response: {
            200: { type: 'object', properties: { files_restored: { type: 'integer' } } },
            ...errors(400, 401, 403, 404, 409, 413, 422),
          },
        },
      },
      async (req) => service.restore(nsContext(req), req.params.id),
    );

    app.delete<{ Params: { id: string } }>(
      '/v1/snapshots/:id',
      {
        schema: {
          summary: 'Delete a snapshot',
          tags: ['snapshots'],
          headers: nsHeader,
          params: idParams,
          response: {
            200: { type: 'object', properties: { snapshot_id: { type: 'string' }, deleted: { type: 'boolean' } } },
            ...errors(400, 401, 403, 404),
          },
        },
      },
      async (req) => service.delete(nsContext(req), req.params.id),
    );
  };
}
