/**
 * Archives built by hand to attack restore. Each must be rejected with a clear
 * error, leave the namespace byte-for-byte as it was, write nothing outside,
 * and leave no staging tree behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { restoreArchive, TREES_DIR } from '../../src/snapshots/archive.js';
import { AppError } from '../../src/errors.js';
import { HOSTILE_LIMITS, hostileArchives } from './hostile-archives.js';
import { manifest, rawEntry, rmTree, tgz } from './support.js';

const work = mkdtempSync(join(tmpdir(), 'trove-snap-evil-'));
const outside = join(work, 'outside');
const limits = HOSTILE_LIMITS;

beforeAll(async () => {
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
  // The same archives are sent to POST /v1/snapshots/import in e2e/snapshots-tar.test.ts.
  it.each(hostileArchives(outside))('$name', async (h) => {
    const err = await mustReject(h.archive);
    expect(err).toMatchObject({ code: h.code, status: h.status });
    if (h.detail !== undefined) expect(err.detail).toBe(`Snapshot cannot be restored: ${h.detail}`);
    if (h.contains !== undefined) expect(err.detail).toContain(h.contains);
    expect(err.detail.startsWith('Snapshot cannot be restored: ')).toBe(true);
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
