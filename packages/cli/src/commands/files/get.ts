/** `trove get path [dest] [-r]`: downloads through a temp file, so a failed download leaves nothing half-written. */
import { promises as fsp } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { TroveClient } from 'trove-sdk';
import type { Context } from '../../context.js';
import { CliError, UsageError } from '../../errors.js';
import { formatBytes } from '../../output/format.js';
import { saveToFile } from '../../output/save-file.js';
import { pipeToOut } from '../../output/stream.js';
import { relativePath, remoteBasename } from '../../paths.js';

interface Downloaded {
  path: string;
  dest: string;
  sizeBytes: number;
  truncated: boolean;
}

export async function run(
  ctx: Context,
  [remote, dest]: [string, string | undefined],
  opts: { recursive?: boolean },
): Promise<void> {
  const client = await ctx.client();
  if (dest === '-') {
    if (opts.recursive)
      throw new UsageError('cannot write a directory to stdout', { hint: 'give a local directory as dest' });
    const file = await client.readStream(remote, { signal: ctx.io.signal });
    const n = await pipeToOut(file.body, ctx.io.stdout, ctx.io.signal);
    if (file.truncated) throw truncatedError(n, file.sizeBytes);
    return;
  }
  const name = remoteBasename(remote) || 'workspace';
  const results: Downloaded[] = [];

  if (opts.recursive) {
    const listing = await client.listDir(remote, { recursive: true, signal: ctx.io.signal });
    let root = resolve(ctx.io.cwd, dest ?? name);
    // Like `cp -r`: into an existing directory, the tree keeps its own name.
    if (dest !== undefined && (dest.endsWith('/') || (await isDir(root)))) root = join(root, name);
    await fsp.mkdir(root, { recursive: true });
    const prefix =
      'workspace/' + (relativePath(remote).replace(/\/+$/, '') ? relativePath(remote).replace(/\/+$/, '') + '/' : '');
    for (const entry of listing.entries) {
      const rel = entry.path.slice(prefix.length);
      // Security: a server-supplied path must not climb out of the destination directory.
      const target = resolve(root, rel);
      if (!target.startsWith(root + '/')) throw new CliError(`refusing to write outside ${root}: ${entry.path}`);
      if (entry.isDir) await fsp.mkdir(target, { recursive: true });
      else {
        await fsp.mkdir(dirname(target), { recursive: true });
        results.push(await download(ctx, client, entry.path, target));
      }
    }
    if (listing.truncated)
      ctx.warn('the listing was truncated by the server (1,000 entries or 20 levels): some files were not downloaded');
  } else {
    let target = resolve(ctx.io.cwd, dest ?? name);
    if (dest === undefined || dest.endsWith('/') || (await isDir(target)))
      target = join(resolve(ctx.io.cwd, dest ?? '.'), name);
    results.push(await download(ctx, client, remote, target));
  }

  if (ctx.json) ctx.printJson(opts.recursive ? { files: results } : results[0]);
  else for (const r of results) ctx.note(`Downloaded ${r.path} → ${r.dest} (${formatBytes(r.sizeBytes)})`);
  const cut = results.find((r) => r.truncated);
  if (cut) throw truncatedError(cut.sizeBytes, null, cut.path);
}

async function download(ctx: Context, client: TroveClient, remote: string, target: string): Promise<Downloaded> {
  const file = await client.readStream(remote, { signal: ctx.io.signal });
  const loaded = await saveToFile(ctx, file.body, file.sizeBytes, target);
  return { path: 'workspace/' + relativePath(remote), dest: target, sizeBytes: loaded, truncated: file.truncated };
}

function truncatedError(got: number, total: number | null, path?: string): CliError {
  return new CliError(
    `${path ? `${path}: ` : ''}only the first ${formatBytes(got)}${total !== null ? ` of ${formatBytes(total)}` : ''} arrived (the server's read cap)`,
    { hint: 'the server caps a single read (100 MiB by default); split the file remotely first' },
  );
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isDirectory();
  } catch {
    return false;
  }
}
