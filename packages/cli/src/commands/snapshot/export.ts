/**
 * `trove snapshot export ID [-o file]`: downloads the snapshot as a .tar.gz (default `<id>.tar.gz`; `-o -` for
 * stdout), through a temp file, so a failed download leaves nothing half-written.
 */
import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { formatBytes } from '../../output/format.js';
import { saveToFile } from '../../output/save-file.js';
import { pipeToOut } from '../../output/stream.js';

export async function run(ctx: Context, [id]: [string], opts: { output?: string }): Promise<void> {
  const toStdout = opts.output === '-';
  if (toStdout && ctx.tty) {
    throw new UsageError('refusing to write a binary archive to the terminal', {
      hint: 'redirect stdout, or give a file: -o snapshot.tgz',
    });
  }
  const client = await ctx.client();
  const archive = await client.snapshots.export(id, { signal: ctx.io.signal });
  if (toStdout) {
    await pipeToOut(archive.body, ctx.io.stdout, ctx.io.signal);
    return;
  }
  let target = resolve(ctx.io.cwd, opts.output ?? `${id}.tar.gz`);
  // Into an existing directory, under the snapshot's name (like `trove get`).
  if (opts.output !== undefined && (opts.output.endsWith('/') || (await isDir(target))))
    target = join(target, `${id}.tar.gz`);
  const loaded = await saveToFile(ctx, archive.body, archive.sizeBytes, target);
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
