/** Writing large outputs with backpressure, so `trove cat huge | slow-reader` does not buffer everything. */
import type { OutStream } from '../context.js';

export async function writeChunk(out: OutStream, chunk: Uint8Array | string): Promise<void> {
  if (out.write(chunk)) return;
  if (!out.once) return;
  await new Promise<void>((resolve) => out.once!('drain', resolve));
}

export async function pipeToOut(
  body: ReadableStream<Uint8Array>,
  out: OutStream,
  signal?: AbortSignal,
): Promise<number> {
  let total = 0;
  const reader = body.getReader();
  const onAbort = () => void reader.cancel().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      await writeChunk(out, value);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
  return total;
}
