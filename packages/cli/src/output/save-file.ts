/**
 * Saves a download to a local file without ever leaving half of it there: the
 * bytes go to a hidden `.part` file next to the target (created exclusively),
 * which is renamed over the target only once complete. A progress bar on a
 * terminal's stderr. Returns the byte count.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Context } from '../context.js';
import { ProgressBar } from './progress.js';

export async function saveToFile(
  ctx: Context,
  body: ReadableStream<Uint8Array>,
  sizeBytes: number | null | undefined,
  target: string,
): Promise<number> {
  const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.part`);
  const bar = ctx.io.stderr.isTTY && !ctx.json ? new ProgressBar(ctx.io.stderr, basename(target)) : null;
  let loaded = 0;
  const out = createWriteStream(tmp, { flags: 'wx' });
  try {
    const counter = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        loaded += chunk.length;
        bar?.update(loaded, sizeBytes ?? undefined);
        controller.enqueue(chunk);
      },
    });
    await body.pipeThrough(counter).pipeTo(Writable.toWeb(out), { signal: ctx.io.signal });
    bar?.update(loaded, sizeBytes ?? undefined, true);
    await fsp.rename(tmp, target);
  } catch (err) {
    out.destroy();
    await fsp.rm(tmp, { force: true });
    throw err;
  } finally {
    bar?.done();
  }
  return loaded;
}
