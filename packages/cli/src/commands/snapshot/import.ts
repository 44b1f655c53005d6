/**
 * `trove snapshot import FILE [--label]`: uploads a tar (.tar.gz or plain .tar, told apart by its first bytes;
 * `-` reads stdin) as a new snapshot of the namespace; the new id goes to stdout.
 */
import { openAsBlob, promises as fsp } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Snapshot } from 'trove-sdk';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { formatBytes } from '../../output/format.js';
import { ProgressBar } from '../../output/progress.js';

type ArchiveType = 'application/gzip' | 'application/x-tar';

/** gzip streams start with 1f 8b; anything else is sent as a plain tar (the server checks it either way). */
const typeOf = (head: Uint8Array): ArchiveType =>
  head[0] === 0x1f && head[1] === 0x8b ? 'application/gzip' : 'application/x-tar';

export async function run(ctx: Context, [file]: [string], opts: { label?: string }): Promise<void> {
  const client = await ctx.client();
  let snap: Snapshot;
  if (file === '-') {
    if (ctx.io.stdin.isTTY)
      throw new UsageError('stdin is a terminal', {
        hint: 'pipe an archive in: trove snapshot import - < snapshot.tgz',
      });
    const { type, body } = await sniffStream(ctx.io.stdin as AsyncIterable<Uint8Array>);
    snap = await client.snapshots.import(body, { label: opts.label ?? null, contentType: type, signal: ctx.io.signal });
  } else {
    const path = resolve(ctx.io.cwd, file);
    let head: Uint8Array;
    try {
      const fh = await fsp.open(path, 'r');
      try {
        if (!(await fh.stat()).isFile()) throw new UsageError(`${file} is not a regular file`);
        head = new Uint8Array(2);
        await fh.read(head, 0, 2, 0);
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(
        `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      );
    }
    // A Blob knows its size (Content-Length, the progress bar).
    const blob = await openAsBlob(path);
    const bar = ctx.io.stderr.isTTY && !ctx.json ? new ProgressBar(ctx.io.stderr, basename(path)) : null;
    try {
      snap = await client.snapshots.import(blob, {
        label: opts.label ?? null,
        contentType: typeOf(head),
        signal: ctx.io.signal,
        onProgress: bar ? (p) => bar.update(p.loaded, p.total, p.loaded === p.total) : undefined,
      });
    } finally {
      bar?.done();
    }
  }
  if (ctx.json) {
    ctx.printJson(snap);
    return;
  }
  ctx.print(snap.snapshotId);
  ctx.note(
    `Imported ${file === '-' ? 'stdin' : file} as snapshot ${snap.snapshotId}${snap.label ? ` "${snap.label}"` : ''} of namespace "${snap.namespace}" (${formatBytes(snap.sizeBytes)}); \`trove snapshot restore ${snap.snapshotId}\` makes the namespace that tree`,
  );
}

/** Reads the first bytes of a stream to tell gzip from tar, and gives back a stream of all of it. */
async function sniffStream(
  input: AsyncIterable<Uint8Array>,
): Promise<{ type: ArchiveType; body: AsyncIterable<Uint8Array> }> {
  const it = input[Symbol.asyncIterator]();
  const first: Uint8Array[] = [];
  let have = 0;
  let ended = false;
  while (have < 2) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    first.push(chunk);
    have += chunk.length;
  }
  const head = Buffer.concat(first);
  async function* all(): AsyncGenerator<Uint8Array> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  return { type: typeOf(head), body: all() };
}
