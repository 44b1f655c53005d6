/**
 * Background processes: /v1/processes (start, list), /v1/processes/{id} (get), its stdin, signal, wait,
 * output (from any byte offset) and live stream (SSE or NDJSON). docs/exec.md, "Background processes".
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app.js';
import { AppError } from '../errors.js';
import type { SignalName } from '../sandbox/launch.js';
import { base64Chunk, encodeChunk } from './output-store.js';
import type { ProcessService, ProcessState, StartInput } from './service.js';
import { parseResumeId, type ProcessStreams } from './stream.js';
import { nsContext } from '../http/auth.js';
import { errors, nsHeader } from '../http/schemas.js';
import { outputView, processParams, processView, signalBody, startBody, stdinBody } from './schemas.js';

type IdParams = { id: string };
const MAX_STDIN_BYTES = 1024 * 1024;
const DEFAULT_OUTPUT_LIMIT = 1024 * 1024;
const MAX_OUTPUT_LIMIT = 4 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

/** True when the client asked for `type` (Accept header, any position, parameters ignored). */
function accepts(req: FastifyRequest, type: string): boolean {
  const accept = req.headers.accept ?? '';
  return accept
    .split(',')
    .map((p) => p.split(';')[0]!.trim().toLowerCase())
    .includes(type);
}

