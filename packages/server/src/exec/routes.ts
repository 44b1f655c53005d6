/**
 * `POST /v1/exec` (JSON, or live output as Server-Sent Events with `Accept: text/event-stream` or
 * `"stream": true`) and the legacy `POST /exec` (text/plain).
 */
import { once } from 'node:events';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app.js';
import { isAppError } from '../errors.js';
import { encodeChunk } from '../processes/output-store.js';
import { sseEvent } from '../processes/stream.js';
import type { ExecLive, ExecResult } from '../sandbox/runner.js';
import type { StreamName } from '../sandbox/ring-writer.js';
import { nsContext } from '../http/auth.js';
import { errors, nsHeader } from '../http/schemas.js';

/** Live exec: a comment this often keeps proxies and idle timeouts from cutting a quiet command. */
const HEARTBEAT_MS = 15_000;

const execBody = {
  type: 'object',
  properties: {
    command: { type: 'string', minLength: 1, maxLength: 1024 * 1024 },
    stdin: { type: ['string', 'null'], description: 'UTF-8 text, at most 1 MiB' },
  },
  required: ['command'],
} as const;

/** /v1/exec also takes `stream` (ours): live output as Server-Sent Events. */
const v1ExecBody = {
  ...execBody,
  properties: {
    ...execBody.properties,
    stream: {
      type: 'boolean',
      description: 'Ours: answer with live output as Server-Sent Events (as Accept: text/event-stream does)',
    },
  },
} as const;

interface ExecBody {
  command: string;
  stdin?: string | null;
  stream?: boolean;
}

/** True when the Accept header names text/event-stream (parameters ignored). */
function wantsEventStream(req: FastifyRequest): boolean {
  return (req.headers.accept ?? '')
    .split(',')
    .some((p) => p.split(';')[0]!.trim().toLowerCase() === 'text/event-stream');
}

