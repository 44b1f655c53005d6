/**
 * `trove snapshot export ID [-o file]`: downloads the snapshot as a .tar.gz (default `<id>.tar.gz`; `-o -` for
 * stdout), through a temp file, so a failed download leaves nothing half-written.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { formatBytes } from '../../output/format.js';
import { ProgressBar } from '../../output/progress.js';
import { pipeToOut } from '../../output/stream.js';

export async function run(ctx: Context, [id]: [string], opts: { output?: string }): Promise<void> {
  const toStdout = opts.output === '-';
  if (toStdout && ctx.tty) {
    throw new UsageError('refusing to write a binary archive to the terminal', { hint: 'redirect stdout, or give a file: -o snapshot.tgz' });
  }
  const client = await ctx.client();
  const archive = await client.snapshots.export(id, { signal: ctx.io.signal });
  if (toStdout) {
    await pipeToOut(archive.body, ctx.io.stdout, ctx.io.signal);
    return;
  }
  let target = resolve(ctx.io.cwd, opts.output ?? `${id}.tar.gz`);
  // Into an existing directory, under the snapshot's name (like `trove get`).
  if (opts.output !== undefined && (opts.output.endsWith('/') || (await isDir(target)))) target = join(target, `${id}.tar.gz`);
  const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.part`);
  const bar = ctx.io.stderr.isTTY && !ctx.json ? new ProgressBar(ctx.io.stderr, basename(target)) : null;
  let loaded = 0;
  const out = createWriteStream(tmp, { flags: 'wx' });
  try {
    const counter = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        loaded += chunk.length;
        bar?.update(loaded, archive.sizeBytes ?? undefined);
        controller.enqueue(chunk);
      },
    });
    await archive.body.pipeThrough(counter).pipeTo(Writable.toWeb(out), { signal: ctx.io.signal });
    bar?.update(loaded, archive.sizeBytes ?? undefined, true);
    await fsp.rename(tmp, target);
  } catch (err) {
    out.destroy();
    await fsp.rm(tmp, { force: true });
    throw err;
  } finally {
    bar?.done();
  }
  if (ctx.json) ctx.printJson({ snapshotId: id, path: target, sizeBytes: loaded });
  else ctx.note(`Exported ${id} → ${target} (${formatBytes(loaded)})`);
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isDirectory();
  } catch {
    return false;
  }
}
