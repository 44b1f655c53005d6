/** Agent paths and namespace paths (pure: no server). */
import { describe, expect, it } from 'vitest';
import {
  fromServerPath,
  InvalidPathError,
  shellQuote,
  toNamespacePath,
  toSdkListPath,
  toSdkPath,
} from '../src/paths.js';

describe('toNamespacePath', () => {
  it('maps agent paths to namespace-relative ones', () => {
    expect(toNamespacePath('/')).toBe('');
    expect(toNamespacePath('/a/b.txt')).toBe('a/b.txt');
    expect(toNamespacePath('a//b/./c/')).toBe('a/b/c');
    expect(toNamespacePath('/workspace/x')).toBe('workspace/x');
  });

  it('refuses .., ~ and NUL', () => {
    for (const bad of ['/../x', '/a/../../b', '..', '~/x', '/a\0b']) {
      expect(() => toNamespacePath(bad)).toThrow(InvalidPathError);
    }
  });
});

describe('server paths', () => {
  it('keeps a leading workspace directory apart from the prefixes the SDK and the server strip', () => {
    expect(toSdkListPath('workspace/x')).toBe('workspace/workspace/x');
    expect(toSdkPath('workspace/x')).toBe('workspace/workspace/workspace/x');
    expect(fromServerPath('workspace/workspace/x')).toBe('/workspace/x');
    expect(fromServerPath('workspace/')).toBe('/');
  });
});

describe('shellQuote', () => {
  it('quotes single quotes', () => {
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});
