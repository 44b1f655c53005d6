/**
 * regularSizesAt (src/tree/sys.ts, the addon's sizesAt): the sizes the change tracker reports for a
 * command's written files, a directory at a time. A regular file gives its size; anything else (a
 * directory, a symlink, which is never followed, a FIFO, a name that is gone or that no file can have)
 * gives null, and one such name does not spoil the others. A name is one component: `sub/inner` is
 * refused rather than looked up through the directory (whose `sub` could be a link the command left).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { O_DIRECTORY, O_RDONLY, regularSizesAt } from '../../src/tree/sys.js';

const dir = mkdtempSync(join(tmpdir(), 'trove-sizes-at-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('regularSizesAt', () => {
  it('gives each regular file its size and null for everything else, in the order asked', () => {
    writeFileSync(join(dir, 'a.txt'), 'hello');
    writeFileSync(join(dir, 'empty'), '');
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(70_000, 1));
    mkdirSync(join(dir, 'sub'));
    symlinkSync('a.txt', join(dir, 'link-to-file'));
    symlinkSync('/etc/passwd', join(dir, 'link-out'));
    writeFileSync(join(dir, 'sub', 'inner'), 'xyz');
    symlinkSync('sub', join(dir, 'link-to-dir'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const fd = openSync(dir, O_RDONLY | O_DIRECTORY);
    try {
      expect(
        regularSizesAt(fd, [
          'a.txt',
          'sub',
          'link-to-file',
          'missing',
          'empty',
          'link-out',
          'fifo',
          'big.bin',
          'sub/inner',
          'link-to-dir/inner',
          '',
          'a\0b',
        ]),
      ).toEqual([5, null, null, null, 0, null, null, 70_000, null, null, null, null]);
      expect(regularSizesAt(fd, [])).toEqual([]);
    } finally {
      closeSync(fd);
    }
  });

  it('refuses a bad descriptor argument with the call it expects', () => {
    expect(() => regularSizesAt(-1, ['a.txt'])).toThrow(
      'sizesAt(dirFd, names: string[], out: Float64Array(names.length))',
    );
  });
});
