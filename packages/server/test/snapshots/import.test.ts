/**
 * normaliseArchive (what POST /v1/snapshots/import runs): an uploaded tar is
 * extracted into a private staging tree by the restore's extractor and
 * captured again, so what is stored is always our own archive; the staging
 * tree never outlives the call, and start-up recovery removes one a crash left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { AppError } from '../../src/errors.js';
import {
  normaliseArchive,
  recoverInterruptedRestores,
  restoreArchive,
  TREES_DIR,
} from '../../src/snapshots/archive.js';
import { hostileArchives, HOSTILE_LIMITS } from './hostile-archives.js';
import { archiveDir, buildFixtureTree, manifest, pseudoRandom, rmTree } from './support.js';

const unlimited = { maxBytes: 0, maxFiles: 0, maxEntryBytes: 0 };
const hasGnuTar = spawnSync('tar', ['--version']).stdout?.toString().includes('GNU tar') ?? false;
const work = mkdtempSync(join(tmpdir(), 'trove-import-'));
const MiB = 1024 * 1024;
let tree: string;
let ours: Buffer;

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A workspace directory with its `namespaces/` (where an import's staging goes, under `.trees/`). */
async function workspace(): Promise<string> {
  const ws = await fsp.mkdtemp(join(work, 'ws-'));
  await fsp.mkdir(join(ws, 'namespaces'));
  return ws;
}

async function normalise(input: Buffer, ws: string, opts: { compressed?: boolean } = {}, limits = unlimited) {
  return normaliseArchive(Readable.from([input]), join(ws, 'namespaces'), '0123456789abcdef', limits, opts, collect);
}

beforeAll(async () => {
  tree = join(work, 'tree');
  // Every kind of entry, plus hard links, an empty directory and a sparse file.
  await buildFixtureTree(tree);
  await fsp.mkdir(join(tree, 'also-empty'));
  await fsp.writeFile(join(tree, 'linked.txt'), 'one inode, three names\n');
  await fsp.link(join(tree, 'linked.txt'), join(tree, 'src/hard-1'));
  await fsp.link(join(tree, 'linked.txt'), join(tree, 'hard-2'));
  const fh = await fsp.open(join(tree, 'sparse.bin'), 'w');
  await fh.truncate(64 * MiB);
  await fh.write(pseudoRandom(8192, 4), 0, 8192, 32 * MiB);
  await fh.close();
  const { stream, done } = archiveDir(tree);
  [ours] = await Promise.all([collect(stream), done]);
});

afterAll(async () => {
  await rmTree(work);
});

describe('normaliseArchive', () => {
  it('stores our own archive of the tree: byte for byte what a snapshot of the same tree stores', async () => {
    const ws = await workspace();
    const { stored, stats } = await normalise(ours, ws);
    expect(stored.equals(ours)).toBe(true);
    expect(stats.fileCount).toBe((await manifest(tree)).filter((e) => e.type !== 'dir').length);
    // Plain tar in, the same archive out.
    const plain = await normalise(gunzipSync(ours), ws, { compressed: false });
    expect(plain.stored.equals(ours)).toBe(true);
    expect(await fsp.readdir(join(ws, TREES_DIR))).toEqual([]);
  });

  it.skipIf(!hasGnuTar)(
    'normalises a GNU tar archive (sparse, hard links) into one that restores the same tree',
    async () => {
      const gnu = execFileSync('tar', ['--sparse', '--format=pax', '-czf', '-', '-C', tree, '.'], {
        maxBuffer: 256 * MiB,
      });
      const ws = await workspace();
      const { stored } = await normalise(gnu, ws);
      expect(stored.equals(gnu)).toBe(false); // not passed through
      const nsRoot = join(ws, 'namespaces', 'restored');
      await restoreArchive(Readable.from([stored]), nsRoot, unlimited);
      expect(await manifest(nsRoot)).toEqual(await manifest(tree));
      const [a, b, c] = await Promise.all(['linked.txt', 'src/hard-1', 'hard-2'].map((p) => fsp.stat(join(nsRoot, p))));
      expect([b!.ino, c!.ino, a!.nlink]).toEqual([a!.ino, a!.ino, 3]);
      expect((await fsp.stat(join(nsRoot, 'sparse.bin'))).blocks * 512).toBeLessThan(MiB);
    },
  );

  it('refuses every hostile archive exactly as a restore does, storing nothing and leaving no staging tree', async () => {
    const outside = join(work, 'outside');
    await fsp.mkdir(outside, { recursive: true });
    await fsp.writeFile(join(outside, 'victim.txt'), 'precious');
    const before = await manifest(outside);
    for (const h of hostileArchives(outside)) {
      const ws = await workspace();
      let stored = false;
      const err = await normaliseArchive(
        Readable.from([h.archive]),
        join(ws, 'namespaces'),
        'fedcba9876543210',
        HOSTILE_LIMITS,
        {},
        async (s) => {
          stored = true;
          return collect(s);
        },
      ).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, h.name).toBeInstanceOf(AppError);
      expect((err as AppError).code, h.name).toBe(h.code);
      if (h.detail !== undefined) expect((err as AppError).detail).toBe(`Snapshot cannot be restored: ${h.detail}`);
      expect(stored, h.name).toBe(false);
      expect(await fsp.readdir(join(ws, TREES_DIR)), h.name).toEqual([]);
    }
    expect(await manifest(outside)).toEqual(before);
  });

  it('a store that fails fails the import, and the staging tree still goes', async () => {
    const ws = await workspace();
    const failing = async (s: NodeJS.ReadableStream) => {
      for await (const _ of s as AsyncIterable<Buffer>) throw new Error('disk on fire');
      return null;
    };
    await expect(
      normaliseArchive(Readable.from([ours]), join(ws, 'namespaces'), '0123456789abcdef', unlimited, {}, failing),
    ).rejects.toThrow('disk on fire');
    expect(await fsp.readdir(join(ws, TREES_DIR))).toEqual([]);
  });
});

describe('start-up recovery', () => {
  it("removes an import's staging tree a crash left behind, unless its lock is held elsewhere", async () => {
    const ws = await workspace();
    const staging = join(ws, TREES_DIR, 'import-00000000deadbeef');
    await fsp.mkdir(join(staging, 'deep/er'), { recursive: true });
    await fsp.writeFile(join(staging, 'deep/er/file'), 'x');
    await fsp.symlink('/etc', join(staging, 'link'));
    await fsp.chmod(join(staging, 'deep'), 0o555);
    const locked: string[] = [];
    // Another node is still importing: the guard (its lock) says no.
    await recoverInterruptedRestores(join(ws, 'namespaces'), async (name) => void locked.push(name));
    expect(locked).toEqual(['import:00000000deadbeef']);
    expect(await fsp.readdir(join(ws, TREES_DIR))).toEqual(['import-00000000deadbeef']);
    await recoverInterruptedRestores(join(ws, 'namespaces'));
    expect(await fsp.readdir(join(ws, TREES_DIR))).toEqual([]);
    expect((await fsp.stat('/etc')).isDirectory()).toBe(true);
  });
});
