import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, symlinkSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isInside, normalizeClientPath, resolveInRoot, followForRead } from '../../src/sandbox/paths.js';

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