export async function execRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  /** Runs the command (with `live`, its output also goes there as it comes); a timeout records nothing. */
  const execute = (req: FastifyRequest<{ Body: ExecBody }>, live?: ExecLive): Promise<ExecResult> =>
    deps.exec.run(nsContext(req), { command: req.body.command, stdin: req.body.stdin ?? undefined }, live);
  const run = async (req: FastifyRequest<{ Body: ExecBody }>) => {
    const result = await execute(req);
    if (result.timedOut) throw deps.exec.timeoutError();
    return result;
  };

  /**
   * Live exec: `stdout`/`stderr` events ({offset, data, encoding}) as the command writes, then `exit`
   * ({exit_code, exit_reason, duration_ms, stdout_truncated, stderr_truncated}); a timeout adds an `error`
   * event (exec_timeout) before its `exit`. Nothing is sent before the sandbox is up, so a refusal
   * (429, 503, 507…) is an ordinary JSON error; a failure after that is an `error` event, then the end.
   * A client that reads slowly slows the command (its pipes fill), within the same wall clock.
   */
  const runLive = async (req: FastifyRequest<{ Body: ExecBody }>, reply: FastifyReply) => {
    const res = reply.raw;
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    let started = false;
    const early: Array<[StreamName, Buffer]> = [];
    const offsets = { stdout: 0, stderr: 0 };
    // A character split between two pieces is sent whole with the second.
    const carry: Record<StreamName, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
    let heartbeat: NodeJS.Timeout | undefined;
    const write = async (text: string) => {
      if (gone.signal.aborted) return;
      if (!res.write(text)) await once(res, 'drain', { signal: gone.signal }).catch(() => {});
    };
    const send = (stream: StreamName, data: Buffer, final: boolean): Promise<void> | undefined => {
      const buf = carry[stream].length > 0 ? Buffer.concat([carry[stream], data]) : data;
      carry[stream] = Buffer.alloc(0);
      if (buf.length === 0) return;
      const enc = encodeChunk(buf, !final);
      if (!enc) {
        carry[stream] = Buffer.from(buf);
        return;
      }
      if (enc.bytes < buf.length) carry[stream] = Buffer.from(buf.subarray(enc.bytes));
      const offset = offsets[stream];
      offsets[stream] += enc.bytes;
      return write(sseEvent(stream, { offset, data: enc.data, encoding: enc.encoding }));
    };
    const start = () => {
      if (started) return;
      started = true;
      reply.hijack();
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // Reverse proxies (nginx) would otherwise buffer the stream.
        'x-accel-buffering': 'no',
        'x-request-id': req.id,
      });
      res.flushHeaders();
      heartbeat = setInterval(() => void write(': heartbeat\n\n'), HEARTBEAT_MS);
      for (const [stream, data] of early.splice(0)) void send(stream, data, false);
    };
    try {
      let result: ExecResult;
      try {
        result = await execute(req, {
          ready: start,
          output: (stream, data) => {
            if (!started) {
              // Before the shell is up only the sandbox speaks (and its refusals become JSON errors).
              early.push([stream, Buffer.from(data)]);
              return;
            }
            return send(stream, data, false);
          },
          signal: gone.signal,
        });
      } catch (err) {
        if (!started) throw err;
        const e = isAppError(err) ? err : null;
        if (!e) req.log.error({ err }, 'live exec failed');
        await write(
          sseEvent(
            'error',
            e
              ? { detail: e.detail, code: e.code }
              : { detail: `Internal server error (request id ${req.id})`, code: 'internal_error' },
          ),
        );
        return;
      }
      start();
      for (const stream of ['stdout', 'stderr'] as const) await send(stream, Buffer.alloc(0), true);
      if (result.timedOut) {
        const e = deps.exec.timeoutError();
        await write(sseEvent('error', { detail: e.detail, code: e.code }));
      }
      await write(
        sseEvent('exit', {
          exit_code: result.exitCode,
          exit_reason: result.exitReason,
          duration_ms: result.durationMs,
          stdout_truncated: result.stdoutTruncated,
          stderr_truncated: result.stderrTruncated,
        }),
      );
    } finally {
      clearInterval(heartbeat);
      if (started && !res.writableEnded && !res.destroyed) res.end();
    }
  };

  app.post<{ Body: ExecBody }>(
    '/v1/exec',
    {
      schema: {
        summary: 'Run `sh -c <command>` in the namespace sandbox',
        description:
          'With `Accept: text/event-stream` or `"stream": true` (ours): Server-Sent Events `stdout`/`stderr` ({offset, data, encoding: utf-8|base64}) as the command writes, then `exit` ({exit_code, exit_reason, duration_ms, stdout_truncated, stderr_truncated}); a timeout sends an `error` event ({detail, code: exec_timeout}), then `exit` with exit_reason timeout and exit_code 124. Same limits as the JSON answer.',
        tags: ['exec'],
        headers: nsHeader,
        body: v1ExecBody,
        produces: ['application/json', 'text/event-stream'],
        response: {
          200: {
            type: 'object',
            properties: {
              exit_code: { type: 'integer' },
              stdout: { type: 'string' },
              stderr: { type: 'string' },
              duration_ms: { type: 'integer' },
              exit_reason: {
                type: 'string',
                enum: ['exited', 'signaled', 'oom'],
                description:
                  'exited; signaled (exit_code 128+N); oom (a process was killed for memory: the exec or namespace limit)',
              },
            },
          },
          ...errors(400, 401, 403, 408, 422, 429, 503),
        },
      },
    },
    async (req, reply) => {
      if (req.body.stream === true || wantsEventStream(req)) return runLive(req, reply);
      const r = await run(req);
      return {
        exit_code: r.exitCode,
        stdout: r.stdout,
        stderr: r.stderr,
        duration_ms: r.durationMs,
        exit_reason: r.exitReason,
      };
    },
  );

  app.post<{ Body: ExecBody }>(
    '/exec',
    {
      schema: {
        summary: 'Legacy exec: text/plain stdout, or "[exit N]\\n<stderr>\\n<stdout>" on failure',
        tags: ['exec'],
        headers: nsHeader,
        body: execBody,
        response: { 200: { type: 'string' }, ...errors(400, 401, 403, 408, 422, 429, 503) },
      },
    },
    async (req: FastifyRequest<{ Body: ExecBody }>, reply: FastifyReply) => {
      const r = await run(req);
      const text = r.exitCode === 0 ? r.stdout : `[exit ${r.exitCode}]\n${r.stderr}\n${r.stdout}`;
      return reply.type('text/plain; charset=utf-8').send(text);
    },
  );
}
