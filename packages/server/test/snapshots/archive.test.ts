import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, createReadStream, createWriteStream, openSync, promises as fsp, readdirSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createArchive, removeTreeAt, restoreArchive, TREES_DIR } from '../../src/snapshots/archive.js';
import { AppError } from '../../src/errors.js';
import { MAX_WALK_DEPTH } from '../../src/tree/walk.js';
import { BENEATH_NO_LINKS, O_CREAT, O_DIRECTORY, O_RDONLY, O_WRONLY, mkdirat, openat2 } from '../../src/tree/sys.js';
import { archiveDir, buildFixtureTree, manifest, pseudoRandom, rmTree } from './support.js';
import { isRoot, needsRoot } from '../../../../test/helpers/root.js';

const unlimited = { maxBytes: 0, maxFiles: 0, maxEntryBytes: 0 };
const hasGnuTar = spawnSync('tar', ['--version']).stdout?.toString().includes('GNU tar') ?? false;

let work: string;
let src: string;
let tgzPath: string;
let stats: { fileCount: number; totalBytes: number };

async function archiveTo(tree: string, path: string, level?: number) {
  const { stream, done } = archiveDir(tree, { level });
  await pipeline(stream, createWriteStream(path));
  return done;
}

/** A namespace root inside a fresh workspace layout: <ws>/namespaces/<ns>. */
async function freshNamespace(name = 'ns1'): Promise<string> {
  const ws = await fsp.mkdtemp(join(work, 'ws-'));
  const nsRoot = join(ws, 'namespaces', name);
  await fsp.mkdir(nsRoot, { recursive: true });
  return nsRoot;
}

beforeAll(async () => {
  work = await fsp.mkdtemp(join(tmpdir(), 'trove-snap-'));
  src = join(work, 'src');
  await buildFixtureTree(src);
  tgzPath = join(work, 'fixture.tar.gz');
  stats = await archiveTo(src, tgzPath);
});

afterAll(async () => {
  await rmTree(work);
});

