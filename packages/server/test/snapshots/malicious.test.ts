/**
 * Archives built by hand to attack restore. Each must be rejected with a clear
 * error, leave the namespace byte-for-byte as it was, write nothing outside,
 * and leave no staging tree behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { restoreArchive, TREES_DIR } from '../../src/snapshots/archive.js';
import { AppError } from '../../src/errors.js';
import { manifest, paxEntry, rawEntry, rawHeader, rmTree, tgz } from './support.js';

let work: string;
let outside: string;
const limits = { maxBytes: 10 * 1024 * 1024, maxFiles: 100, maxEntryBytes: 1024 * 1024 };

beforeAll(async () => {
  work = await fsp.mkdtemp(join(tmpdir(), 'trove-snap-evil-'));
  outside = join(work, 'outside');
  await fsp.mkdir(outside);
  await fsp.writeFile(join(outside, 'victim.txt'), 'precious');
});

afterAll(async () => {
  await rmTree(work);
});

/** Restores `archive` into a populated namespace and returns the error it must raise. */
async function mustReject(archive: Buffer, lim = limits): Promise<AppError> {
  const ws = await fsp.mkdtemp(join(work, 'ws-'));
  const nsRoot = join(ws, 'namespaces', 'victim');
  await fsp.mkdir(join(nsRoot, 'data'), { recursive: true });
  await fsp.writeFile(join(nsRoot, 'data', 'keep.txt'), 'keep me');
  await fsp.symlink('data/keep.txt', join(nsRoot, 'keep-link'));
  const before = await manifest(nsRoot);
  const inoBefore = (await fsp.stat(nsRoot)).ino;
  const outsideBefore = await manifest(outside);
  let caught: unknown;
  try {
    await restoreArchive(Readable.from([archive]), nsRoot, lim);
  } catch (err) {
    caught = err;
  }
  expect(caught, 'restore must fail').toBeInstanceOf(AppError);
  expect(await manifest(nsRoot)).toEqual(before);
  expect((await fsp.stat(nsRoot)).ino).toBe(inoBefore);
  expect(await manifest(outside)).toEqual(outsideBefore);
  expect(await fsp.readdir(join(ws, TREES_DIR))).toEqual([]);
  return caught as AppError;
}

const ok = (name: string, content = 'fine') => rawEntry({ name, content });

