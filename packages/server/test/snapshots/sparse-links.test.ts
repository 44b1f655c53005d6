/**
 * Hard links stay links and holes stay holes: a 1 GiB sparse file with 20
 * more links to it is captured without reading its holes or its links,
 * makes a small archive, and restores as one inode (nlink 21) with few
 * allocated blocks. GNU tar reads the archives (PAX sparse format 1.0) and
 * restore reads GNU tar's; older sparse formats and bad maps are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { restoreArchive } from '../../src/snapshots/archive.js';
import { AppError } from '../../src/errors.js';
import { archiveDir, paxEntry, pseudoRandom, rawEntry, rawHeader, rmTree, tgz } from './support.js';

const GiB = 1024 ** 3;
const LINKS = 20;
const unlimited = { maxBytes: 0, maxFiles: 0, maxEntryBytes: 0 };
const hasGnuTar = spawnSync('tar', ['--version']).stdout?.toString().includes('GNU tar') ?? false;

/** The data written into the sparse file: everything else is a hole. */
const pieces = [
  { offset: 0, data: pseudoRandom(4096, 1) },
  { offset: 512 * 1024 * 1024, data: pseudoRandom(64 * 1024, 2) },
  { offset: GiB - 8192, data: pseudoRandom(8192, 3) },
];

let work: string;
let tree: string;
let tgzPath: string;

