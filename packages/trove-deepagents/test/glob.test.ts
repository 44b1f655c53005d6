/** The glob dialect of `glob` (pure: no server). */
import { describe, expect, it } from 'vitest';
import { globToRegExp } from '../src/glob.js';

const matches = (pattern: string, path: string) => globToRegExp(pattern).test(path);

describe('globToRegExp', () => {
  it('* and ? stay within a segment', () => {
    expect(matches('*.py', 'a.py')).toBe(true);
    expect(matches('*.py', 'd/a.py')).toBe(false);
    expect(matches('?.py', 'a.py')).toBe(true);
    expect(matches('?.py', 'ab.py')).toBe(false);
  });

  it('** spans segments, and **/ also matches none', () => {
    expect(matches('**/*.py', 'a.py')).toBe(true);
    expect(matches('**/*.py', 'x/y/a.py')).toBe(true);
    expect(matches('src/**', 'src/a/b')).toBe(true);
    expect(matches('src/**/b.ts', 'src/b.ts')).toBe(true);
  });

  it('classes, negated classes and braces', () => {
    expect(matches('[ab].txt', 'a.txt')).toBe(true);
    expect(matches('[!ab].txt', 'a.txt')).toBe(false);
    expect(matches('[!ab].txt', 'c.txt')).toBe(true);
    expect(matches('*.{js,ts}', 'x.ts')).toBe(true);
    expect(matches('*.{js,ts}', 'x.py')).toBe(false);
  });

  it('treats regex characters literally', () => {
    expect(matches('a+b(1).txt', 'a+b(1).txt')).toBe(true);
    expect(matches('a.txt', 'abtxt')).toBe(false);
    expect(matches('$x^', '$x^')).toBe(true);
    expect(matches('日本*.txt', '日本語.txt')).toBe(true);
  });
});