describe('restore rejects malicious archives', () => {
  it('path traversal with ..', async () => {
    const err = await mustReject(tgz([ok('a.txt'), ok(`../../../..${outside}/victim.txt`)]));
    expect(err).toMatchObject({ code: 'snapshot_invalid', status: 422 });
    expect(err.detail).toContain('contains ".." (path traversal)');
  });

  it('traversal hidden in the middle of a path', async () => {
    const err = await mustReject(tgz([rawEntry({ name: 'a/', type: '5' }), ok('a/../../escape.txt')]));
    expect(err.detail).toBe('Snapshot cannot be restored: entry "a/../../escape.txt" contains ".." (path traversal)');
  });

  it('absolute paths', async () => {
    const err = await mustReject(tgz([ok(`${outside}/victim.txt`, 'overwritten')]));
    expect(err.detail).toBe(`Snapshot cannot be restored: entry "${outside}/victim.txt" is an absolute path`);
  });

  it('symlink-then-write: a link to a directory outside, then a file through it', async () => {
    const err = await mustReject(
      tgz([rawEntry({ name: 'link', type: '2', linkname: outside }), ok('link/planted.txt', 'pwned')]),
    );
    expect(err.detail).toBe(
      'Snapshot cannot be restored: entry "link/planted.txt" is inside "link", which is not a directory in the archive (symlink-then-write)',
    );
    await expect(fsp.stat(join(outside, 'planted.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('symlink-then-write with a relative link and a deeper path', async () => {
    const err = await mustReject(
      tgz([
        rawEntry({ name: 'd/', type: '5' }),
        rawEntry({ name: 'd/up', type: '2', linkname: '../../../../../../../../..' + outside }),
        ok('d/up/sub/planted.txt', 'pwned'),
      ]),
    );
    expect(err.detail).toContain('which is not a directory in the archive (symlink-then-write)');
  });

  it('a symlink replaced by a directory entry of the same name', async () => {
    const err = await mustReject(
      tgz([rawEntry({ name: 'link', type: '2', linkname: outside }), rawEntry({ name: 'link/', type: '5' }), ok('link/x')]),
    );
    expect(err.detail).toBe('Snapshot cannot be restored: entry "link/" appears twice or conflicts with an earlier entry');
  });

  it('a file written over an earlier symlink of the same name', async () => {
    const err = await mustReject(
      tgz([rawEntry({ name: 'victim', type: '2', linkname: join(outside, 'victim.txt') }), ok('victim', 'overwritten')]),
    );
    expect(err.detail).toBe('Snapshot cannot be restored: entry "victim" appears twice or conflicts with an earlier entry');
  });

  it('a huge entry over the per-file limit (rejected before its data is read)', async () => {
    // The header claims 8 GiB; the archive does not even contain that data.
    const err = await mustReject(tgz([ok('a.txt'), rawHeader({ name: 'huge.bin', size: 8 * 1024 ** 3 - 1 })], { noEnd: true }));
    expect(err).toMatchObject({ code: 'payload_too_large', status: 413 });
    expect(err.detail).toBe(
      'Snapshot cannot be restored: "huge.bin" is 8589934591 bytes, over the per-file limit of 1048576 bytes',
    );
  });

  it('many entries that add up past the byte quota', async () => {
    const big = Buffer.alloc(1024 * 1024, 7);
    const entries = Array.from({ length: 11 }, (_, i) => rawEntry({ name: `part${i}`, content: big }));
    const err = await mustReject(tgz(entries));
    expect(err).toMatchObject({ code: 'quota_exceeded', status: 413 });
    expect(err.detail).toBe('Snapshot cannot be restored: its files exceed the namespace quota of 10485760 bytes');
  });

  it('too many files', async () => {
    const entries = Array.from({ length: 101 }, (_, i) => ok(`f${i}`));
    const err = await mustReject(tgz(entries));
    expect(err.detail).toBe('Snapshot cannot be restored: it holds more than the namespace quota of 100 files');
  });

  it('device files', async () => {
    const chr = await mustReject(tgz([ok('a'), rawEntry({ name: 'dev/null', type: '3' })]));
    expect(chr.detail).toBe('Snapshot cannot be restored: entry "dev/null" is a device file');
    const blk = await mustReject(tgz([rawEntry({ name: 'sda', type: '4' })]));
    expect(blk.detail).toBe('Snapshot cannot be restored: entry "sda" is a device file');
  });

  it('FIFOs and unknown entry types', async () => {
    expect((await mustReject(tgz([rawEntry({ name: 'pipe', type: '6' })]))).detail).toBe(
      'Snapshot cannot be restored: entry "pipe" is a FIFO',
    );
    expect((await mustReject(tgz([rawEntry({ name: 'sparse', type: 'S' })]))).detail).toBe(
      'Snapshot cannot be restored: entry "sparse" has an unsupported type "S"',
    );
  });

  it('hard links to files outside (absolute, .., and through a symlink)', async () => {
    const abs = await mustReject(tgz([rawEntry({ name: 'h', type: '1', linkname: join(outside, 'victim.txt') })]));
    expect(abs.detail).toBe(
      `Snapshot cannot be restored: hard link "h" → target "${join(outside, 'victim.txt')}" is an absolute path`,
    );
    const up = await mustReject(tgz([rawEntry({ name: 'h', type: '1', linkname: '../../outside/victim.txt' })]));
    expect(up.detail).toContain('contains ".." (path traversal)');
    const via = await mustReject(
      tgz([rawEntry({ name: 'l', type: '2', linkname: outside }), rawEntry({ name: 'h', type: '1', linkname: 'l/victim.txt' })]),
    );
    expect(via.detail).toBe(`Snapshot cannot be restored: hard link "h" points outside the archive ("l/victim.txt")`);
    const missing = await mustReject(tgz([rawEntry({ name: 'h', type: '1', linkname: 'nothing-here' })]));
    expect(missing.detail).toBe(
      'Snapshot cannot be restored: hard link "h" points to "nothing-here", which is not a file earlier in the archive',
    );
  });

  it('traversal smuggled in pax and GNU long-name headers', async () => {
    const pax = await mustReject(tgz([paxEntry({ path: '../../pax-escape.txt' }), ok('innocent.txt')]));
    expect(pax.detail).toBe('Snapshot cannot be restored: entry "../../pax-escape.txt" contains ".." (path traversal)');
    const nul = await mustReject(tgz([paxEntry({ path: 'a\0/../../b' }), ok('innocent.txt')]));
    expect(nul.detail).toContain('contains a NUL byte');
    const gnu = await mustReject(
      tgz([rawEntry({ name: '././@LongLink', type: 'L', content: '../gnu-escape.txt\0' }), ok('innocent.txt')]),
    );
    expect(gnu.detail).toBe('Snapshot cannot be restored: entry "../gnu-escape.txt" contains ".." (path traversal)');
    const link = await mustReject(
      tgz([rawEntry({ name: '././@LongLink', type: 'K', content: '/etc/shadow' }), rawEntry({ name: 'h', type: '1' })]),
    );
    expect(link.detail).toContain('is an absolute path');
  });

  it('an oversized pax header (memory exhaustion)', async () => {
    const err = await mustReject(tgz([rawHeader({ name: 'PaxHeaders/x', type: 'x', size: 64 * 1024 * 1024 })], { noEnd: true }));
    expect(err.detail).toBe('Snapshot cannot be restored: pax header of 67108864 bytes is too large');
  });

  it('corrupt or truncated archives', async () => {
    const body = Buffer.concat([ok('a.txt', 'x'.repeat(5000)), ok('b.txt'), Buffer.alloc(1024)]);
    const checksum = await mustReject(tgz([rawEntry({ name: 'a.txt', content: 'x', badChecksum: true })]));
    expect(checksum.detail).toBe('Snapshot cannot be restored: tar header checksum mismatch (the archive is corrupt or not a tar file)');
    const notGzip = await mustReject(body);
    expect(notGzip.detail).toBe(
      'Snapshot cannot be restored: the compressed data is corrupt or truncated (not a gzip stream written by a snapshot)',
    );
    const gz = gzipSync(body);
    const cut = await mustReject(gz.subarray(0, gz.length - 20));
    expect(cut.code).toBe('snapshot_invalid');
    const midEntry = await mustReject(gzipSync(body.subarray(0, 3000)));
    expect(midEntry.detail).toBe('Snapshot cannot be restored: the archive ends in the middle of an entry (truncated)');
    const noEnd = await mustReject(tgz([ok('a.txt')], { noEnd: true }));
    expect(noEnd.detail).toBe('Snapshot cannot be restored: the archive has no end-of-archive marker (truncated)');
    const flipped = Buffer.from(gz);
    flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
    expect((await mustReject(flipped)).code).toBe('snapshot_invalid');
  });

  it('entries that name the root as a file or link', async () => {
    expect((await mustReject(tgz([ok('./')]))).detail).toBe('Snapshot cannot be restored: a file entry names the archive root');
    expect((await mustReject(tgz([rawEntry({ name: '.', type: '2', linkname: '/' })]))).detail).toBe(
      'Snapshot cannot be restored: a symlink entry names the archive root',
    );
  });
});

describe('restore accepts what is merely unusual', () => {
  it('./-prefixed names, implicit parent directories, duplicate directory entries and internal hard links', async () => {
    const ws = await fsp.mkdtemp(join(work, 'ws-'));
    const nsRoot = join(ws, 'namespaces', 'fine');
    const archive = tgz([
      rawEntry({ name: './', type: '5', mode: 0o750 }),
      ok('./deep/er/file.txt', 'deep'),
      rawEntry({ name: 'deep/', type: '5', mode: 0o711 }),
      rawEntry({ name: 'deep/', type: '5', mode: 0o700 }),
      rawEntry({ name: 'hard', type: '1', linkname: './deep/er/file.txt' }),
      rawEntry({ name: 'abs-link', type: '2', linkname: '/etc/passwd' }),
    ]);
    const res = await restoreArchive(Readable.from([archive]), nsRoot, limits);
    expect(res).toEqual({ filesRestored: 3 });
    expect((await fsp.stat(nsRoot)).mode & 0o777).toBe(0o750);
    expect((await fsp.stat(join(nsRoot, 'deep'))).mode & 0o777).toBe(0o700);
    expect((await fsp.stat(join(nsRoot, 'deep/er'))).mode & 0o777).toBe(0o755);
    expect(await fsp.readFile(join(nsRoot, 'hard'), 'utf8')).toBe('deep');
    expect((await fsp.stat(join(nsRoot, 'hard'))).ino).toBe((await fsp.stat(join(nsRoot, 'deep/er/file.txt'))).ino);
    expect(await fsp.readlink(join(nsRoot, 'abs-link'))).toBe('/etc/passwd');
  });
});
