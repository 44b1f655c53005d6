/**
 * The tree module on hostile trees: every kind of link, loop, special file and
 * mount a tenant can leave, resolved beneath the root descriptor.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizeClientPath, TreeStore, type NamespaceTree } from '../../src/tree/index.js';
import { isRoot, needsRoot, rmTree, withoutRoot } from '../../../../test/helpers/root.js';

const SECRET = 'top-secret-outside';

describe('normalizeClientPath', () => {
  it('accepts every docs/protocol.md form', () => {
    expect(normalizeClientPath('a/b.txt')).toBe('a/b.txt');
    expect(normalizeClientPath('/a/b.txt')).toBe('a/b.txt');
    expect(normalizeClientPath('workspace/a/b.txt')).toBe('a/b.txt');
    expect(normalizeClientPath('/workspace/a/b.txt')).toBe('a/b.txt');
    expect(normalizeClientPath('workspace/')).toBe('');
    expect(normalizeClientPath('workspace')).toBe('');
    expect(normalizeClientPath('')).toBe('');
    expect(normalizeClientPath('workspace/workspace/x')).toBe('workspace/x');
    expect(normalizeClientPath('a//./b/')).toBe('a/b');
  });
  it('refuses .., NUL, lone surrogates and over-long names', () => {
    for (const bad of ['..', 'a/../b', '../x', 'workspace/..', 'a\0b', '\ud800x', 'x'.repeat(256), 'a/'.repeat(2100)]) {
      expect(() => normalizeClientPath(bad), JSON.stringify(bad)).toThrow();
    }
    expect(() => normalizeClientPath(5)).toThrow();
  });
});

let base: string;
let root: string;
let outside: string;
let store: TreeStore;
let tree: NamespaceTree;
let mounted = false;

function fingerprint(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      out.push(`${p} ${st.mode} ${st.uid} ${st.size} ${st.mtimeMs}${st.isFile() ? ' ' + readFileSync(p, 'hex') : ''}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

beforeAll(async () => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'tree-')));
  root = join(base, 'data', 'ns');
  outside = join(base, 'outside');
  mkdirSync(root, { recursive: true });
  mkdirSync(join(outside, 'dir'), { recursive: true });
  writeFileSync(join(outside, 'secret.txt'), SECRET);
  writeFileSync(join(outside, 'dir', 'inner.txt'), SECRET);
  // What an exec could leave in its tree.
  mkdirSync(join(root, 'real', 'sub'), { recursive: true });
  writeFileSync(join(root, 'real', 'file.txt'), 'inside');
  writeFileSync(join(root, 'real', 'sub', 'deep.txt'), 'deep');
  symlinkSync(outside, join(root, 'abs-dir'));
  symlinkSync(join(outside, 'secret.txt'), join(root, 'abs-file'));
  symlinkSync('../../outside', join(root, 'dotdot-dir'));
  symlinkSync('../../outside/secret.txt', join(root, 'dotdot-file'));
  symlinkSync('real/../../..' + outside, join(root, 'mixed'));
  symlinkSync('loop-a', join(root, 'loop-b'));
  symlinkSync('loop-b', join(root, 'loop-a'));
  symlinkSync('self', join(root, 'self'));
  symlinkSync('/proc/self/root/' + outside.slice(1), join(root, 'proc-root'));
  symlinkSync('/proc/self/cwd', join(root, 'proc-cwd'));
  symlinkSync('real', join(root, 'in-dir'));
  symlinkSync('real/file.txt', join(root, 'in-file'));
  symlinkSync('real/sub/../file.txt', join(root, 'in-dotdot'));
  symlinkSync('nowhere', join(root, 'dangling'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  spawnSync('python3', [
    '-c',
    `import socket;socket.socket(socket.AF_UNIX).bind(${JSON.stringify(join(root, 'sock'))})`,
  ]);
  mkdirSync(join(root, 'mnt'));
  mounted = isRoot && spawnSync('mount', ['-t', 'tmpfs', 'none', join(root, 'mnt')]).status === 0;
  if (mounted) writeFileSync(join(root, 'mnt', 'on-other-fs.txt'), SECRET);
  store = new TreeStore(join(base, 'data'), { uid: 0, gid: 0, enabled: false });
  await store.start();
  tree = store.open(root)!;
});

afterAll(async () => {
  tree?.close();
  await store?.close();
  if (mounted) spawnSync('umount', [join(root, 'mnt')]);
  await rmTree(base);
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    const r = fn();
    if (typeof r === 'object' && r && 'fd' in r) fs.closeSync((r as { fd: number }).fd);
    else if (typeof r === 'number') fs.closeSync(r);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe('NamespaceTree resolution', () => {
  it('reads files and follows links that stay inside', () => {
    for (const p of ['real/file.txt', 'in-file', 'in-dotdot', 'in-dir/file.txt']) {
      const { fd, st } = tree.openFile(p);
      expect(fs.readFileSync(fd, 'utf8'), p).toBe('inside');
      expect(st.isFile()).toBe(true);
      fs.closeSync(fd);
    }
  });

  it('refuses absolute links, .. links, /proc magic links and loops as outside the namespace', () => {
    for (const p of [
      'abs-dir/secret.txt',
      'abs-file',
      'dotdot-dir/secret.txt',
      'dotdot-file',
      'mixed/secret.txt',
      'proc-root/secret.txt',
      'proc-cwd',
      'loop-a',
      'self',
      'abs-dir/dir/inner.txt',
    ]) {
      expect(
        codeOf(() => tree.openFile(p)),
        p,
      ).toBe('path_outside_namespace');
      expect(
        codeOf(() => tree.openDir(p)),
        p,
      ).toBe('path_outside_namespace');
    }
  });

  it.runIf(isRoot)(`refuses to cross a mount point inside the tree${needsRoot('mount')}`, () => {
    expect(mounted, 'tmpfs could be mounted in the test tree').toBe(true);
    expect(codeOf(() => tree.openFile('mnt/on-other-fs.txt'))).toBe('path_outside_namespace');
    expect(codeOf(() => tree.openDir('mnt'))).toBe('path_outside_namespace');
  });

  it('answers FIFOs and sockets as "not a regular file" without blocking, and as no directory', () => {
    expect(codeOf(() => tree.openFile('fifo'))).toBe('bad_request');
    expect(codeOf(() => tree.openFile('sock'))).toBe('bad_request');
    expect(codeOf(() => tree.openFile('fifo/x'))).toBe('path_not_found');
    expect(codeOf(() => tree.openDir('fifo'))).toBe('not_a_directory');
    expect(codeOf(() => tree.openDir('sock'))).toBe('not_a_directory');
  });

  it('reports missing paths, dangling links and files used as directories', () => {
    expect(codeOf(() => tree.openFile('nope'))).toBe('path_not_found');
    expect(codeOf(() => tree.openFile('dangling'))).toBe('path_not_found');
    expect(codeOf(() => tree.openFile('real/file.txt/x'))).toBe('path_not_found');
    expect(codeOf(() => tree.openFile('real'))).toBe('path_is_directory');
    expect(codeOf(() => tree.openDir('real/file.txt'))).toBe('not_a_directory');
  });

  it(`creates parents only beneath the root, through inside links, never through outside ones${withoutRoot('a mount point')}`, async () => {
    const before = fingerprint(outside);
    const leaving = ['abs-dir/new/x', 'dotdot-dir/new/x', 'proc-root/x/y', 'mixed/x/y', 'loop-a/x/y'];
    // Not root: mnt is a plain directory (nothing is mounted on it), so creating below it is right.
    for (const p of isRoot ? [...leaving, 'mnt/x/y'] : leaving) {
      await expect(tree.openParent(p, true), p).rejects.toMatchObject({ code: 'path_outside_namespace' });
    }
    await expect(tree.openParent('fifo/x/y', true)).rejects.toMatchObject({ code: 'not_a_directory' });
    await expect(tree.openParent('real/file.txt/x/y', true)).rejects.toMatchObject({ code: 'not_a_directory' });
    const dir = await tree.openParent('in-dir/made/deeper/x.txt', true);
    fs.closeSync(dir.fd);
    expect(statSync(join(root, 'real', 'made', 'deeper')).isDirectory()).toBe(true);
    expect(fingerprint(outside)).toEqual(before);
  });

  it('writes through a temp file in the private scratch directory and renames it into place', async () => {
    const dir = await tree.openParent('abs-file', false);
    const tmp = await tree.createTemp(dir, [Buffer.from('replaced ')], false);
    expect(tmp.name).toMatch(/^upload-/);
    expect(readdirSync(root).some((n) => n.startsWith('upload-'))).toBe(false);
    expect(readdirSync(store.scratchDir)).toEqual([tmp.name]);
    fs.writeSync(tmp.fd, 'the link');
    await tree.commit(tmp, dir);
    fs.closeSync(tmp.fd);
    fs.closeSync(dir.fd);
    // The link itself was replaced; its target is untouched.
    expect(lstatSync(join(root, 'abs-file')).isFile()).toBe(true);
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe(SECRET);
    symlinkSync(join(outside, 'secret.txt'), join(root, 'abs-file-2'));
  });

  it('removes links, never their targets, and directories without following anything inside', async () => {
    const before = fingerprint(outside);
    mkdirSync(join(root, 'victim-tree', 'a', 'b'), { recursive: true });
    symlinkSync(outside, join(root, 'victim-tree', 'a', 'out'));
    symlinkSync(join(outside, 'secret.txt'), join(root, 'victim-tree', 'a', 'b', 'out-file'));
    chmodSync(join(root, 'victim-tree', 'a', 'b'), 0o555);
    for (const name of ['abs-dir', 'dotdot-dir', 'abs-file-2', 'victim-tree']) {
      const dir = await tree.openParent(name, false);
      expect(await tree.remove(dir), name).toBe(true);
      fs.closeSync(dir.fd);
      expect(existsSync(join(root, name)) || lstatSync(join(root, name), { throwIfNoEntry: false }) !== undefined).toBe(
        false,
      );
    }
    expect(fingerprint(outside)).toEqual(before);
    const dir = await tree.openParent('nothing-here', false);
    expect(await tree.remove(dir)).toBe(false);
    fs.closeSync(dir.fd);
  });

  it('removes trees deeper than a walk holds descriptors for', async () => {
    let p = join(root, 'deep');
    mkdirSync(p);
    const chain = 'd/'.repeat(600);
    // mkdir -p through relative steps: the full path is longer than PATH_MAX allows in one call.
    spawnSync('sh', [
      '-c',
      `cd ${JSON.stringify(p)} && for i in $(seq 600); do mkdir d && cd d; done && echo x > leaf`,
    ]);
    expect(chain.length).toBeGreaterThan(1000);
    const dir = await tree.openParent('deep', false);
    expect(await tree.remove(dir)).toBe(true);
    fs.closeSync(dir.fd);
    expect(existsSync(join(root, 'deep'))).toBe(false);
    p = store.scratchDir;
    expect(readdirSync(p)).toEqual([]);
  });

  it('lists without following links out, showing inside links as their targets', async () => {
    const { entries } = await tree.list('', true, 1000, 20);
    const names = entries.map((e) => e.rel);
    expect(names).toContain('real/sub/deep.txt');
    expect(names).toContain('in-dir');
    expect(names.some((n) => n.startsWith('in-dir/'))).toBe(false);
    expect(names.some((n) => n.includes('secret') || n.includes('inner') || n.startsWith('mnt/'))).toBe(false);
    expect(entries.find((e) => e.rel === 'in-dir')!.isDir).toBe(true);
    expect(entries.find((e) => e.rel === 'dotdot-file')!.isDir).toBe(false);
    await expect(tree.list('dotdot-dir', true, 1000, 20)).rejects.toMatchObject({ code: 'path_not_found' });
    await expect(tree.list('proc-root', true, 1000, 20)).rejects.toMatchObject({ code: 'path_outside_namespace' });
  });

  it('stops reading a huge directory at the cap', async () => {
    mkdirSync(join(root, 'huge'));
    for (let i = 0; i < 5000; i++) writeFileSync(join(root, 'huge', `f${i}`), '');
    const { entries, truncated } = await tree.list('huge', false, 1000, 20);
    expect(entries.length).toBe(1000);
    expect(truncated).toBe(true);
    const m = await tree.measure(100);
    expect(m.complete).toBe(false);
    const full = await tree.measure(1_000_000);
    expect(full.complete).toBe(true);
    expect(full.files).toBeGreaterThanOrEqual(5000);
  });
});
