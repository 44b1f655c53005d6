import { afterAll, describe, expect, it } from 'vitest';
import {
  closeSync,
  existsSync,
  rmSync,
  mkdtempSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertFdInside,
  followForRead,
  isInside,
  mkdirInside,
  normalizeClientPath,
  openForRead,
  resolveInRoot,
} from '../../src/sandbox/paths.js';

describe('normalizeClientPath', () => {
  it('accepts every PROTOCOL.md form', () => {
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

describe('isInside', () => {
  it('uses path segments, not string prefixes', () => {
    expect(isInside('/ns/a', '/ns/a')).toBe(true);
    expect(isInside('/ns/a', '/ns/a/b')).toBe(true);
    expect(isInside('/ns/a', '/ns/a-evil')).toBe(false);
    expect(isInside('/ns/a', '/ns')).toBe(false);
    expect(isInside('/ns/a', '/ns/a/..b')).toBe(true);
  });
});

describe('resolveInRoot', () => {
  it('refuses symlinked ancestors and final links that lead outside', async () => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), 'paths-')));
    const root = join(base, 'root');
    mkdirSync(join(root, 'in'), { recursive: true });
    mkdirSync(join(base, 'outside'));
    symlinkSync('../outside', join(root, 'out'));
    symlinkSync('in', join(root, 'inlink'));
    await expect(resolveInRoot(root, 'out/x.txt')).rejects.toMatchObject({ code: 'path_outside_namespace' });
    const ok = await resolveInRoot(root, 'inlink/x.txt');
    expect(ok.abs).toBe(join(root, 'in', 'x.txt'));
    const final = await resolveInRoot(root, 'out');
    await expect(followForRead(final)).rejects.toMatchObject({ code: 'path_outside_namespace' });
    const missing = await resolveInRoot(root, 'a/b/c.txt');
    expect(missing.parent).toBe(join(root, 'a', 'b'));
  });
});

describe('resolveInRoot, mkdirInside and openForRead', () => {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  const fresh = () => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), 'paths-')));
    made.push(base);
    const root = join(base, 'root');
    mkdirSync(join(root, 'in'), { recursive: true });
    mkdirSync(join(base, 'outside'));
    writeFileSync(join(base, 'outside', 'secret'), 'secret');
    writeFileSync(join(root, 'file.txt'), 'inside');
    return { base, root };
  };
  const openFds = () => readdirSync('/proc/self/fd').length;

  it('reports a file used as a directory as not_a_directory', async () => {
    const { root } = fresh();
    await expect(resolveInRoot(root, 'file.txt/x')).rejects.toMatchObject({ code: 'not_a_directory' });
    await expect(resolveInRoot(root, 'file.txt/x/y')).rejects.toMatchObject({ code: 'not_a_directory' });
  });

  it('mkdirInside creates missing levels and nothing for an existing chain', async () => {
    const { root } = fresh();
    const r = await resolveInRoot(root, 'a/b/c.txt');
    expect(await mkdirInside(r)).toEqual([join(root, 'a'), join(root, 'a', 'b')]);
    expect(statSync(join(root, 'a', 'b')).isDirectory()).toBe(true);
    const again = await resolveInRoot(root, 'a/b/d.txt');
    expect(await mkdirInside(again)).toEqual([]);
    expect(again.parent).toBe(join(root, 'a', 'b'));
    expect(await mkdirInside(await resolveInRoot(root, 'top.txt'))).toEqual([]);
  });

  it('mkdirInside follows a link raced in after resolving only while it stays inside', async () => {
    const { base, root } = fresh();
    // Resolved while `a` was missing; then `a` appears as a link to a directory inside the root.
    const r = await resolveInRoot(root, 'a/b/c.txt');
    symlinkSync('in', join(root, 'a'));
    expect(await mkdirInside(r)).toEqual([join(root, 'in', 'b')]);
    expect(r.parent).toBe(join(root, 'in', 'b'));
    expect(r.abs).toBe(join(root, 'in', 'b', 'c.txt'));

    // The same race with a link that leads outside: refused, nothing created there.
    const out = await resolveInRoot(root, 'x/y/z.txt');
    symlinkSync(join(base, 'outside'), join(root, 'x'));
    await expect(mkdirInside(out)).rejects.toMatchObject({ code: 'path_outside_namespace' });
    expect(existsSync(join(base, 'outside', 'y'))).toBe(false);

    // And a plain file raced in where a directory is needed.
    const file = await resolveInRoot(root, 'f/g.txt');
    writeFileSync(join(root, 'f'), 'not a dir');
    await expect(mkdirInside(file)).rejects.toMatchObject({ code: 'not_a_directory' });
  });

  it('openForRead returns a descriptor of the file inside and closes it when the file is outside', async () => {
    const { base, root } = fresh();
    const before = openFds();
    const fd = await openForRead(root, join(root, 'file.txt'), 'file.txt');
    expect(typeof fd).toBe('number');
    expect(readFileSync(fd, 'utf8')).toBe('inside');
    assertFdInside(fd, root, 'file.txt');
    closeSync(fd);

    // A verified-looking path that is in fact outside (as after a swap): the descriptor check refuses it.
    await expect(openForRead(root, join(base, 'outside', 'secret'), 'secret')).rejects.toMatchObject({
      code: 'path_outside_namespace',
    });
    // A final symlink is never followed by the open itself.
    symlinkSync('file.txt', join(root, 'link'));
    await expect(openForRead(root, join(root, 'link'), 'link')).rejects.toMatchObject({ code: 'ELOOP' });
    expect(openFds()).toBe(before);
  });

  it('assertFdInside checks the descriptor, not the path it was opened by', () => {
    const { base, root } = fresh();
    const fd = openSync(join(base, 'outside', 'secret'), 'r');
    try {
      expect(() => assertFdInside(fd, root, 'secret')).toThrow(expect.objectContaining({ code: 'path_outside_namespace' }));
      expect(() => assertFdInside(fd, base, 'secret')).not.toThrow();
    } finally {
      closeSync(fd);
    }
  });
});
