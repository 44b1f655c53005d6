/**
 * One-shot exec: the checks before a command runs (stdin size, the volume's reserve and the namespace's
 * quota), the namespace's shared lock around it, and its `exec.completed` event after it. The sandbox
 * itself (sandbox/runner.ts) knows nothing of locks, quotas or events; the routes (exec/routes.ts) know
 * only the wire.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';
import type { EventService } from '../events/service.js';
import { utf8Head } from '../events/data-size.js';
import type { FileService } from '../files/service.js';
import type { NamespaceLocks } from '../locks/namespace-locks.js';
import type { NamespaceService, NsContext } from '../namespaces/service.js';
import { execTimeoutError, type ExecLive, type ExecResult, type SandboxRunner } from '../sandbox/runner.js';

export const MAX_STDIN_BYTES = 1024 * 1024;
const EVENT_STDOUT_BYTES = 1024;
const EVENT_COMMAND_BYTES = 4096;

export interface ExecCommand {
  command: string;
  /** UTF-8 text given to the command's standard input; at most MAX_STDIN_BYTES. */
  stdin?: string;
}

export interface ExecServiceDeps {
  sandbox: SandboxRunner;
  files: FileService;
  namespaces: NamespaceService;
  locks: NamespaceLocks;
  events: EventService;
  /** The wall-clock limit of a command (config.exec.timeoutMs), for the 408's wording. */
  timeoutMs: number;
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

export class ExecService {
  constructor(private readonly deps: ExecServiceDeps) {}

  /**
   * Runs the command in the namespace's sandbox (with `live`, its output also goes there as it comes).
   * A completed command is recorded as `exec.completed` (after the file events it caused); a timeout
   * records nothing and comes back with `timedOut` set: the caller answers it with timeoutError().
   */
  async run(ctx: NsContext, cmd: ExecCommand, live?: ExecLive): Promise<ExecResult> {
    const { sandbox, files, namespaces, locks, events } = this.deps;
    if (cmd.stdin !== undefined && Buffer.byteLength(cmd.stdin, 'utf8') > MAX_STDIN_BYTES) {
      throw new AppError('validation_failed', 'stdin is larger than 1 MiB');
    }
    // 507 while the volume is below its reserve or the namespace over its quota (what exec wrote counts).
    await files.quota.assertCanGrow(ctx);
    const nsRoot = await namespaces.ensure(ctx.workspaceId, ctx.namespace);
    const result = await locks.shared(ctx.workspaceId, ctx.namespace, () =>
      sandbox.run(
        {
          workspaceId: ctx.workspaceId,
          namespace: ctx.namespace,
          nsRoot,
          command: cmd.command,
          stdin: cmd.stdin,
          sourceInit: true,
        },
        live,
      ),
    );
    files.quota.execFinished(ctx);
    void namespaces.touch(ctx.workspaceId, ctx.namespace).catch(() => {});
    if (result.timedOut) return result;
    await events.emit({
      workspaceId: ctx.workspaceId,
      namespace: ctx.namespace,
      type: 'exec.completed',
      data: {
        ...commandFields(cmd.command),
        // The command's file events (source "exec") carry the same id and are committed before this one.
        exec_id: result.execId,
        exit_code: result.exitCode,
        exit_reason: result.exitReason,
        duration_ms: result.durationMs,
        stdout: utf8Head(result.stdout, EVENT_STDOUT_BYTES),
      },
    });
    return result;
  }

  /** The 408 for a command that ran out of time (docs/protocol.md wording). */
  timeoutError(): AppError {
    return execTimeoutError(this.deps.timeoutMs);
  }
}
