/**
 * `trove put local [remote] [-r]`: streams files up. A remote ending in `/` is a
 * directory (the local name is kept); `-` uploads stdin.
 */
import { openAsBlob, promises as fsp } from 'node:fs';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { TroveClient, WriteResult } from 'trove-sdk';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { formatBytes } from '../../output/format.js';
import { ProgressBar } from '../../output/progress.js';
import { relativePath } from '../../paths.js';

interface Uploaded {
  local: string;
  path: string;
  sizeBytes: number;
}

export async function run(
  ctx: Context,
  [local, remote]: [string, string | undefined],
  opts: { recursive?: boolean },
): Promise<void> {
  const client = await ctx.client();
  const results: Uploaded[] = [];

  if (local === '-') {
    if (!remote || remote.endsWith('/')) {
      throw new UsageError('uploading stdin needs a remote file name', { hint: 'trove put - workspace/data.bin' });
    }
    const res = await client.upload(remote, ctx.io.stdin as AsyncIterable<Uint8Array>, { signal: ctx.io.signal });
    results.push({ local: '-', path: res.path, sizeBytes: res.sizeBytes });
  } else {
    const src = resolve(ctx.io.cwd, local);
    let stat;
    try {
      stat = await fsp.stat(src);
    } catch {
      throw new UsageError(`${local}: no such file or directory`);
    }
    const target = (name: string) => {
      if (remote === undefined) return name;
      return remote.endsWith('/') ? remote + name : remote;
    };
    if (stat.isDirectory()) {
      if (!opts.recursive) throw new UsageError(`${local} is a directory`, { hint: 'add -r to upload a directory' });
      const base = relativePath(target(basename(src))).replace(/\/+$/, '');
      for await (const file of walk(src)) {
        const rel = relative(src, file).split(sep).join('/');
        results.push(await uploadFile(ctx, client, file, base ? `${base}/${rel}` : rel));
      }
    } else if (stat.isFile()) {
      results.push(await uploadFile(ctx, client, src, target(basename(src))));
    } else {
      throw new UsageError(`${local} is not a regular file`);
    }
  }

  if (ctx.json) ctx.printJson(opts.recursive ? { files: results } : results[0]);
  else for (const r of results) ctx.note(`Uploaded ${r.local} → ${r.path} (${formatBytes(r.sizeBytes)})`);
}

async function uploadFile(ctx: Context, client: TroveClient, file: string, remote: string): Promise<Uploaded> {
  // A Blob knows its size (for the progress bar) and can be re-read if the SDK retries.
  const blob = await openAsBlob(file);
  const bar = ctx.io.stderr.isTTY && !ctx.json ? new ProgressBar(ctx.io.stderr, basename(file)) : null;
  let res: WriteResult;
  try {
    res = await client.upload(remote, blob, {
      signal: ctx.io.signal,
      onProgress: bar ? (p) => bar.update(p.loaded, p.total, p.loaded === p.total) : undefined,
    });
  } finally {
    bar?.done();
  }
  return { local: relative(ctx.io.cwd, file) || file, path: res.path, sizeBytes: res.sizeBytes };
}

/** Regular files under `dir`, depth-first, in name order; symlinks are followed only to files. */
async function* walk(dir: string): AsyncGenerator<string> {
  const entries = (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
    else if (e.isSymbolicLink()) {
      const st = await fsp.stat(p).catch(() => null);
      if (st?.isFile()) yield p;
    }
  }
}