describe('createArchive + restoreArchive round trip', () => {
  it('reproduces the tree exactly: types, modes, sizes, contents, link targets, mtimes', async () => {
    const nsRoot = await freshNamespace();
    // Whatever was there before is replaced, not merged.
    await fsp.writeFile(join(nsRoot, 'stale.txt'), 'old');
    await fsp.mkdir(join(nsRoot, 'src'));
    await fsp.writeFile(join(nsRoot, 'src', 'old.py'), 'old');

    const res = await restoreArchive(createReadStream(tgzPath), nsRoot, unlimited);

    const want = await manifest(src);
    const got = await manifest(nsRoot);
    expect(got).toEqual(want);
    const nonDirs = want.filter((e) => e.type !== 'dir');
    expect(res.filesRestored).toBe(nonDirs.length);
    expect(stats.fileCount).toBe(nonDirs.length);
    expect(stats.totalBytes).toBe(want.filter((e) => e.type === 'file').reduce((a, e) => a + e.size, 0));
    // The fixture really has what the test claims to cover.
    const byPath = new Map(got.map((e) => [e.path, e]));
    expect(byPath.get('link-outside-absolute')).toMatchObject({ type: 'symlink', link: '/etc/passwd' });
    expect(byPath.get('link-dangling')).toMatchObject({ type: 'symlink', link: 'does/not/exist' });
    expect(byPath.get('link-to-dir')).toMatchObject({ type: 'symlink', link: 'src' });
    expect(byPath.get('run.sh')?.mode).toBe(0o755);
    expect(byPath.get('secret.key')?.mode).toBe(0o600);
    expect(byPath.get('locked')?.mode).toBe(0o555);
    expect(byPath.get('empty-dir')?.type).toBe('dir');
    expect(byPath.get('empty.txt')).toMatchObject({ type: 'file', size: 0 });
    expect(byPath.get('hex:6c6174696e312de9ff')).toMatchObject({ type: 'file' });
    expect(got.some((e) => e.path.length > 400)).toBe(true);
    expect(byPath.has('stale.txt')).toBe(false);
    expect(byPath.has('src/old.py')).toBe(false);
    // No staging or old tree is left behind.
    expect(await fsp.readdir(join(nsRoot, '..', '..', TREES_DIR))).toEqual([]);
  });

  it('with detachOldTreeRemoval, answers once committed and hands over the deletion of the previous tree', async () => {
    const nsRoot = await freshNamespace();
    for (let i = 0; i < 200; i++) await fsp.writeFile(join(nsRoot, `old-${i}.txt`), 'old');
    const trees = join(nsRoot, '..', '..', TREES_DIR);
    let handed: Promise<void> | null = null;
    let leftWhenHanded: string[] = [];
    const res = await restoreArchive(createReadStream(tgzPath), nsRoot, unlimited, {
      detachOldTreeRemoval: (removal) => {
        // Called right after the commit: the new tree is in place and the old one is aside, not yet gone.
        leftWhenHanded = readdirSync(trees);
        handed = removal;
      },
    });
    expect(res.filesRestored).toBe(stats.fileCount);
    expect(leftWhenHanded).toHaveLength(1);
    expect(leftWhenHanded[0]).toMatch(/^[0-9a-f]{16}-old-ns1$/);
    expect(await manifest(nsRoot)).toEqual(await manifest(src));
    expect(handed).not.toBeNull();
    await handed;
    expect(await fsp.readdir(trees)).toEqual([]);
  });

  it('two removers of the same tree (a restore finishing its old tree, recovery on another node) both succeed', async () => {
    const ws = await fsp.mkdtemp(join(work, 'ws-'));
    const victim = join(ws, 'victim');
    for (let d = 0; d < 20; d++) {
      await fsp.mkdir(join(victim, `d${d}`, 'sub'), { recursive: true });
      for (let f = 0; f < 30; f++) await fsp.writeFile(join(victim, `d${d}`, 'sub', `f${f}`), 'x');
    }
    const dirFd = openSync(ws, 'r');
    try {
      await Promise.all([
        removeTreeAt(dirFd, 'victim', dirFd),
        removeTreeAt(dirFd, 'victim', dirFd),
        removeTreeAt(dirFd, 'victim', dirFd),
      ]);
    } finally {
      closeSync(dirFd);
    }
    expect(await fsp.readdir(ws)).toEqual([]);
  });

  it('creates a missing namespace root', async () => {
    const nsRoot = await freshNamespace();
    await fsp.rmdir(nsRoot);
    await restoreArchive(createReadStream(tgzPath), nsRoot, unlimited);
    expect(await manifest(nsRoot)).toEqual(await manifest(src));
  });

  it('writes deterministic archives (same tree, same bytes)', async () => {
    const second = join(work, 'again.tar.gz');
    await archiveTo(src, second);
    expect((await fsp.readFile(second)).equals(await fsp.readFile(tgzPath))).toBe(true);
  });

  it.skipIf(!hasGnuTar)('writes standard archives: GNU tar extracts the same tree', async () => {
    const out = await fsp.mkdtemp(join(work, 'gnu-x-'));
    // -p: every mode bit as archived (the default for root only; another user's tar applies its umask and drops
    // the sticky bit).
    execFileSync('tar', ['-xzpf', tgzPath, '-C', out, ...(isRoot ? ['--no-same-owner'] : [])]);
    const want = (await manifest(src)).filter((e) => e.path !== '.');
    const got = (await manifest(out)).filter((e) => e.path !== '.');
    // GNU tar applies directory times late too; everything should match.
    expect(got).toEqual(want);
  });

  it.skipIf(!hasGnuTar)('restores archives written by GNU tar (pax format)', async () => {
    const gnu = join(work, 'gnu.tar.gz');
    execFileSync('tar', ['--format=pax', '-czf', gnu, '-C', src, '.']);
    const nsRoot = await freshNamespace();
    await restoreArchive(createReadStream(gnu), nsRoot, unlimited);
    expect(await manifest(nsRoot)).toEqual(await manifest(src));
  });

  it('drops setuid/setgid bits, skips FIFOs and sockets, keeps hard links as links', async () => {
    const tree = await fsp.mkdtemp(join(work, 'special-'));
    await fsp.writeFile(join(tree, 'suid'), 'x');
    await fsp.chmod(join(tree, 'suid'), 0o6755);
    await fsp.writeFile(join(tree, 'a'), 'shared');
    await fsp.link(join(tree, 'a'), join(tree, 'b'));
    await fsp.mkdir(join(tree, 'sub'));
    await fsp.link(join(tree, 'a'), join(tree, 'sub', 'c'));
    execFileSync('mkfifo', [join(tree, 'fifo')]);
    const sock = createServer();
    await new Promise<void>((r) => sock.listen(join(tree, 'sock'), r));
    try {
      const path = join(work, 'special.tar.gz');
      const s = await archiveTo(tree, path);
      expect(s).toEqual({ fileCount: 4, totalBytes: 1 + 3 * 6 });
      const nsRoot = await freshNamespace();
      expect(await restoreArchive(createReadStream(path), nsRoot, unlimited)).toEqual({ filesRestored: 4 });
      expect((await fsp.readdir(nsRoot)).sort()).toEqual(['a', 'b', 'sub', 'suid']);
      expect((await fsp.stat(join(nsRoot, 'suid'))).mode & 0o7777).toBe(0o755);
      const [a, b, c] = await Promise.all(['a', 'b', 'sub/c'].map((n) => fsp.stat(join(nsRoot, n))));
      expect([b!.ino, c!.ino]).toEqual([a!.ino, a!.ino]);
      expect(a!.nlink).toBe(3);
      expect(await fsp.readFile(join(nsRoot, 'sub/c'), 'utf8')).toBe('shared');
      // The second and third paths are tar hard-link entries, not copies.
      if (hasGnuTar) {
        const listing = execFileSync('tar', ['-tvzf', path], { encoding: 'utf8' });
        expect(listing).toMatch(/^h.* b link to a$/m);
        expect(listing).toMatch(/^h.* sub\/c link to a$/m);
      }
    } finally {
      sock.close();
    }
  });

  it.runIf(isRoot)(`chowns every restored entry when asked${needsRoot('chown')}`, async () => {
    const nsRoot = await freshNamespace();
    await restoreArchive(createReadStream(tgzPath), nsRoot, unlimited, { chown: { uid: 64123, gid: 64124 } });
    const walk = async (p: Buffer): Promise<void> => {
      const st = await fsp.lstat(p);
      expect([p.toString(), st.uid, st.gid]).toEqual([p.toString(), 64123, 64124]);
      if (!st.isDirectory()) return;
      for (const n of await fsp.readdir(p, { encoding: 'buffer' })) await walk(Buffer.concat([p, Buffer.from('/'), n]));
    };
    await walk(Buffer.from(nsRoot));
  });

  it('reports a descriptor that is not a directory through both the stream and done', async () => {
    const file = join(work, 'not-a-dir');
    await fsp.writeFile(file, 'x');
    const fd = openSync(file, 'r');
    try {
      const { stream, done } = createArchive(fd);
      const streamErr = new Promise((resolve) => stream.on('error', resolve));
      stream.resume();
      await expect(done).rejects.toMatchObject({ code: 'ENOTDIR' });
      await expect(streamErr).resolves.toMatchObject({ code: 'ENOTDIR' });
    } finally {
      closeSync(fd);
    }
  });

  it('streams: a tree far larger than the memory it uses', async () => {
    const tree = await fsp.mkdtemp(join(work, 'big-'));
    const chunk = pseudoRandom(1024 * 1024, 3);
    const fh = await fsp.open(join(tree, 'big.bin'), 'w');
    for (let i = 0; i < 96; i++) await fh.write(chunk);
    await fh.close();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    try {
      const path = join(work, 'big.tar.gz');
      await archiveTo(tree, path, 1);
      const nsRoot = await freshNamespace();
      await restoreArchive(createReadStream(path), nsRoot, unlimited, { durable: false });
      expect((await fsp.stat(join(nsRoot, 'big.bin'))).size).toBe(96 * 1024 * 1024);
    } finally {
      clearInterval(timer);
    }
    // 96 MiB went through; the process grew by far less.
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('restore limits (quotas)', () => {
  const files = 6;
  let path: string;
  beforeAll(async () => {
    const tree = await fsp.mkdtemp(join(work, 'limits-'));
    await fsp.mkdir(join(tree, 'dir'));
    await fsp.symlink('f0', join(tree, 'link')); // links and dirs do not count as files
    for (let i = 0; i < files; i++) await fsp.writeFile(join(tree, `f${i}`), Buffer.alloc(1000 * (i + 1), 1));
    path = join(work, 'limits.tar.gz');
    await archiveTo(tree, path);
  });

  async function attempt(limits: typeof unlimited) {
    const nsRoot = await freshNamespace();
    await fsp.writeFile(join(nsRoot, 'keep.txt'), 'keep');
    const before = await manifest(nsRoot);
    try {
      return { result: await restoreArchive(createReadStream(path), nsRoot, limits), nsRoot };
    } catch (err) {
      expect(await manifest(nsRoot)).toEqual(before);
      expect(await fsp.readdir(join(nsRoot, '..', '..', TREES_DIR))).toEqual([]);
      return { err: err as AppError, nsRoot };
    }
  }

  it('accepts an archive exactly at the limits', async () => {
    const r = await attempt({ maxFiles: files, maxBytes: 21_000, maxEntryBytes: 6000 });
    expect(r.err).toBeUndefined();
    expect(r.result).toEqual({ filesRestored: files + 1 });
  });

  it('rejects one file too many', async () => {
    const { err } = await attempt({ ...unlimited, maxFiles: files - 1 });
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'quota_exceeded', status: 413 });
    expect(err!.detail).toBe('Snapshot cannot be restored: it holds more than the namespace quota of 5 files');
  });

  it('rejects one byte too many', async () => {
    const { err } = await attempt({ ...unlimited, maxBytes: 20_999 });
    expect(err).toMatchObject({ code: 'quota_exceeded' });
    expect(err!.detail).toBe('Snapshot cannot be restored: its files exceed the namespace quota of 20999 bytes');
  });

  it('rejects a file over the per-file limit', async () => {
    const { err } = await attempt({ ...unlimited, maxEntryBytes: 5999 });
    expect(err).toMatchObject({ code: 'payload_too_large', status: 413 });
    expect(err!.detail).toBe('Snapshot cannot be restored: "f5" is 6000 bytes, over the per-file limit of 5999 bytes');
  });
});

describe('restore input errors', () => {
  it('leaves the namespace untouched when the input stream fails', async () => {
    const nsRoot = await freshNamespace();
    await fsp.writeFile(join(nsRoot, 'keep.txt'), 'keep');
    const before = await manifest(nsRoot);
    const data = await fsp.readFile(tgzPath);
    const failing = Readable.from(
      (async function* () {
        yield data.subarray(0, 20_000);
        throw Object.assign(new Error('disk read failed'), { code: 'EIO' });
      })(),
    );
    await expect(restoreArchive(failing, nsRoot, unlimited)).rejects.toThrow('disk read failed');
    expect(await manifest(nsRoot)).toEqual(before);
    expect(await fsp.readdir(join(nsRoot, '..', '..', TREES_DIR))).toEqual([]);
  });
});

describe('trees the walk refuses rather than archive in part', () => {
  /** `levels` nested directories `a/a/…` (names of `nameLen` bytes) below `root`, made through descriptors. */
  function nest(root: string, levels: number, nameLen = 1): void {
    const name = 'a'.repeat(nameLen);
    let fd = openSync(root, 'r');
    for (let i = 0; i < levels; i++) {
      mkdirat(fd, name, 0o755);
      const next = openat2(fd, name, O_RDONLY | O_DIRECTORY, 0, BENEATH_NO_LINKS);
      closeSync(fd);
      fd = next;
    }
    closeSync(openat2(fd, 'leaf.txt', O_WRONLY | O_CREAT, 0o644, BENEATH_NO_LINKS));
    closeSync(fd);
  }

  it('archives and restores a tree exactly at the depth limit (255 directories below the root)', async () => {
    const tree = await fsp.mkdtemp(join(work, 'deep-ok-'));
    nest(tree, MAX_WALK_DEPTH - 1);
    const path = join(work, 'deep-ok.tar.gz');
    expect(await archiveTo(tree, path)).toEqual({ fileCount: 1, totalBytes: 0 });
    const nsRoot = await freshNamespace();
    await restoreArchive(createReadStream(path), nsRoot, unlimited);
    expect(await manifest(nsRoot)).toEqual(await manifest(tree));
  });

  it('refuses one level deeper, through both the stream and done', async () => {
    const tree = await fsp.mkdtemp(join(work, 'deep-no-'));
    nest(tree, MAX_WALK_DEPTH);
    const { stream, done } = archiveDir(tree);
    const streamErr = new Promise((resolve) => stream.on('error', resolve));
    stream.resume();
    const err = await done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'tree_too_deep', status: 422 });
    expect((err as AppError).detail).toMatch(
      /^Snapshot not taken: the tree is deeper than 256 directory levels \(at workspace\/a\/a\/.*…\); a snapshot never leaves part of the tree out$/,
    );
    expect(await streamErr).toBe(err);
  });

  it('refuses a path longer than restore accepts (4096 bytes)', async () => {
    const tree = await fsp.mkdtemp(join(work, 'long-'));
    nest(tree, 17, 255); // 17 × 256 bytes: only reachable through descriptors
    try {
      const { stream, done } = archiveDir(tree);
      stream.on('error', () => {}).resume();
      const err = await done.catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'tree_too_deep' });
      expect((err as AppError).detail).toMatch(
        /^Snapshot not taken: a path is longer than 4096 bytes \(at workspace\/aaa/,
      );
    } finally {
      // Too long for path-based clean-up too.
      const fd = openSync(work, 'r');
      await removeTreeAt(fd, basename(tree), fd).finally(() => closeSync(fd));
    }
  });
});