export function processRoutes(service: ProcessService, streams: ProcessStreams) {
  return async function routes(app: FastifyInstance, _deps: AppDeps): Promise<void> {
    app.post<{ Body: StartInput }>(
      '/v1/processes',
      {
        schema: {
          summary: 'Start `sh -c <command>` in the background in the namespace sandbox',
          description:
            'Answers 201 once the sandbox is up. 429 exec_busy when the namespace already runs TROVE_PROCESS_MAX_PER_NAMESPACE processes (default 16), the server TROVE_PROCESS_MAX_TOTAL, or no exec slot frees up for the start.',
          tags: ['processes'],
          headers: nsHeader,
          body: startBody,
          response: { 201: processView, ...errors(400, 401, 403, 422, 429, 503, 507) },
        },
      },
      async (req, reply) => {
        const view = await service.start(nsContext(req), req.body);
        return reply.code(201).send(view);
      },
    );

    app.get<{ Querystring: { state?: ProcessState; limit?: number } }>(
      '/v1/processes',
      {
        schema: {
          summary: "List the namespace's background processes, newest first (running and retained ones)",
          tags: ['processes'],
          headers: nsHeader,
          querystring: {
            type: 'object',
            properties: {
              state: { type: 'string', enum: ['running', 'exited'] },
              limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: { processes: { type: 'array', items: processView } },
              required: ['processes'],
            },
            ...errors(400, 401, 403, 422),
          },
        },
      },
      async (req) => ({
        processes: await service.list(nsContext(req), req.query.state ?? null, req.query.limit ?? 100),
      }),
    );

    app.get<{ Params: IdParams }>(
      '/v1/processes/:id',
      {
        schema: {
          summary: 'A background process',
          tags: ['processes'],
          headers: nsHeader,
          params: processParams,
          response: { 200: processView, ...errors(400, 401, 403, 404) },
        },
      },
      async (req) => service.get(nsContext(req), req.params.id),
    );

    // stdin takes raw bytes or JSON: this context adds a raw parser for application/octet-stream.
    await app.register(async (raw) => {
      raw.addContentTypeParser(
        'application/octet-stream',
        { parseAs: 'buffer', bodyLimit: MAX_STDIN_BYTES },
        (_req, body, done) => done(null, body),
      );
      raw.post<{ Params: IdParams; Body: Buffer | { data?: unknown; close?: unknown } | undefined }>(
        '/v1/processes/:id/stdin',
        {
          schema: {
            summary:
              "Write to a background process's stdin: raw bytes (application/octet-stream) or JSON {data, close?}",
            description:
              '409 conflict when stdin is closed, the process has exited, 1 MiB already waits unread, or it runs on another cluster node that does not answer within 5 s.',
            tags: ['processes'],
            headers: nsHeader,
            params: processParams,
            consumes: ['application/octet-stream', 'application/json'],
            response: {
              200: {
                type: 'object',
                properties: {
                  process_id: { type: 'string' },
                  written: { type: 'integer' },
                  stdin_open: { type: 'boolean' },
                },
                required: ['process_id', 'written', 'stdin_open'],
              },
              ...errors(400, 401, 403, 404, 409, 413, 415, 422),
            },
          },
          config: {
            swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body: stdinBody }, url }),
          },
        },
        async (req) => {
          const ctx = nsContext(req);
          let data: Buffer;
          let close = false;
          const body = req.body;
          if (Buffer.isBuffer(body)) {
            data = body;
          } else if (body && typeof body === 'object') {
            if (body.data !== undefined && typeof body.data !== 'string')
              throw new AppError('validation_failed', 'body field "data" must be a string');
            if (body.close !== undefined && typeof body.close !== 'boolean')
              throw new AppError('validation_failed', 'body field "close" must be a boolean');
            data = Buffer.from((body.data as string | undefined) ?? '', 'utf8');
            close = body.close === true;
          } else {
            throw new AppError(
              'validation_failed',
              'Send the bytes as application/octet-stream, or JSON {"data": "...", "close": false}',
            );
          }
          if (data.length > MAX_STDIN_BYTES) throw new AppError('payload_too_large', 'A stdin write is at most 1 MiB.');
          return service.writeStdin(ctx, req.params.id, data, close);
        },
      );
    });

    app.post<{ Params: IdParams }>(
      '/v1/processes/:id/stdin/close',
      {
        schema: {
          summary: "Close a background process's stdin (it reads EOF after what was written)",
          tags: ['processes'],
          headers: nsHeader,
          params: processParams,
          response: {
            200: {
              type: 'object',
              properties: { process_id: { type: 'string' }, stdin_open: { type: 'boolean' } },
              required: ['process_id', 'stdin_open'],
            },
            ...errors(400, 401, 403, 404, 409),
          },
        },
      },
      async (req) => service.closeStdin(nsContext(req), req.params.id),
    );

    app.post<{ Params: IdParams; Body: { signal: SignalName } }>(
      '/v1/processes/:id/signal',
      {
        schema: {
          summary: 'Send a signal to every process of a background process (its whole cgroup / process tree)',
          description: 'delivered is false when the process has already exited.',
          tags: ['processes'],
          headers: nsHeader,
          params: processParams,
          body: signalBody,
          response: {
            200: {
              type: 'object',
              properties: {
                process_id: { type: 'string' },
                signal: { type: 'string' },
                delivered: { type: 'boolean' },
              },
              required: ['process_id', 'signal', 'delivered'],
            },
            ...errors(400, 401, 403, 404, 409, 422),
          },
        },
      },
      async (req) => service.signal(nsContext(req), req.params.id, req.body.signal),
    );

    app.get<{ Params: IdParams; Querystring: { timeout?: number } }>(
      '/v1/processes/:id/wait',
      {
        schema: {
          summary:
            'Wait for a background process to exit (long-poll): the process once exited, or after the timeout still running',
          tags: ['processes'],
          headers: nsHeader,
          params: processParams,
          querystring: {
            type: 'object',
            properties: {
              timeout: { type: 'number', minimum: 0, maximum: 60, default: 30, description: 'Seconds (≤ 60)' },
            },
          },
          response: { 200: processView, ...errors(400, 401, 403, 404, 422) },
        },
      },
      async (req) => {
        const gone = new AbortController();
        req.raw.once('close', () => gone.abort());
        return service.wait(nsContext(req), req.params.id, Math.round((req.query.timeout ?? 30) * 1000), gone.signal);
      },
    );

    app.get<{ Params: IdParams; Querystring: { stream?: 'stdout' | 'stderr'; offset?: number; limit?: number } }>(
      '/v1/processes/:id/output',
      {
        schema: {
          summary:
            'Output of a background process from a byte offset (JSON, or raw bytes with Accept: application/octet-stream)',
          description:
            'An offset below the retained start reads from the retained start (offset says where; dropped_bytes is the gap). Raw answers carry X-Trove-Offset, X-Trove-Next-Offset, X-Trove-Eof and X-Trove-Dropped-Bytes.',
          tags: ['processes'],
          headers: nsHeader,
          params: processParams,
          querystring: {
            type: 'object',
            properties: {
              stream: { type: 'string', enum: ['stdout', 'stderr'], default: 'stdout' },
              offset: { type: 'integer', minimum: 0, default: 0 },
              limit: { type: 'integer', minimum: 1, maximum: MAX_OUTPUT_LIMIT, default: DEFAULT_OUTPUT_LIMIT },
            },
          },
          produces: ['application/json', 'application/octet-stream'],
          response: { 200: outputView, ...errors(400, 401, 403, 404, 422) },
        },
      },
      async (req, reply) => {
        const stream = req.query.stream ?? 'stdout';
        const { slice, exited } = await service.output(
          nsContext(req),
          req.params.id,
          stream,
          req.query.offset ?? 0,
          req.query.limit ?? DEFAULT_OUTPUT_LIMIT,
        );
        const end = slice.offset + slice.data.length;
        const final = exited && end >= slice.total;
        if (accepts(req, 'application/octet-stream') && !accepts(req, 'application/json')) {
          return reply
            .header('content-type', 'application/octet-stream')
            .header('x-trove-offset', String(slice.offset))
            .header('x-trove-next-offset', String(end))
            .header('x-trove-eof', final ? '1' : '0')
            .header('x-trove-dropped-bytes', String(slice.start))
            .send(slice.data);
        }
        // JSON text: a character cut at the end waits for the next read unless nothing follows.
        const enc =
          slice.data.length === 0
            ? { data: '', encoding: 'utf-8' as const, bytes: 0 }
            : (encodeChunk(slice.data, !final) ?? base64Chunk(slice.data));
        const next = slice.offset + enc.bytes;
        return {
          process_id: req.params.id,
          stream,
          offset: slice.offset,
          next_offset: next,
          data: enc.data,
          encoding: enc.encoding,
          dropped_bytes: slice.start,
          eof: exited && next >= slice.total,
        };
      },
    );

    app.get<{ Params: IdParams; Querystring: { stdout_offset?: number; stderr_offset?: number } }>(
      '/v1/processes/:id/stream',
      {
        schema: {
          summary:
            'Live output of a background process: SSE (default) or NDJSON (Accept: application/x-ndjson), then its exit',
          description:
            'SSE events `stdout`/`stderr` with data {offset, data, encoding} and id "<stdout next>:<stderr next>", then `exit` with the process object; `: heartbeat` comments every 15 s. Last-Event-ID resumes exactly after what was delivered (it overrides the query offsets). NDJSON lines {"type":"stdout"|"stderr", offset, data, encoding}, then {"type":"exit","process":{…}}; empty lines are heartbeats.',
          tags: ['processes'],
          headers: nsHeader,
          params: processParams,
          querystring: {
            type: 'object',
            properties: {
              stdout_offset: { type: 'integer', minimum: 0, default: 0 },
              stderr_offset: { type: 'integer', minimum: 0, default: 0 },
            },
          },
          produces: ['text/event-stream', 'application/x-ndjson'],
          response: {
            200: { description: 'text/event-stream or application/x-ndjson', type: 'string' },
            ...errors(400, 401, 403, 404, 422),
          },
        },
      },
      async (req, reply) => {
        const ctx = nsContext(req);
        const resume = parseResumeId(req.headers['last-event-id']);
        if (resume === 'invalid')
          throw new AppError(
            'bad_request',
            'Last-Event-ID must be "<stdout offset>:<stderr offset>" as sent in an event id',
          );
        // 404 before the stream starts.
        await service.find(ctx, req.params.id);
        const offsets = resume ?? { stdout: req.query.stdout_offset ?? 0, stderr: req.query.stderr_offset ?? 0 };
        reply.hijack();
        await streams.serve(req.raw, reply.raw, {
          ctx,
          id: req.params.id,
          offsets,
          format: accepts(req, 'application/x-ndjson') ? 'ndjson' : 'sse',
          heartbeatMs: HEARTBEAT_MS,
          requestId: req.id,
        });
      },
    );

    // Long-polls and streams end before the server stops accepting, so clients see a clean end.
    app.addHook('preClose', async () => {
      service.endWaits();
      await streams.closeAll();
    });
  };
}