async function readAt(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await fsp.open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The sparse file's content matches at every data piece and reads as zeros in a hole. */
async function expectSparseContent(path: string): Promise<void> {
  const st = await fsp.stat(path);
  expect(st.size).toBe(GiB);
  for (const p of pieces) expect((await readAt(path, p.offset, p.data.length)).equals(p.data)).toBe(true);
  expect((await readAt(path, 256 * 1024 * 1024, 65536)).equals(Buffer.alloc(65536))).toBe(true);
  // Holes stayed holes: a few pages allocated, not a gigabyte.
  expect(st.blocks * 512).toBeLessThan(4 * 1024 * 1024);
}

async function freshNamespace(): Promise<string> {
  const ws = await fsp.mkdtemp(join(work, 'ws-'));
  return join(ws, 'namespaces', 'ns');
}

beforeAll(async () => {
  work = await fsp.mkdtemp(join(tmpdir(), 'trove-sparse-'));
  tree = join(work, 'tree');
  await fsp.mkdir(join(tree, 'links'), { recursive: true });
  const big = join(tree, 'big.bin');
  const fh = await fsp.open(big, 'w');
  await fh.truncate(GiB);
  for (const p of pieces) await fh.write(p.data, 0, p.data.length, p.offset);
  await fh.close();
  for (let i = 0; i < LINKS; i++) await fsp.link(big, join(tree, 'links', `l${String(i).padStart(2, '0')}`));
  await fsp.writeFile(join(tree, 'small.txt'), 'small');
  const st = await fsp.stat(big);
  // The premise: the file really is sparse and really has 21 names.
  expect([st.size, st.nlink, st.blocks * 512 < 4 * 1024 * 1024]).toEqual([GiB, LINKS + 1, true]);
});

afterAll(async () => {
  if (work) await rmTree(work);
});

describe('hard links × sparse files', () => {
  it('captures 21 GiB of apparent size without reading it: a small archive, links as hard-link entries', async () => {
    tgzPath = join(work, 'snap.tar.gz');
    const { stream, done } = archiveDir(tree);
    await pipeline(stream, createWriteStream(tgzPath));
    expect(await done).toEqual({ fileCount: LINKS + 2, totalBytes: (LINKS + 1) * GiB + 5 });
    const size = (await fsp.stat(tgzPath)).size;
    // The file's data is 76 KiB of random bytes; the rest is headers and the sparse map.
    expect(size).toBeLessThan(200 * 1024);
    const tar = gunzipSync(await fsp.readFile(tgzPath));
    expect(tar.length).toBeLessThan(1024 * 1024);
    // Deterministic, sparse file and links included.
    const again = archiveDir(tree);
    const chunks: Buffer[] = [];
    for await (const c of again.stream) chunks.push(c as Buffer);
    await again.done;
    expect(Buffer.concat(chunks).equals(await fsp.readFile(tgzPath))).toBe(true);
  }, 60_000);

  it('restores one inode with 21 links and its holes', async () => {
    const nsRoot = await freshNamespace();
    const res = await restoreArchive(createReadStream(tgzPath), nsRoot, unlimited);
    expect(res).toEqual({ filesRestored: LINKS + 2 });
    const big = await fsp.stat(join(nsRoot, 'big.bin'));
    expect(big.nlink).toBe(LINKS + 1);
    for (let i = 0; i < LINKS; i++) {
      expect((await fsp.stat(join(nsRoot, 'links', `l${String(i).padStart(2, '0')}`))).ino).toBe(big.ino);
    }
    await expectSparseContent(join(nsRoot, 'big.bin'));
    expect(await fsp.readFile(join(nsRoot, 'small.txt'), 'utf8')).toBe('small');
    // The mtime survives the sparse path too.
    expect(big.mtimeMs).toBe((await fsp.stat(join(tree, 'big.bin'))).mtimeMs);
  }, 60_000);

  it('counts apparent sizes and every link against the limits, as the quota measure does', async () => {
    const attempt = (limits: typeof unlimited) =>
      restoreArchive(createReadStream(tgzPath), join(work, 'limits', 'namespaces', 'ns'), limits);
    await expect(attempt({ ...unlimited, maxEntryBytes: GiB - 1 })).rejects.toMatchObject({
      code: 'payload_too_large',
      detail: `Snapshot cannot be restored: "big.bin" is ${GiB} bytes, over the per-file limit of ${GiB - 1} bytes`,
    });
    await expect(attempt({ ...unlimited, maxBytes: 2 * GiB })).rejects.toMatchObject({ code: 'quota_exceeded' });
    await expect(attempt({ ...unlimited, maxFiles: LINKS })).rejects.toMatchObject({ code: 'quota_exceeded' });
  }, 60_000);

  it.skipIf(!hasGnuTar)(
    'GNU tar extracts the archive with its holes and links',
    async () => {
      const out = await fsp.mkdtemp(join(work, 'gnu-x-'));
      execFileSync('tar', ['-xzf', tgzPath, '-C', out]);
      await expectSparseContent(join(out, 'big.bin'));
      expect((await fsp.stat(join(out, 'links', 'l07'))).ino).toBe((await fsp.stat(join(out, 'big.bin'))).ino);
      // No placeholder directory: GNU tar took the real name from GNU.sparse.name.
      expect((await fsp.readdir(out)).sort()).toEqual(['big.bin', 'links', 'small.txt']);
    },
    60_000,
  );

  it.skipIf(!hasGnuTar)(
    'restores GNU tar --sparse archives (PAX format 1.0) with their holes',
    async () => {
      const gnu = join(work, 'gnu-sparse.tar.gz');
      execFileSync('tar', ['--format=pax', '--sparse', '-czf', gnu, '-C', tree, 'big.bin', 'links/l00']);
      const nsRoot = await freshNamespace();
      expect(await restoreArchive(createReadStream(gnu), nsRoot, unlimited)).toEqual({ filesRestored: 2 });
      await expectSparseContent(join(nsRoot, 'big.bin'));
      expect((await fsp.stat(join(nsRoot, 'links/l00'))).ino).toBe((await fsp.stat(join(nsRoot, 'big.bin'))).ino);
    },
    60_000,
  );

  it.skipIf(!hasGnuTar)(
    'refuses the older GNU sparse formats (their data would be restored condensed)',
    async () => {
      const old = join(work, 'gnu-sparse-01.tar.gz');
      execFileSync('tar', ['--format=pax', '--sparse', '--sparse-version=0.1', '-czf', old, '-C', tree, 'big.bin']);
      const nsRoot = await freshNamespace();
      const err = await restoreArchive(createReadStream(old), nsRoot, unlimited).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({
        code: 'snapshot_invalid',
        detail: expect.stringMatching(
          /^Snapshot cannot be restored: entry ".*big\.bin" uses an unsupported sparse format/,
        ),
      });
    },
    60_000,
  );
});

describe('hand-made sparse entries', () => {
  const sparse = (name: string, realsize: string, body: Buffer) => [
    paxEntry({
      'GNU.sparse.major': '1',
      'GNU.sparse.minor': '0',
      'GNU.sparse.name': name,
      'GNU.sparse.realsize': realsize,
    }),
    rawEntry({ name: `GNUSparseFile.0/${name}`, content: body }),
  ];
  const map = (text: string, data = '') => {
    const m = Buffer.alloc(Math.ceil(text.length / 512) * 512);
    m.write(text);
    return Buffer.concat([m, Buffer.from(data)]);
  };

  async function restoreErr(archive: Buffer): Promise<AppError> {
    const err = await restoreArchive(Readable.from([archive]), await freshNamespace(), unlimited).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }

  it('restores a valid one: data at its offsets, zeros elsewhere, the real name', async () => {
    const nsRoot = await freshNamespace();
    const archive = tgz(sparse('dir-less.bin', '10000', map('2\n100\n3\n9000\n2\n', 'abcXY')));
    expect(await restoreArchive(Readable.from([archive]), nsRoot, unlimited)).toEqual({ filesRestored: 1 });
    const got = await fsp.readFile(join(nsRoot, 'dir-less.bin'));
    const want = Buffer.alloc(10000);
    want.write('abc', 100);
    want.write('XY', 9000);
    expect(got.equals(want)).toBe(true);
    expect(await fsp.readdir(nsRoot)).toEqual(['dir-less.bin']);
  });

  it('refuses bad maps and traversal through GNU.sparse.name', async () => {
    const bad = (why: string) => `Snapshot cannot be restored: sparse entry "f" has a bad map (${why})`;
    expect((await restoreErr(tgz(sparse('f', '100', map('2\n0\n10\n5\n10\n', 'x'.repeat(20)))))).detail).toBe(
      bad('segments overlap or are out of order'),
    );
    expect((await restoreErr(tgz(sparse('f', '100', map('1\n95\n10\n', 'x'.repeat(10)))))).detail).toBe(
      bad('a segment ends past the file size'),
    );
    expect((await restoreErr(tgz(sparse('f', '100', map('1\n0\n10\n', 'x'.repeat(11)))))).detail).toBe(
      bad('its segments do not add up to the entry size'),
    );
    expect((await restoreErr(tgz(sparse('f', '100', map('1\n0\n-1\n', 'x'))))).detail).toBe(
      bad('not a list of decimal numbers'),
    );
    expect((await restoreErr(tgz(sparse('f', '100', map('9999\n0\n1\n', 'x'))))).detail).toBe(
      bad('not a list of decimal numbers'),
    );
    // A full block of map that announces more: the next block would be past the entry's data.
    const full = '99999\n' + '1\n'.repeat(253);
    expect((await restoreErr(tgz(sparse('f', '100', map(full, 'x'))))).detail).toBe(bad('it runs past the entry'));
    expect((await restoreErr(tgz(sparse('../../escape', '10', map('1\n0\n1\n', 'x'))))).detail).toBe(
      'Snapshot cannot be restored: entry "../../escape" contains ".." (path traversal)',
    );
    const missing = tgz([
      paxEntry({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'f' }),
      rawHeader({ name: 'f', size: 0 }),
    ]);
    expect((await restoreErr(missing)).detail).toBe(
      'Snapshot cannot be restored: sparse entry "f" lacks GNU.sparse.name or GNU.sparse.realsize',
    );
  });
});
