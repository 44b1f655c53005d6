/**
 * writevFsyncAsync: an upload's last bytes and its fsync as one thread-pool job. Every buffer lands at the
 * descriptor's position, in order, the bytes written are returned, an empty list only fsyncs, and a failure
 * comes back as a system error with its code (the files service answers ENOSPC and EDQUOT from the code).
 */
import fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writevFsyncAsync } from '../../src/tree/sys.js';

const root = mkdtempSync(join(tmpdir(), 'trove-writev-fsync-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('writevFsyncAsync', () => {
  it('writes every buffer at the current position, in order, and returns the bytes written', async () => {
    const path = join(root, 'a');
    const fd = fs.openSync(path, 'w');
    try {
      fs.writeSync(fd, 'head:');
      const big = Buffer.alloc(3 * 1024 * 1024, 'x');
      const n = await writevFsyncAsync(fd, [Buffer.from('one,'), Buffer.alloc(0), big, Buffer.from(',two')]);
      expect(n).toBe(4 + 3 * 1024 * 1024 + 4);
    } finally {
      fs.closeSync(fd);
    }
    const got = fs.readFileSync(path);
    expect(got.length).toBe(5 + 4 + 3 * 1024 * 1024 + 4);
    expect(got.subarray(0, 9).toString()).toBe('head:one,');
    expect(got.subarray(got.length - 5).toString()).toBe('x,two');
  });

  it('with no buffers only fsyncs', async () => {
    const fd = fs.openSync(join(root, 'b'), 'w');
    try {
      expect(await writevFsyncAsync(fd, [])).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.statSync(join(root, 'b')).size).toBe(0);
  });

  it('a failure is a system error with its code', async () => {
    const fd = fs.openSync(join(root, 'a'), 'r');
    try {
      await expect(writevFsyncAsync(fd, [Buffer.from('nope')])).rejects.toMatchObject({
        code: 'EBADF',
        syscall: 'write',
      });
    } finally {
      fs.closeSync(fd);
    }
  });

  it('refuses arguments that are not a descriptor and an array of Buffers', async () => {
    await expect(writevFsyncAsync(-1, [])).rejects.toThrow('writevFsyncAsync(fd, buffers, callback)');
    await expect(writevFsyncAsync(1, ['text' as unknown as Buffer])).rejects.toThrow('an array of Buffers');
  });
});
