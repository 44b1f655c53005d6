/**
 * Output chunks as the server sends them (`{offset, data, encoding}`, text or base64) turned into
 * `OutputChunk`s: exact bytes plus text decoded per stream, so a character split across two
 * chunks is completed in the second one instead of becoming two U+FFFD.
 */
import { TroveError } from '../errors.js';
import type { OutputChunk, OutputStreamName } from '../types.js';

/** A chunk on the wire, in an SSE `stdout`/`stderr` event or a `/output` answer. */
export interface WireChunk {
  offset: number;
  data: string;
  encoding?: string;
}

/** The bytes of a wire chunk. */
export function wireBytes(chunk: { data: string; encoding?: string }): Uint8Array {
  if (chunk.encoding === 'base64') return decodeBase64(chunk.data);
  if (chunk.encoding === undefined || chunk.encoding === 'utf-8') return new TextEncoder().encode(chunk.data);
  throw new TroveError(`Unknown output encoding "${chunk.encoding}": upgrade trove-sdk`);
}

/** Standard base64 to bytes with `atob`, which every supported runtime has (Buffer is Node-only). */
export function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Decodes text a stream at a time; one per `exec.stream()` / `processes.stream()` iteration. */
export class ChunkDecoder {
  readonly #decoders = new Map<OutputStreamName, { decoder: TextDecoder; next: number }>();

  /** The `OutputChunk` of a wire chunk of `stream`. */
  chunk(stream: OutputStreamName, wire: WireChunk): OutputChunk {
    if (typeof wire?.offset !== 'number' || typeof wire.data !== 'string') {
      throw new TroveError(`Malformed ${stream} event from the server: ${JSON.stringify(wire).slice(0, 200)}`);
    }
    const data = wireBytes(wire);
    let state = this.#decoders.get(stream);
    // After a gap (bytes dropped by the server's ring), a pending half character has no continuation.
    if (!state || state.next !== wire.offset) {
      state = { decoder: new TextDecoder('utf-8', { ignoreBOM: true }), next: wire.offset };
      this.#decoders.set(stream, state);
    }
    state.next = wire.offset + data.length;
    return { type: stream, offset: wire.offset, data, text: state.decoder.decode(data, { stream: true }) };
  }
}
