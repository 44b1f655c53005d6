import type { ExecExit, OutputChunk, Process } from './types';

/** What a streamed command sends: output as it is written, then how it ended. */
export type ExecStreamEvent = OutputChunk | ExecExit;
/** What a followed background process sends: output as it is written, then the ended process. */
export type ProcessStreamEvent = OutputChunk | { type: 'exit'; process: Process };

/** A chunk as the server sends it: text, or base64 for bytes that are not UTF-8. */
export interface WireChunk {
  offset: number;
  data: string;
  encoding?: 'utf-8' | 'base64';
}

/**
 * Turns wire chunks into text, one decoder per stream, so a character split across two chunks
 * shows whole in the second instead of as two replacement characters.
 */
export class OutputDecoder {
  #decoders: Record<'stdout' | 'stderr', TextDecoder> = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  #next: Record<'stdout' | 'stderr', number> = { stdout: -1, stderr: -1 };

  chunk(type: 'stdout' | 'stderr', wire: WireChunk): OutputChunk {
    const bytes = wire.encoding === 'base64' ? base64Bytes(wire.data) : new TextEncoder().encode(wire.data);
    // After a gap (bytes the server no longer keeps) a pending half character has no continuation.
    if (this.#next[type] !== wire.offset) this.#decoders[type] = new TextDecoder();
    this.#next[type] = wire.offset + bytes.length;
    return { type, offset: wire.offset, bytes: bytes.length, text: this.#decoders[type].decode(bytes, { stream: true }) };
  }
}

export function base64Bytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Joins consecutive chunks of the same stream, the way a terminal shows them. */
export function segments(chunks: readonly OutputChunk[]): { type: 'stdout' | 'stderr'; text: string }[] {
  const out: { type: 'stdout' | 'stderr'; text: string }[] = [];
  for (const c of chunks) {
    const last = out[out.length - 1];
    if (last && last.type === c.type) last.text += c.text;
    else out.push({ type: c.type, text: c.text });
  }
  return out.filter((s) => s.text !== '');
}
