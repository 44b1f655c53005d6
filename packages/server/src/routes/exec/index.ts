/** `POST /v1/exec` (JSON) and the legacy `POST /exec` (text/plain). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../../app.js';
import { AppError } from '../../errors.js';
import { nsContext } from '../files/index.js';
import { errors, nsHeader } from '../shared-schemas.js';

const MAX_STDIN_BYTES = 1024 * 1024;
const EVENT_STDOUT_BYTES = 1024;

const execBody = {
  type: 'object',
  properties: {
    command: { type: 'string', minLength: 1, maxLength: 1024 * 1024 },
    stdin: { type: ['string', 'null'], description: 'UTF-8 text, at most 1 MiB' },
  },
  required: ['command'],
} as const;

interface ExecBody {
  command: string;
  stdin?: string | null;
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return Number.isInteger(s) ? `${s}s` : `${s.toFixed(1)}s`;
}

/** First `max` bytes of UTF-8 text without splitting a character. */
function headBytes(text: string, max: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= max) return text;
  return new TextDecoder().decode(buf.subarray(0, max)).replace(/\uFFFD$/, '');
}

export async function execRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const run = async (req: FastifyRequest<{ Body: ExecBody }>) => {
    const ctx = nsContext(req);
    const { command } = req.body;
    const stdin = req.body.stdin ?? undefined;
    if (stdin !== undefined && Buffer.byteLength(stdin, 'utf8') > MAX_STDIN_BYTES) {
      throw new AppError('validation_failed', 'stdin is larger than 1 MiB');
    }
    const nsRoot = await deps.namespaces.ensure(ctx.workspaceId, ctx.namespace);
    const result = await deps.locks.shared(ctx.workspaceId, ctx.namespace, () =>
      deps.exec.run({
        workspaceId: ctx.workspaceId,
        namespace: ctx.namespace,
        nsRoot,
        command,
        stdin,
        sourceInit: true,
      }),
    );
    deps.files.invalidateUsage(ctx);
    void deps.namespaces.touch(ctx.workspaceId, ctx.namespace).catch(() => {});
    if (result.timedOut) {
      throw new AppError('exec_timeout', `Command timed out after ${formatSeconds(deps.config.exec.timeoutMs)}.`);
    }
    await deps.events.emit({
      workspaceId: ctx.workspaceId,
      namespace: ctx.namespace,
      type: 'exec.completed',
      data: {
        command,
        exit_code: result.exitCode,
        duration_ms: result.durationMs,
        stdout: headBytes(result.stdout, EVENT_STDOUT_BYTES),
      },
    });
    return result;
  };

  app.post<{ Body: ExecBody }>(
    '/v1/exec',
    {
      schema: {
        summary: 'Run `sh -c <command>` in the namespace sandbox',
        tags: ['exec'],
        headers: nsHeader,
        body: execBody,
        response: {
          200: {
            type: 'object',
            properties: {
              exit_code: { type: 'integer' },
              stdout: { type: 'string' },
              stderr: { type: 'string' },
              duration_ms: { type: 'integer' },
            },
          },
          ...errors(400, 401, 403, 408, 422, 429, 503),
        },
      },
    },
    async (req) => {
      const r = await run(req);
      return { exit_code: r.exitCode, stdout: r.stdout, stderr: r.stderr, duration_ms: r.durationMs };
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
