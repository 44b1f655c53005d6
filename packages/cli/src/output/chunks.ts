/**
 * Command output as the CLI shows it: bytes to stdout/stderr exactly as written, or one
 * JSON line per chunk (`--json`), in the wire's shape (text when it is UTF-8, else base64).
 */
import type { OutputChunk } from 'trove-sdk';
import type { Context } from '../context.js';
import { writeChunk } from './stream.js';

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `{type, offset, data, encoding}` as the server sends it. */
export function chunkLine(chunk: { type: string; offset: number; data: Uint8Array }): Record<string, unknown> {
  let data: string;
  let encoding: 'utf-8' | 'base64';
  try {
    data = strict.decode(chunk.data);
    encoding = 'utf-8';
  } catch {
    data = Buffer.from(chunk.data).toString('base64');
    encoding = 'base64';
  }
  return { type: chunk.type, offset: chunk.offset, data, encoding };
}

/** Writes a chunk where the command wrote it (stdout or stderr), or as a JSON line with `--json`. */
export async function showChunk(ctx: Context, chunk: OutputChunk): Promise<void> {
  if (ctx.json) {
    ctx.printJsonLine(chunkLine(chunk));
    return;
  }
  await writeChunk(chunk.type === 'stdout' ? ctx.io.stdout : ctx.io.stderr, chunk.data);
}

/**
 * Tracks where each stream should continue, to say so when the server no longer had some bytes
 * (its per-stream ring keeps the newest 16 MiB by default).
 */
export class GapNotes {
  readonly #next: Record<'stdout' | 'stderr', number>;

  constructor(start: { stdout: number; stderr: number }) {
    this.#next = { ...start };
  }

  /** Notes on stderr (not in `--json`, where offsets tell) the bytes skipped before `chunk`. */
  see(ctx: Context, chunk: { type: 'stdout' | 'stderr'; offset: number; data: Uint8Array }): void {
    const expected = this.#next[chunk.type];
    if (chunk.offset > expected && !ctx.json) {
      ctx.note(ctx.err.dim(`[${chunk.offset - expected} bytes of ${chunk.type} are no longer kept by the server]`));
    }
    this.#next[chunk.type] = Math.max(expected, chunk.offset + chunk.data.length);
  }
}
