/** How the editor reads the model's paths (pure: no server). */
import { describe, expect, it } from 'vitest';
import { InvalidPathError, WORKING_DIRECTORY } from '../src/index.js';
import { toNamespacePath, toSdkPath } from '../src/paths.js';

describe('toNamespacePath', () => {
  it('takes relative, ./, absolute-below-the-working-directory and / paths', () => {
    expect(toNamespacePath('a/b.txt')).toBe('a/b.txt');
    expect(toNamespacePath('./a/b.txt')).toBe('a/b.txt');
    expect(toNamespacePath(`${WORKING_DIRECTORY}/a/b.txt`)).toBe('a/b.txt');
    expect(toNamespacePath('/a/b.txt')).toBe('a/b.txt');
    expect(toNamespacePath('workspace/a.txt')).toBe('workspace/a.txt');
  });

  it('refuses .., NUL, empty paths and the directory itself', () => {
    for (const bad of ['../a', 'a/../../b', 'a\0b', '', '  ', WORKING_DIRECTORY, '/', '.']) {
      expect(() => toNamespacePath(bad)).toThrow(InvalidPathError);
    }
  });

  it('keeps a leading workspace directory apart from the SDK prefix', () => {
    expect(toSdkPath('workspace/a.txt')).toBe('workspace/workspace/workspace/a.txt');
  });
});
