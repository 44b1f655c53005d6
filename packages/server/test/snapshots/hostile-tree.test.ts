/**
 * Capture and restore on trees a hostile tenant prepared or is changing while
 * the server works: links out of the tree (absolute, relative, /proc magic
 * links), FIFOs, sockets, a mount point, and a process exchanging a
 * directory with a symlink to a victim directory in a tight loop. Nothing
 * outside the tree may be read (archives hold links as links, never a
 * target's content or names) or removed, and nothing may block.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, promises as fsp, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { restoreArchive } from '../../src/snapshots/archive.js';
import { BLOCK, isZeroBlock, padding, parseHeader, parsePax, type PaxValues } from '../../src/snapshots/tar-format.js';
import { archiveDir, manifest, rmTree } from './support.js';
import { isRoot } from '../../../../test/helpers/root.js';

const ADDON = fileURLToPath(new URL('../../build/Release/trove_native.node', import.meta.url));
const unlimited = { maxBytes: 0, maxFiles: 0, maxEntryBytes: 0 };

interface Listed {
  type: string;
  path: string;
  link: string;
}

/** Every entry of a gzip'd tar (pax records applied), for assertions. */
function listArchive(tgz: Buffer): Listed[] {
  const tar = gunzipSync(tgz);
  const out: Listed[] = [];
  let pax: PaxValues = {};
  for (let off = 0; off + BLOCK <= tar.length;) {
    const block = tar.subarray(off, off + BLOCK);
    if (isZeroBlock(block)) break;
    const h = parseHeader(block);
    const size = h.typeflag === 'x' ? h.size : (pax.size ?? h.size);
    const data = tar.subarray(off + BLOCK, off + BLOCK + size);
    off += BLOCK + size + padding(size);
    if (h.typeflag === 'x') {
      pax = { ...pax, ...parsePax(data) };
      continue;
    }
    const path = (pax.sparseName ?? pax.path ?? h.name).toString('utf8').replace(/\/$/, '');
    out.push({ type: h.typeflag, path, link: (pax.linkpath ?? h.linkname).toString('utf8') });
    pax = {};
  }
  return out;
}

async function capture(tree: string): Promise<Buffer> {
  const { stream, done } = archiveDir(tree);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  await done;
  return Buffer.concat(chunks);
}

let work: string;
let outside: string;
const marker = `OUTSIDE-SECRET-${randomBytes(8).toString('hex')}`;

beforeAll(async () => {
  work = await fsp.mkdtemp(join(tmpdir(), 'trove-hostile-'));
  outside = join(work, 'outside');
  await fsp.mkdir(join(outside, 'sub'), { recursive: true });
  await fsp.writeFile(join(outside, 'secret.txt'), marker);
  await fsp.writeFile(join(outside, 'sub', `${marker}.txt`), marker);
});

afterAll(async () => {
  if (work) await rmTree(work);
});

