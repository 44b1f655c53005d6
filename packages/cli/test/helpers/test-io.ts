/** An in-memory IO for calling the CLI in-process: TTY on or off, stdout and stderr captured separately. */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { IO } from '../../src/context.js';

/** Stands in for process.stdout/stderr (an EventEmitter, as readline expects of its output). */
export class Capture extends EventEmitter {
  chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns = 100,
  ) {
    super();
  }
  write(chunk: string | Uint8Array): boolean {
    this.chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

export interface TestIO {
  io: IO;
  stdout: Capture;
  stderr: Capture;
  stdin: PassThrough & { isTTY?: boolean };
  abort: AbortController;
}

export function testIO(opts: {
  tty?: boolean;
  env?: Record<string, string | undefined>;
  home: string;
  stdin?: string;
  stdinTTY?: boolean;
  now?: Date;
}): TestIO {
  const stdout = new Capture(opts.tty === true);
  const stderr = new Capture(opts.tty === true);
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean };
  stdin.isTTY = opts.stdinTTY ?? opts.tty === true;
  if (opts.stdin !== undefined) stdin.end(opts.stdin);
  else if (!stdin.isTTY) stdin.end();
  const abort = new AbortController();
  return {
    io: {
      stdout,
      stderr,
      stdin,
      env: opts.env ?? {},
      home: opts.home,
      cwd: opts.home,
      now: () => opts.now ?? new Date(),
      signal: abort.signal,
    },
    stdout,
    stderr,
    stdin,
    abort,
  };
}
