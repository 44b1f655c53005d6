/**
 * `createTroveMcpServer(client)`: the MCP tools and prompt of Trove on top of the
 * SDK. The same server backs `trove mcp serve` (stdio) and the server's `/mcp`
 * endpoint (Streamable HTTP). Tool failures come back as error results, never as
 * exceptions, so an agent can read what went wrong and carry on.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { TroveClient } from 'trove-sdk';
import { z } from 'zod';
import { clip, formatBytes, formatError, formatExecResult, formatProcessOutput, formatProcessState } from './format.js';
import { ORIENT_PREAMBLE, serverInstructions } from './instructions.js';

/** Options of `createTroveMcpServer`. */
export interface TroveMcpServerOptions {
  /** Server name reported to the client (default `trove`). */
  name?: string;
  /** Server version reported to the client. */
  version?: string;
}

/** Version reported in the MCP handshake by default. */
export const MCP_SERVER_VERSION = '0.1.0';

/** The tool names, in the order they are registered. */
export const TOOL_NAMES = [
  'trove_exec',
  'trove_read',
  'trove_write',
  'trove_put_base64',
  'trove_bootstrap',
  'trove_list',
  'trove_delete',
  'trove_snapshot',
  'trove_restore',
  'trove_process_start',
  'trove_process_output',
  'trove_process_kill',
] as const;

/** The prompt that orients an agent in its workspace. */
export const PROMPT_NAMES = ['trove_orient'] as const;

const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });
const failure = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }], isError: true });

/** Runs a tool body and turns any failure into an error result. */
async function guarded(fn: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await fn();
  } catch (err) {
    return failure(formatError(err));
  }
}

const pathArg = (what: string) =>
  z
    .string()
    .min(1)
    .describe(`${what}, relative to workspace/ (e.g. "notes/todo.md"; "workspace/notes/todo.md" also works)`);

