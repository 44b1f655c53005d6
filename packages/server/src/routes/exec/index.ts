/** `POST /v1/exec` (JSON) and the legacy `POST /exec` (text/plain). */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../../app.js';
import { AppError } from '../../errors.js';
import { utf8Head } from '../../events/data-size.js';
import { nsContext } from '../files/index.js';
import { errors, nsHeader } from '../shared-schemas.js';

const MAX_STDIN_BYTES = 1024 * 1024;
const EVENT_STDOUT_BYTES = 1024;
const EVENT_COMMAND_BYTES = 4096;

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

/**
 * The command as `exec.completed` records it: its first 4 KiB, with the full
 * size and SHA-256 to recognise it by. A command may be 1 MiB, and events are
 * read back 200 to a page (events/data-size.ts).
 */
function commandFields(command: string): Record<string, unknown> {
  const bytes = Buffer.from(command, 'utf8');
  return {
    command: utf8Head(command, EVENT_COMMAND_BYTES),
    command_bytes: bytes.length,
    command_sha256: createHash('sha256').update(bytes).digest('hex'),
    command_truncated: bytes.length > EVENT_COMMAND_BYTES,
  };
}

export async function execRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const run = async (req: FastifyRequest<{ Body: ExecBody }>) => {
    const ctx = nsContext(req);
    const { command } = req.body;
    const stdin = req.body.stdin ?? undefined;
    if (stdin !== undefined && Buffer.byteLength(stdin, 'utf8') > MAX_STDIN_BYTES) {
      throw new AppError('validation_failed', 'stdin is larger than 1 MiB');
    }
    // 507 while the volume is below its reserve or the namespace over its quota (what exec wrote counts).
    await deps.files.assertCanGrow(ctx);
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
    deps.files.execFinished(ctx);
    void deps.namespaces.touch(ctx.workspaceId, ctx.namespace).catch(() => {});
    if (result.timedOut) {
      throw new AppError('exec_timeout', `Command timed out after ${formatSeconds(deps.config.exec.timeoutMs)}.`);
    }
    await deps.events.emit({
      workspaceId: ctx.workspaceId,
      namespace: ctx.namespace,
      type: 'exec.completed',
      data: {
        ...commandFields(command),
        exit_code: result.exitCode,
        exit_reason: result.exitReason,
        duration_ms: result.durationMs,
        stdout: utf8Head(result.stdout, EVENT_STDOUT_BYTES),
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
              exit_reason: {
                type: 'string',
                enum: ['exited', 'signaled', 'oom'],
                description: 'exited; signaled (exit_code 128+N); oom (a process was killed for memory: the exec or namespace limit)',
              },
            },
          },
          ...errors(400, 401, 403, 408, 422, 429, 503),
        },
      },
    },
    async (req) => {
      const r = await run(req);
      return { exit_code: r.exitCode, stdout: r.stdout, stderr: r.stderr, duration_ms: r.durationMs, exit_reason: r.exitReason };
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