describe('capture of a hostile tree', () => {
  let tree: string;
  let sock: Server;
  let mounted = false;

  beforeAll(async () => {
    tree = join(work, 'tree');
    await fsp.mkdir(join(tree, 'inner'), { recursive: true });
    await fsp.writeFile(join(tree, 'ok.txt'), 'fine');
    await fsp.symlink(outside, join(tree, 'link-abs-dir'));
    await fsp.symlink(join(outside, 'secret.txt'), join(tree, 'link-abs-file'));
    await fsp.symlink('../outside/secret.txt', join(tree, 'link-rel-file'));
    await fsp.symlink('../../outside', join(tree, 'inner', 'link-up-dir'));
    await fsp.symlink('/proc/self/root', join(tree, 'proc-root'));
    await fsp.symlink('/proc/self/cwd', join(tree, 'proc-cwd'));
    await fsp.symlink('/proc/self/fd/0', join(tree, 'proc-fd'));
    await fsp.symlink('/dev/zero', join(tree, 'dev-zero'));
    execFileSync('mkfifo', [join(tree, 'fifo'), join(tree, 'inner', 'fifo2')]);
    sock = createServer();
    await new Promise<void>((r) => sock.listen(join(tree, 'sock'), r));
    if (isRoot) {
      await fsp.mkdir(join(tree, 'mnt'));
      mounted = spawnSync('mount', ['--bind', outside, join(tree, 'mnt')]).status === 0;
    }
  });

  afterAll(async () => {
    sock?.close();
    if (mounted) spawnSync('umount', [join(tree, 'mnt')]);
  });

  it('archives the links as links, never what they point to, and never blocks on a FIFO', async () => {
    const tgz = await capture(tree);
    const tar = gunzipSync(tgz);
    // Not a byte of the outside files, not even their names.
    expect(tar.includes(marker)).toBe(false);
    const entries = listArchive(tgz);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect([...byPath.keys()].sort()).toEqual(
      [
        '.',
        'dev-zero',
        'inner',
        'inner/link-up-dir',
        'link-abs-dir',
        'link-abs-file',
        'link-rel-file',
        'ok.txt',
        'proc-cwd',
        'proc-fd',
        'proc-root',
      ].sort(),
    );
    const links = entries.filter((e) => e.type === '2').map((e): [string, string] => [e.path, e.link]);
    expect(new Map(links)).toEqual(
      new Map([
        ['dev-zero', '/dev/zero'],
        ['inner/link-up-dir', '../../outside'],
        ['link-abs-dir', outside],
        ['link-abs-file', join(outside, 'secret.txt')],
        ['link-rel-file', '../outside/secret.txt'],
        ['proc-cwd', '/proc/self/cwd'],
        ['proc-fd', '/proc/self/fd/0'],
        ['proc-root', '/proc/self/root'],
      ]),
    );
    expect(byPath.get('ok.txt')?.type).toBe('0');
    // A mount point is not the tenant's tree: RESOLVE_NO_XDEV keeps the walk out of it (the bind
    // mount shows the outside directory, whose marker-named file is not in the archive either).
    if (isRoot) expect(mounted).toBe(true);
  }, 20_000);

  it('restores the links as links, and nothing outside changes', async () => {
    const before = await manifest(outside);
    const tgzPath = join(work, 'hostile.tar.gz');
    await fsp.writeFile(tgzPath, await capture(tree));
    const nsRoot = join(await fsp.mkdtemp(join(work, 'ws-')), 'namespaces', 'ns');
    await restoreArchive(createReadStream(tgzPath), nsRoot, unlimited);
    expect(await fsp.readlink(join(nsRoot, 'link-abs-dir'))).toBe(outside);
    expect(await fsp.readlink(join(nsRoot, 'proc-root'))).toBe('/proc/self/root');
    expect((await fsp.lstat(join(nsRoot, 'inner', 'link-up-dir'))).isSymbolicLink()).toBe(true);
    expect(await manifest(outside)).toEqual(before);
  });
});

/**
 * A child process that exchanges `d` and `l` in the directory `root`
 * (renameat2 RENAME_EXCHANGE through a descriptor it holds, so it goes on
 * when the tree is moved) until `ms` pass or the names are gone for good.
 */
function startRacer(root: string, ms: number): { ready: Promise<void>; done: Promise<{ swaps: number }> } {
  const script = join(work, 'racer.cjs');
  writeFileSync(
    script,
    `const fs = require('node:fs');
const native = require(process.argv[2]);
const fd = fs.openSync(process.argv[3], fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
const deadline = Date.now() + Number(process.argv[4]);
let swaps = 0, misses = 0;
process.stdout.write('ready\\n');
while (Date.now() < deadline && misses < 200000) {
  for (let i = 0; i < 500; i++) {
    if (native.renameat2(fd, 'd', fd, 'l', 2) === 0) swaps++;
    else misses++;
  }
}
process.stdout.write(JSON.stringify({ swaps }) + '\\n');
`,
  );
  const child = spawn(process.execPath, [script, ADDON, root, String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let onReady: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  const done = new Promise<{ swaps: number }>((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.split('\n')[1]!) as { swaps: number })
        : reject(new Error(`racer exited ${code}`)),
    ),
  );
  return { ready, done };
}