/** Strict base64 (standard or URL-safe alphabet, whitespace ignored); `null` when it is not. */
export function decodeBase64(input: string): Uint8Array | null {
  const s = input.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) return null;
  const unpadded = s.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return null;
  if (s.includes('=') && s.length % 4 !== 0) return null;
  return new Uint8Array(Buffer.from(unpadded.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
}

/** Builds an MCP server exposing the Trove tools for `client`'s namespace. */
export function createTroveMcpServer(client: TroveClient, opts: TroveMcpServerOptions = {}): McpServer {
  const server = new McpServer(
    { name: opts.name ?? 'trove', version: opts.version ?? MCP_SERVER_VERSION },
    { instructions: serverInstructions(client.namespace), capabilities: { tools: {}, prompts: {} } },
  );

  server.registerTool(
    'trove_exec',
    {
      title: 'Run a shell command',
      description:
        'Run `sh -c <command>` in the workspace sandbox. The working directory contains `workspace/`, the only ' +
        'directory that persists between calls. Returns `[exit N]`, then stdout, then `--- stderr ---` and stderr ' +
        'when there is any; a non-zero exit is a normal result. The server stops commands at its time limit (30 s by default): ' +
        'for longer commands, servers and watchers use trove_process_start.',
      inputSchema: {
        command: z.string().min(1).describe('The shell command, e.g. "ls -la workspace && cat workspace/notes.md"'),
        stdin: z.string().optional().describe('Optional UTF-8 text fed to the command’s stdin (at most 1 MiB)'),
      },
      annotations: { title: 'Run a shell command', readOnlyHint: false, destructiveHint: true, openWorldHint: false },
    },
    ({ command, stdin }) =>
      guarded(async () =>
        text(formatExecResult(await client.execDetailed(command, stdin === undefined ? {} : { stdin }))),
      ),
  );

  server.registerTool(
    'trove_read',
    {
      title: 'Read a file',
      description:
        'Read a text file from the workspace (the first 1 MiB). Binary files are reported with their size; inspect them ' +
        'with trove_exec (e.g. `file`, `xxd | head`, `pdftotext`).',
      inputSchema: { path: pathArg('The file') },
      annotations: { title: 'Read a file', readOnlyHint: true, openWorldHint: false },
    },
    ({ path }) =>
      guarded(async () => {
        const file = await client.readFile(path);
        if (file.encoding === 'binary' || file.content === null) {
          return text(
            `${file.path} is a binary file (${formatBytes(file.sizeBytes)}); inspect it with trove_exec, e.g. \`file ${file.path}\` or \`xxd ${file.path} | head\``,
          );
        }
        let body = clip(file.content);
        if (file.truncated) {
          body += `\n… [truncated: the first 1 MiB of ${formatBytes(file.sizeBytes)}; read the rest with trove_exec, e.g. \`tail -c +1048577 ${file.path} | head -c 100000\`]`;
        }
        return text(body);
      }),
  );

  server.registerTool(
    'trove_write',
    {
      title: 'Write a text file',
      description:
        'Write UTF-8 text to a file in the workspace, creating parent directories and replacing an existing file. ' +
        'Returns `wrote <path> (<n> bytes)`. For binary content use trove_put_base64.',
      inputSchema: { path: pathArg('The file to write'), content: z.string().describe('The complete new content') },
      annotations: {
        title: 'Write a text file',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    ({ path, content }) =>
      guarded(async () => {
        const res = await client.write(path, content);
        return text(`wrote ${res.path} (${res.sizeBytes} bytes)`);
      }),
  );

  server.registerTool(
    'trove_put_base64',
    {
      title: 'Write a binary file',
      description:
        'Write bytes given as base64 to a file in the workspace (parents created, an existing file replaced). ' +
        'Returns `wrote <path> (<n> bytes)`.',
      inputSchema: {
        path: pathArg('The file to write'),
        content_b64: z.string().describe('The file’s bytes, base64-encoded'),
      },
      annotations: {
        title: 'Write a binary file',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    ({ path, content_b64 }) =>
      guarded(async () => {
        const bytes = decodeBase64(content_b64);
        if (bytes === null) return failure('trove error: content_b64 is not valid base64');
        const res = await client.upload(path, bytes);
        return text(`wrote ${res.path} (${res.sizeBytes} bytes)`);
      }),
  );

  server.registerTool(
    'trove_bootstrap',
    {
      title: 'Summarise the workspace',
      description:
        'Call this first. Summarises the workspace: file count, the 10 most recently modified files, the init script ' +
        '(workspace/.trove/init.sh) and the handoff notes earlier sessions left in workspace/.trove/agent.md.',
      inputSchema: {},
      annotations: { title: 'Summarise the workspace', readOnlyHint: true, openWorldHint: false },
    },
    () => guarded(async () => text((await client.bootstrap()).asSystemPromptBlock())),
  );

  server.registerTool(
    'trove_list',
    {
      title: 'List a directory',
      description:
        'List a directory of the workspace: directories first (ending in /), then files with size and modification time. ' +
        '`recursive` lists the whole subtree (up to 1,000 entries).',
      inputSchema: {
        path: z.string().optional().describe('The directory, relative to workspace/ (default: the workspace root)'),
        recursive: z.boolean().optional().describe('List the whole subtree'),
      },
      annotations: { title: 'List a directory', readOnlyHint: true, openWorldHint: false },
    },
    ({ path, recursive }) =>
      guarded(async () => {
        const listing = await client.listDir(path ?? 'workspace/', { recursive: recursive === true });
        if (listing.entries.length === 0) return text('(empty directory)');
        const lines = listing.entries.map((e) =>
          e.isDir ? `${e.path}/` : `${e.path}  (${formatBytes(e.sizeBytes ?? 0)}, modified ${e.modifiedAt})`,
        );
        if (listing.truncated) lines.push('… [listing truncated at 1,000 entries or 20 levels; list a subdirectory]');
        return text(clip(lines.join('\n')));
      }),
  );

  server.registerTool(
    'trove_delete',
    {
      title: 'Delete a file or directory',
      description: 'Delete a file, or a directory with everything in it. The workspace root itself cannot be deleted.',
      inputSchema: { path: pathArg('The file or directory') },
      annotations: {
        title: 'Delete a file or directory',
        readOnlyHint: false,
        destructiveHint: true,
        openWorldHint: false,
      },
    },
    ({ path }) =>
      guarded(async () => {
        const res = await client.delete(path);
        return text(`deleted ${res.deleted}`);
      }),
  );

  server.registerTool(
    'trove_snapshot',
    {
      title: 'Snapshot the workspace',
      description: 'Take a snapshot of the whole workspace (before a risky change); trove_restore rolls back to it.',
      inputSchema: { label: z.string().max(128).optional().describe('A short label, e.g. "before refactor"') },
      annotations: {
        title: 'Snapshot the workspace',
        readOnlyHint: false,
        destructiveHint: false,
        openWorldHint: false,
      },
    },
    ({ label }) =>
      guarded(async () => {
        const snap = await client.snapshots.create({ label: label ?? null });
        return text(
          `created snapshot ${snap.snapshotId}${snap.label ? ` "${snap.label}"` : ''} (${formatBytes(snap.sizeBytes)}); restore it with trove_restore`,
        );
      }),
  );

  server.registerTool(
    'trove_restore',
    {
      title: 'Restore a snapshot',
      description:
        'Make the workspace exactly the given snapshot: files created or changed since are lost. The ids come from trove_snapshot.',
      inputSchema: { snapshot_id: z.string().min(1).describe('The snapshot id (snap-…)') },
      annotations: {
        title: 'Restore a snapshot',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    ({ snapshot_id }) =>
      guarded(async () => {
        const res = await client.snapshots.restore(snapshot_id);
        return text(`restored ${snapshot_id}: ${res.filesRestored} files`);
      }),
  );

  server.registerTool(
    'trove_process_start',
    {
      title: 'Start a background process',
      description:
        'Start `sh -c <command>` in the background, in the same sandbox as trove_exec, without its time limit: builds, test ' +
        'suites, servers, watchers. Returns the process id at once; read its output with trove_process_output and stop ' +
        'it with trove_process_kill. It keeps running between calls; its stdin gets `stdin` (if given) and then end-of-file.',
      inputSchema: {
        command: z.string().min(1).describe('The shell command, e.g. "cd workspace/app && npm test"'),
        stdin: z.string().optional().describe('Optional UTF-8 text fed to its stdin, followed by end-of-file'),
        timeout_seconds: z
          .number()
          .int()
          .positive()
          .optional()
          .describe('Stop it after this many seconds (default: no limit)'),
      },
      annotations: {
        title: 'Start a background process',
        readOnlyHint: false,
        destructiveHint: true,
        openWorldHint: false,
      },
    },
    ({ command, stdin, timeout_seconds }) =>
      guarded(async () => {
        const proc = await client.processes.start(command, {
          stdin,
          // No tool writes to stdin later: a command reading it must see its end, not wait forever.
          closeStdin: true,
          processTimeoutMs: timeout_seconds === undefined ? undefined : timeout_seconds * 1000,
        });
        return text(
          `started ${proc.processId} (${formatProcessState(proc)})\n` +
            `Read its output with trove_process_output {"process_id": "${proc.processId}"}; stop it with trove_process_kill.`,
        );
      }),
  );

  server.registerTool(
    'trove_process_output',
    {
      title: 'Read a background process’s output',
      description:
        'Read the stdout and stderr of a process started with trove_process_start, from byte offsets (0: from the start). ' +
        'The result ends with the offsets to pass next time, so each call returns only new output. `wait_seconds` first ' +
        'waits up to that long for the process to end, instead of calling again and again.',
      inputSchema: {
        process_id: z.string().min(1).describe('The process id (proc-…)'),
        stdout_offset: z.number().int().min(0).optional().describe('First stdout byte to return (default 0)'),
        stderr_offset: z.number().int().min(0).optional().describe('First stderr byte to return (default 0)'),
        max_bytes: z
          .number()
          .int()
          .min(1)
          .max(65_536)
          .optional()
          .describe('At most this many bytes of each stream (default 32768)'),
        wait_seconds: z
          .number()
          .int()
          .min(0)
          .max(30)
          .optional()
          .describe('Wait up to this long for the process to end first (default 0)'),
      },
      annotations: { title: 'Read a background process’s output', readOnlyHint: true, openWorldHint: false },
    },
    ({ process_id, stdout_offset, stderr_offset, max_bytes, wait_seconds }) =>
      guarded(async () => {
        if (wait_seconds) await client.processes.wait(process_id, { maxWaitMs: wait_seconds * 1000 });
        const limit = max_bytes ?? 32_768;
        const [stdout, stderr] = await Promise.all([
          client.processes.output(process_id, { stream: 'stdout', offset: stdout_offset ?? 0, limit }),
          client.processes.output(process_id, { stream: 'stderr', offset: stderr_offset ?? 0, limit }),
        ]);
        // Read after the output, so "ended" never hides output written after the read.
        const proc = await client.processes.get(process_id);
        return text(
          formatProcessOutput(proc, { stdout, stderr }, { stdout: stdout_offset ?? 0, stderr: stderr_offset ?? 0 }),
        );
      }),
  );

  server.registerTool(
    'trove_process_kill',
    {
      title: 'Stop a background process',
      description:
        'Send a signal (default SIGTERM; SIGKILL cannot be caught) to a process started with trove_process_start and to ' +
        'everything it started. trove_process_output with wait_seconds then shows how it ended.',
      inputSchema: {
        process_id: z.string().min(1).describe('The process id (proc-…)'),
        signal: z
          .enum(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGSTOP', 'SIGCONT'])
          .optional()
          .describe('The signal (default SIGTERM)'),
      },
      annotations: {
        title: 'Stop a background process',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    ({ process_id, signal }) =>
      guarded(async () => {
        const res = await client.processes.signal(process_id, signal ?? 'SIGTERM');
        if (res.delivered) return text(`sent ${res.signal} to ${process_id}`);
        const proc = await client.processes.get(process_id);
        return text(`${process_id} had already ended (${formatProcessState(proc)}); no signal was sent`);
      }),
  );

  server.registerPrompt(
    'trove_orient',
    {
      title: 'Orient in the Trove workspace',
      description: 'The workspace summary and the working conventions, to start a session with.',
    },
    async () => {
      let state: string;
      try {
        state = (await client.bootstrap()).asSystemPromptBlock();
      } catch (err) {
        state = `(the workspace summary is unavailable: ${formatError(err)})`;
      }
      return {
        description: 'Orientation in the Trove workspace',
        messages: [{ role: 'user', content: { type: 'text', text: `${ORIENT_PREAMBLE}\n\n${state}` } }],
      };
    },
  );

  return server;
}
