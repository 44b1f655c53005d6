/** Request and response schemas of /v1/processes (and so their /openapi.json entries). */
import { SIGNALS } from '../sandbox/launch.js';
import { isoTime } from '../http/schemas.js';

export const processView = {
  type: 'object',
  properties: {
    process_id: { type: 'string', description: '`proc-` + 24 hex digits' },
    namespace: { type: 'string' },
    command: { type: 'string', description: 'The first 4 KiB of the command' },
    command_bytes: { type: 'integer' },
    command_truncated: { type: 'boolean' },
    state: { type: 'string', enum: ['running', 'exited'] },
    exit_code: { type: ['integer', 'null'], description: 'null while running (and after server_restart / node_lost)' },
    exit_reason: {
      type: ['string', 'null'],
      enum: [null, 'exited', 'signaled', 'oom', 'timeout', 'killed', 'server_restart', 'node_lost'],
      description:
        'exited; signaled (a signal not sent through the API, exit_code 128+N); oom; timeout (its timeout_ms); killed (a signal sent through the API, or stopped by a namespace restore or delete); server_restart; node_lost',
    },
    signal: { type: ['string', 'null'], description: 'The signal that ended it (signaled, killed)' },
    started_at: isoTime,
    ended_at: { type: ['string', 'null'] },
    timeout_ms: { type: ['integer', 'null'], description: 'Wall-clock limit; null = none' },
    stdin_open: { type: 'boolean' },
    stdout_bytes: { type: 'integer', description: 'Bytes written so far (offsets run up to this)' },
    stderr_bytes: { type: 'integer' },
    stdout_dropped_bytes: {
      type: 'integer',
      description: 'Oldest bytes no longer retained (TROVE_PROCESS_OUTPUT_BYTES ring)',
    },
    stderr_dropped_bytes: { type: 'integer' },
  },
  required: [
    'process_id',
    'namespace',
    'command',
    'command_bytes',
    'command_truncated',
    'state',
    'exit_code',
    'exit_reason',
    'signal',
    'started_at',
    'ended_at',
    'timeout_ms',
    'stdin_open',
    'stdout_bytes',
    'stderr_bytes',
    'stdout_dropped_bytes',
    'stderr_dropped_bytes',
  ],
} as const;

export const processParams = {
  type: 'object',
  properties: { id: { type: 'string' } },
  required: ['id'],
} as const;

export const startBody = {
  type: 'object',
  properties: {
    command: { type: 'string', minLength: 1, maxLength: 1024 * 1024 },
    stdin: {
      type: ['string', 'null'],
      description: 'UTF-8 text written first, at most 1 MiB; stdin then stays open unless close_stdin',
    },
    close_stdin: { type: 'boolean', description: 'Close stdin after `stdin` (or at once)' },
    timeout_ms: {
      type: ['integer', 'null'],
      minimum: 1,
      description:
        'Wall-clock limit (exit_reason timeout, exit_code 124); null/absent = none; capped by TROVE_PROCESS_MAX_TIMEOUT_MS',
    },
    env: {
      type: ['object', 'null'],
      additionalProperties: { type: 'string' },
      description: 'Extra environment variables (not TROVE_WORKSPACE_ID / TROVE_NAMESPACE)',
    },
  },
  required: ['command'],
} as const;

export const stdinBody = {
  type: 'object',
  properties: {
    data: { type: 'string', description: 'UTF-8 text, at most 1 MiB' },
    close: { type: 'boolean', description: 'Close stdin after writing' },
  },
} as const;

export const signalBody = {
  type: 'object',
  properties: { signal: { type: 'string', enum: [...SIGNALS] } },
  required: ['signal'],
} as const;

export const outputView = {
  type: 'object',
  properties: {
    process_id: { type: 'string' },
    stream: { type: 'string', enum: ['stdout', 'stderr'] },
    offset: {
      type: 'integer',
      description: 'Offset of data: the one asked for, or the retained start when that is gone',
    },
    next_offset: { type: 'integer' },
    data: { type: 'string' },
    encoding: { type: 'string', enum: ['utf-8', 'base64'] },
    dropped_bytes: { type: 'integer' },
    eof: { type: 'boolean', description: 'The process has exited and next_offset is its total' },
  },
  required: ['process_id', 'stream', 'offset', 'next_offset', 'data', 'encoding', 'dropped_bytes', 'eof'],
} as const;
