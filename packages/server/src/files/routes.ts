/** Runtime file endpoints: /write, /delete, /files/{path}, /v1/files, /v1/files/content. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { AppDeps } from '../app.js';
import { AppError } from '../errors.js';
import type { Download } from './service.js';
import { etagListMatches, type WriteConditions } from './conditions.js';
import { nsContext } from '../http/auth.js';
import { readSmallBody, sendFileBody, SMALL_BODY } from '../http/send-file.js';
import { closeSyncQuietly as closeFd } from '../tree/fd-io.js';
import { errors, isoTime, nsHeader } from '../http/schemas.js';

const writeResult = {
  type: 'object',
  properties: { path: { type: 'string' }, size_bytes: { type: 'integer' } },
} as const;

const listEntry = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    path: { type: 'string' },
    is_dir: { type: 'boolean' },
    size_bytes: { type: ['integer', 'null'] },
    modified_at: isoTime,
  },
} as const;

/** The `{path}` of /files/{path}: the raw URL path, percent-decoded exactly once. */
function filesPathParam(url: string): string {
  const raw = url.split('?')[0]!.replace(/^\/files\/?/, '');
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new AppError('path_invalid', 'Path is not valid percent-encoded UTF-8');
  }
}

/** `If-Match` / `If-None-Match` of a write request (one value each; repeated headers are joined by node). */
function writeConditions(req: FastifyRequest): WriteConditions {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v);
  return { ifMatch: one(req.headers['if-match']), ifNoneMatch: one(req.headers['if-none-match']) };
}

/** The headers of a successful download of `length` bytes. */
function downloadHeaders(file: Download, length: number): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'content-length': String(length),
    etag: file.etag,
    'last-modified': new Date(file.modifiedMs).toUTCString(),
    'x-trove-size': String(file.size),
  };
  if (file.truncated) h['x-trove-truncated'] = '1';
  return h;
}

export async function fileRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post<{ Body: { path: string; content: string } }>(
    '/write',
    {
      schema: {
        summary: 'Write a UTF-8 text file (parents created, overwrites)',
        tags: ['files'],
        headers: nsHeader,
        body: {
          type: 'object',
          properties: { path: { type: 'string' }, content: { type: 'string' } },
          required: ['path', 'content'],
        },
        response: { 200: writeResult, ...errors(400, 401, 403, 412, 413, 422) },
      },
    },
    async (req, reply) => {
      const { etag, ...result } = await deps.files.writeText(
        nsContext(req),
        req.body.path,
        req.body.content,
        writeConditions(req),
      );
      reply.header('etag', etag);
      return result;
    },
  );

  app.post<{ Body: { path: string } }>(
    '/delete',
    {
      schema: {
        summary: 'Delete a file or a directory (recursive)',
        tags: ['files'],
        headers: nsHeader,
        body: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
        response: {
          200: { type: 'object', properties: { deleted: { type: 'string' } } },
          ...errors(400, 401, 403, 404, 422),
        },
      },
    },
    async (req) => deps.files.delete(nsContext(req), req.body.path),
  );

  app.get(
    '/files/*',
    {
      schema: {
        summary: 'Download a file (raw bytes; first 100 MiB, X-Trove-Truncated/X-Trove-Size when larger)',
        tags: ['files'],
        headers: nsHeader,
        response: {
          200: { description: 'Raw file bytes (ETag: the file version)', type: 'string', format: 'binary' },
          304: { description: 'Not modified: If-None-Match names the current ETag', type: 'null' },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (req, reply) => {
      const file = deps.files.download(nsContext(req), filesPathParam(req.raw.url ?? ''));
      const inm = req.headers['if-none-match'];
      if (typeof inm === 'string' && etagListMatches(inm, file.etag, true)) {
        // The client's copy is current (RFC 9110 §13.1.2: weak comparison): no body.
        closeFd(file.fd);
        return reply
          .code(304)
          .header('etag', file.etag)
          .header('last-modified', new Date(file.modifiedMs).toUTCString())
          .send();
      }
      if (file.length <= SMALL_BODY) {
        // One buffer: the head and the body leave in one write. Its length is what was read (the file may
        // have shrunk since it was measured), so Content-Length always matches the body.
        const body = readSmallBody(file.fd, file.length);
        return reply.headers(downloadHeaders(file, body.length)).send(body);
      }
      // Large files: the head, then the body from the descriptor (sendfile); onResponse hooks still run.
      const { fd } = file;
      reply.hijack();
      try {
        reply.raw.writeHead(200, {
          ...(reply.getHeaders() as OutgoingHttpHeaders),
          ...downloadHeaders(file, file.length),
        });
      } catch (err) {
        closeFd(fd);
        throw err;
      }
      if (req.method === 'HEAD') {
        closeFd(fd);
        reply.raw.end();
        return reply;
      }
      await sendFileBody(reply.raw, fd, file.length, { sendfile: deps.config.http.sendfile });
      return reply;
    },
  );

  // Uploads are raw bytes with any or no content type, streamed to disk: this
  // encapsulated context replaces every body parser with a pass-through.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    raw.put(
      '/files/*',
      {
        schema: {
          summary: 'Upload a file (raw body, streamed; atomic)',
          tags: ['files'],
          headers: nsHeader,
          response: { 200: writeResult, ...errors(400, 401, 403, 412, 413) },
        },
      },
      async (req, reply) => {
        const ctx = nsContext(req);
        const len = req.headers['content-length'];
        const declared = len !== undefined && /^\d+$/.test(len) ? Number(len) : null;
        const body = (req.body as Readable | undefined) ?? (req.raw as Readable);
        const { etag, ...result } = await deps.files.upload(
          ctx,
          filesPathParam(req.raw.url ?? ''),
          body,
          declared,
          writeConditions(req),
        );
        reply.header('etag', etag);
        return result;
      },
    );
  });

  app.get<{ Querystring: { path?: string; recursive?: boolean } }>(
    '/v1/files',
    {
      schema: {
        summary: 'List a directory (recursive: depth-first, flat, ≤1000 entries, ≤20 levels)',
        tags: ['files'],
        headers: nsHeader,
        querystring: {
          type: 'object',
          properties: {
            path: { type: 'string', default: 'workspace/' },
            recursive: { type: 'boolean', default: false },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { entries: { type: 'array', items: listEntry }, truncated: { type: 'boolean' } },
          },
          ...errors(400, 401, 403, 404, 422),
        },
      },
    },
    async (req) => deps.files.list(nsContext(req), req.query.path ?? '', req.query.recursive === true),
  );

  app.get<{ Querystring: { path: string } }>(
    '/v1/files/content',
    {
      schema: {
        summary: 'Read a file as text (first 1 MiB) or report it binary',
        tags: ['files'],
        headers: nsHeader,
        querystring: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
        response: {
          200: {
            type: 'object',
            properties: {
              path: { type: 'string' },
              size_bytes: { type: 'integer' },
              modified_at: isoTime,
              encoding: { type: 'string', enum: ['utf-8', 'binary'] },
              content: { type: ['string', 'null'] },
              truncated: { type: 'boolean' },
            },
          },
          ...errors(400, 401, 403, 404, 422),
        },
      },
    },
    async (req, reply) => {
      const { etag, ...content } = await deps.files.content(nsContext(req), req.query.path);
      reply.header('etag', etag);
      return content;
    },
  );
}
