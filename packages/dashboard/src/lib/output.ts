import type { OutputChunk } from 'trove-sdk';

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
