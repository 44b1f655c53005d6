/**
 * Shared pieces of the snapshot tests: a tree manifest (what "restored
 * exactly" means), a fixture tree with every kind of entry, a hand-rolled tar
 * writer for malicious archives, and a transpiled copy of the snapshot
 * modules for child processes (plain node cannot load the .ts sources).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { createArchive, type ArchiveStats, type CreateArchiveOptions } from '../../src/snapshots/archive.js';

export interface ManifestEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  size: number;
  sha256: string | null;
  link: string | null;
  /** Microseconds: what Node's utimes can set (the archive keeps nanoseconds). */
  mtimeUs: number;
}

function nameOf(b: Buffer): string {
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : `hex:${b.toString('hex')}`;
}

/** Every entry under `root` (never following links), sorted; the root itself as ".". */
export async function manifest(root: string, opts: { mtimes?: boolean } = {}): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  const visit = async (abs: Buffer, rel: string) => {
    const st = await fsp.lstat(abs, { bigint: true });
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    let sha256: string | null = null;
    if (type === 'file')
      sha256 = createHash('sha256')
        .update(await fsp.readFile(abs))
        .digest('hex');
    const link = type === 'symlink' ? nameOf(await fsp.readlink(abs, { encoding: 'buffer' })) : null;
    out.push({
      path: rel,
      type,
      mode: Number(st.mode & 0o7777n),
      size: type === 'file' ? Number(st.size) : 0,
      sha256,
      link,
      mtimeUs: opts.mtimes === false ? 0 : Number(st.mtimeNs / 1000n),
    });
    if (type === 'dir') {
      const names = (await fsp.readdir(abs, { encoding: 'buffer' })) as Buffer[];
      for (const n of names)
        await visit(Buffer.concat([abs, Buffer.from('/'), n]), rel === '.' ? nameOf(n) : `${rel}/${nameOf(n)}`);
    }
  };
  await visit(Buffer.from(root), '.');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** rm -rf that copes with read-only directories (shared by every test that leaves one). */
export { rmTree } from '../../../../test/helpers/root.js';

/** Deterministic pseudo-random bytes (xorshift), so fixtures are reproducible. */
export function pseudoRandom(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

async function setTimes(p: string, sec: number, usec: number): Promise<void> {
  const t = sec + (usec + 0.5) / 1e6;
  await fsp.lutimes(p, t, t);
}

/**
 * A tree with every kind of entry a namespace can hold: nested and empty
 * directories, binary, empty and large files, links inside / dangling /
 * outside (absolute and relative), unicode and non-UTF-8 names, long paths
 * (pax), odd modes (0600, 0755, 0444, a 0555 directory) and sub-second mtimes.
 */
export async function buildFixtureTree(root: string): Promise<void> {
  await fsp.mkdir(root, { recursive: true });
  const file = async (rel: string | Buffer, content: Buffer | string, mode = 0o644) => {
    const p = typeof rel === 'string' ? join(root, rel) : Buffer.concat([Buffer.from(root + '/'), rel]);
    await fsp.writeFile(p, content);
    await fsp.chmod(p, mode);
  };
  await fsp.mkdir(join(root, 'src/lib/deep/er/still'), { recursive: true });
  await fsp.mkdir(join(root, 'empty-dir'));
  await fsp.mkdir(join(root, 'nested-empty/a/b'), { recursive: true });
  await file('README.md', '# hello\n');
  await file('src/main.py', 'print("hi")\n');
  await file('src/lib/deep/er/still/bottom.txt', 'bottom\n');
  await file('empty.txt', '');
  await file('binary.bin', pseudoRandom(70_000, 7));
  await file('exactly-512.bin', pseudoRandom(512, 8));
  await file('large-streamed.bin', pseudoRandom(1_500_000, 9)); // > 1 MiB: streamed on create and restore
  await file('medium.bin', pseudoRandom(300_000, 10)); // > 256 KiB: written asynchronously on restore
  await file('run.sh', '#!/bin/sh\necho run\n', 0o755);
  await file('secret.key', 'k', 0o600);
  await file('readonly.txt', 'ro', 0o444);
  await file('sticky-odd', 'x', 0o1644);
  await file('unicode-ünïcødé-日本語-🚀.txt', 'unicode\n');
  await fsp.mkdir(join(root, 'répertoire-✓'));
  await file('répertoire-✓/fichier.txt', 'fr\n');
  await file(Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0x2d, 0xe9, 0xff]), 'not utf-8 name\n');
  const longDir = 'd'.repeat(120) + '/' + 'e'.repeat(120) + '/' + 'f'.repeat(120);
  await fsp.mkdir(join(root, longDir), { recursive: true });
  await file(`${longDir}/${'g'.repeat(200)}.txt`, 'long path needs pax\n');
  await file('name-with-99-bytes-' + 'x'.repeat(81), 'boundary');
  await file('name-with-100-bytes-' + 'x'.repeat(81), 'boundary');
  await fsp.symlink('src/main.py', join(root, 'link-inside'));
  await fsp.symlink('src', join(root, 'link-to-dir'));
  await fsp.symlink('does/not/exist', join(root, 'link-dangling'));
  await fsp.symlink('/etc/passwd', join(root, 'link-outside-absolute'));
  await fsp.symlink('../../../../etc/hostname', join(root, 'src/link-outside-relative'));
  await fsp.symlink('x'.repeat(150), join(root, 'link-long-target'));
  await fsp.mkdir(join(root, 'locked'));
  await file('locked/inside.txt', 'inside a read-only dir\n');
  await fsp.chmod(join(root, 'src/lib'), 0o700);
  // Times last (writing into a directory changes its mtime). The non-UTF-8
  // name cannot be reached by a string path; it keeps its creation time.
  let i = 0;
  const walk = async (abs: string): Promise<void> => {
    for (const n of await fsp.readdir(abs)) {
      if (n.includes('\ufffd')) continue;
      const p = join(abs, n);
      if ((await fsp.lstat(p)).isDirectory()) await walk(p);
      i++;
      await setTimes(p, 1_600_000_000 + i * 1000, (i * 123_457) % 1_000_000);
    }
  };
  await walk(root);
  await fsp.chmod(join(root, 'locked'), 0o555);
  await setTimes(join(root, 'locked'), 1_650_000_000, 1);
  await setTimes(root, 1_660_000_000, 999_999);
}

