/**
 * Runtime snapshot endpoints: /v1/snapshots (create, list), /v1/snapshots/{id}/restore, DELETE /v1/snapshots/{id},
 * GET /v1/snapshots/{id}/archive (download) and POST /v1/snapshots/import (upload).
 */
import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { AppDeps } from '../app.js';
import { AppError } from '../errors.js';
import type { SnapshotService } from './service.js';
import { nsContext } from '../http/auth.js';
import { errors, isoTime, nsHeader } from '../http/schemas.js';

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

const archiveBody = { type: 'string', format: 'binary', description: "A gzip'd tar (or a plain tar)" } as const;

/** Content types an import accepts → whether the body is gzip'd. */
const IMPORT_TYPES: Record<string, boolean> = {
  'application/gzip': true,
  'application/x-gzip': true,
  'application/x-tar': false,
};

function importCompression(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const compressed = IMPORT_TYPES[type];
  if (compressed === undefined) {
    throw new AppError(
      'unsupported_media_type',
      `Unsupported Content-Type ${type ? JSON.stringify(type) : '(none)'}: send the archive as the raw body with Content-Type: application/gzip (a .tar.gz) or application/x-tar (a plain .tar)`,
    );
  }
  return compressed;
}

/**
 * The request body as a stream the extractor may destroy when it stops early:
 * destroying the request itself would take its socket, and the refusal with it.
 * A client that goes away mid-body still ends it with an error (premature close).
 */
function detachedBody(raw: IncomingMessage): NodeJS.ReadableStream {
  return Readable.from(raw.iterator({ destroyOnReturn: false }), { objectMode: false, highWaterMark: 256 * 1024 });
}

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

    app.get<{ Params: { id: string } }>(
      '/v1/snapshots/:id/archive',
      {
        schema: {
          summary: 'Download the snapshot as a .tar.gz (streamed; the archive as stored: GNU tar reads it)',
          tags: ['snapshots'],
          headers: nsHeader,
          params: idParams,
          response: {
            200: {
              description: "The snapshot's gzip'd tar; Content-Length is the archive's size",
              content: { 'application/gzip': { schema: { type: 'string', format: 'binary' } } },
            },
            ...errors(400, 401, 403, 404),
          },
        },
      },
      async (req, reply) => {
        const archive = await service.archive(nsContext(req), req.params.id);
        reply.header('content-type', 'application/gzip');
        reply.header('content-disposition', `attachment; filename="${archive.snapshotId}.tar.gz"`);
        if (archive.sizeBytes !== null) reply.header('content-length', String(archive.sizeBytes));
        if (req.method === 'HEAD') {
          // Fastify's HEAD route would read a stream to its end just to discard it.
          (archive.body as Readable).destroy();
          return reply.send(Readable.from([]));
        }
        // Piped with backpressure: memory stays at the read stream's 1 MiB buffer whatever the archive's size.
        return reply.send(archive.body);
      },
    );

    // The archive is the raw body: this encapsulated context replaces every body parser with a pass-through.
    await app.register(async (raw) => {
      raw.removeAllContentTypeParsers();
      raw.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
      raw.post<{ Querystring: { label?: string } }>(
        '/v1/snapshots/import',
        {
          schema: {
            summary:
              'Create a snapshot from an uploaded tar (validated exactly like a restore, stored in our own format)',
            tags: ['snapshots'],
            headers: nsHeader,
            querystring: {
              type: 'object',
              properties: { label: { type: 'string', maxLength: 128 } },
            },
            consumes: ['application/gzip', 'application/x-tar'],
            response: { 201: snapshot, ...errors(400, 401, 403, 408, 409, 413, 415, 422, 507) },
          },
          // Documented only: the body is a stream, which a JSON schema validator must not see.
          config: {
            swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body: archiveBody }, url }),
          },
        },
        async (req, reply) => {
          const ctx = nsContext(req);
          const compressed = importCompression(req.headers['content-type']);
          const len = req.headers['content-length'];
          const declaredBytes = len !== undefined && /^\d+$/.test(len) ? Number(len) : null;
          const view = await service.import(ctx, detachedBody(req.raw), {
            label: req.query.label ?? null,
            compressed,
            declaredBytes,
          });
          return reply.code(201).send(view);
        },
      );
    });

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