/** `d`: a directory of the tree with files; `l`: a link to the victim directory outside. */
async function racyTree(root: string, victim: string): Promise<void> {
  await fsp.mkdir(join(root, 'd'), { recursive: true });
  for (let i = 0; i < 30; i++) await fsp.writeFile(join(root, 'd', `inside-${i}.txt`), `inside ${i}`);
  await fsp.symlink(victim, join(root, 'l'));
}

describe('a tenant process exchanging a directory with a symlink to a victim', () => {
  it('capture never reads the victim, whatever instant the swap lands on', async () => {
    const victim = join(work, 'victim-capture');
    await fsp.mkdir(victim);
    for (let i = 0; i < 30; i++) await fsp.writeFile(join(victim, `${marker}-${i}.txt`), marker);
    const tree = join(work, 'race-capture');
    await racyTree(tree, victim);
    const racer = startRacer(tree, 4000);
    await racer.ready;
    let running = true;
    const finished = racer.done.finally(() => (running = false));
    let captures = 0;
    const seen = new Set<string>();
    while (running) {
      const tgz = await capture(tree);
      captures++;
      expect(gunzipSync(tgz).includes(marker)).toBe(false);
      for (const e of listArchive(tgz)) {
        if (e.path === '.') continue;
        expect(e.path).toMatch(/^(d|l)(\/inside-\d+\.txt)?$/);
        if (e.type === '2') expect(e.link).toBe(victim);
        if (e.path === 'd' || e.path === 'l') seen.add(`${e.path}:${e.type}`);
      }
    }
    const { swaps } = await finished;
    // The race was real: the swaps ran, and captures saw both names as both kinds.
    expect(swaps).toBeGreaterThan(1000);
    expect(captures).toBeGreaterThan(20);
    expect([...seen].sort()).toEqual(['d:2', 'd:5', 'l:2', 'l:5']);
    expect((await fsp.readdir(victim)).length).toBe(30);
  }, 30_000);

  it('restore removes the old tree without following the swapped link into the victim', async () => {
    const victim = join(work, 'victim-restore');
    await fsp.mkdir(join(victim, 'nested'), { recursive: true });
    for (let i = 0; i < 30; i++) await fsp.writeFile(join(victim, `keep-${i}.txt`), 'keep');
    await fsp.writeFile(join(victim, 'nested', 'keep.txt'), 'keep');
    const victimBefore = await manifest(victim);
    const src = join(work, 'race-src');
    await fsp.mkdir(src);
    await fsp.writeFile(join(src, 'new.txt'), 'new');
    const tgzPath = join(work, 'race-src.tar.gz');
    const { stream, done } = archiveDir(src);
    await pipeline(stream, createWriteStream(tgzPath));
    await done;
    let swaps = 0;
    for (let round = 0; round < 10; round++) {
      const nsRoot = join(await fsp.mkdtemp(join(work, 'ws-')), 'namespaces', 'ns');
      await racyTree(nsRoot, victim);
      const racer = startRacer(nsRoot, 2000);
      await racer.ready;
      await restoreArchive(createReadStream(tgzPath), nsRoot, unlimited, { durable: false });
      swaps += (await racer.done).swaps;
      expect(await fsp.readdir(nsRoot)).toEqual(['new.txt']);
      expect(await fsp.readdir(join(nsRoot, '..', '..', '.trees'))).toEqual([]);
      expect(await manifest(victim)).toEqual(victimBefore);
    }
    expect(swaps).toBeGreaterThan(1000);
  }, 60_000);
});