/* ---------- hand-built tar archives ---------- */

export interface RawEntry {
  name: string | Buffer;
  type?: string; // typeflag, default '0'
  content?: Buffer | string;
  /** Declared size (defaults to the content length); may lie. */
  size?: number;
  linkname?: string;
  mode?: number;
  /** Corrupt the checksum. */
  badChecksum?: boolean;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

export function rawHeader(e: RawEntry): Buffer {
  const h = Buffer.alloc(512);
  const name = typeof e.name === 'string' ? Buffer.from(e.name) : e.name;
  name.copy(h, 0, 0, 100);
  const content = e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content);
  h.write(octal(e.mode ?? 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(e.size ?? content.length, 12), 124, 'ascii');
  h.write(octal(1_700_000_000, 12), 136, 'ascii');
  h.write(e.type ?? '0', 156, 'latin1');
  if (e.linkname) h.write(e.linkname, 157, 'utf8');
  h.write('ustar\u000000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  if (e.badChecksum) sum += 1;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

/** A complete entry: header, content, padding. */
export function rawEntry(e: RawEntry): Buffer {
  const content = e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content);
  const pad = (512 - (content.length % 512)) % 512;
  return Buffer.concat([rawHeader(e), content, Buffer.alloc(pad)]);
}

/** A pax extended header carrying the given records. */
export function paxEntry(records: Record<string, string | Buffer>): Buffer {
  const parts = Object.entries(records).map(([k, v]) => {
    const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.from(v), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return Buffer.concat([Buffer.from(String(len)), body]);
  });
  return rawEntry({ name: 'PaxHeaders/x', type: 'x', content: Buffer.concat(parts) });
}

/** gzip of the entries plus the end-of-archive marker (unless `noEnd`). */
export function tgz(entries: Buffer[], opts: { noEnd?: boolean } = {}): Buffer {
  return gzipSync(Buffer.concat([...entries, opts.noEnd ? Buffer.alloc(0) : Buffer.alloc(1024)]));
}

/* ---------- descriptors ---------- */

/** Opens a test directory for createArchive (which only takes descriptors). */
export function openDir(path: string): number {
  return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}

/** createArchive of the directory at `path`, its descriptor closed once the archive is done. */
export function archiveDir(
  path: string,
  opts: CreateArchiveOptions = {},
): { stream: NodeJS.ReadableStream; done: Promise<ArchiveStats> } {
  const fd = openDir(path);
  const r = createArchive(fd, opts);
  const done = r.done.finally(() => closeSync(fd));
  done.catch(() => {});
  return { stream: r.stream, done };
}

/* ---------- transpiled modules for child processes ---------- */

const srcDir = fileURLToPath(new URL('../../src/', import.meta.url));
const buildDir = fileURLToPath(new URL('../../build/', import.meta.url));

/**
 * Transpiles errors.ts, native.ts, tree/*.ts and snapshots/*.ts into
 * `outDir/src` (ESM .js), with `outDir/build` linked to the package's native
 * build (the addon is found relative to the modules), and returns the path of
 * snapshots/archive.js.
 */
export function transpileSnapshots(outDir: string): string {
  const files = [
    'errors.ts',
    'native.ts',
    ...['tree', 'snapshots'].flatMap((d) =>
      readdirSync(join(srcDir, d))
        .filter((f) => f.endsWith('.ts'))
        .map((f) => `${d}/${f}`),
    ),
  ];
  for (const f of files) {
    const out = ts.transpileModule(readFileSync(join(srcDir, f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    const dest = join(outDir, 'src', f.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, out.outputText);
  }
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}');
  symlinkSync(buildDir, join(outDir, 'build'));
  return join(outDir, 'src/snapshots/archive.js');
}
