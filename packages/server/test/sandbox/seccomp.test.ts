import { describe, expect, it } from 'vitest';
import { buildSeccompFilter } from '../../src/sandbox/seccomp.js';

/** A tiny classic-BPF interpreter: enough to check the filter's decisions. */
function evaluate(filter: Buffer, data: { nr: number; arch: number; arg0?: number }): number {
  const mem = Buffer.alloc(64);
  mem.writeInt32LE(data.nr, 0);
  mem.writeUInt32LE(data.arch, 4);
  mem.writeUInt32LE((data.arg0 ?? 0) >>> 0, 16);
  let acc = 0;
  for (let pc = 0; pc < filter.length / 8;) {
    const code = filter.readUInt16LE(pc * 8);
    const jt = filter.readUInt8(pc * 8 + 2);
    const jf = filter.readUInt8(pc * 8 + 3);
    const k = filter.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case 0x20:
        acc = mem.readUInt32LE(k);
        pc++;
        break;
      case 0x15:
        pc += 1 + (acc === k ? jt : jf);
        break;
      case 0x35:
        pc += 1 + (acc >= k ? jt : jf);
        break;
      case 0x45:
        pc += 1 + ((acc & k) !== 0 ? jt : jf);
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`unexpected opcode ${code}`);
    }
  }
  throw new Error('fell off the end');
}

const ALLOW = 0x7fff0000;
const EPERM = 0x00050001;
const ENOSYS = 0x00050026;
const X64 = 0xc000003e;

describe('seccomp filter', () => {
  const f = buildSeccompFilter('x64')!;

  it('is a whole number of sock_filter entries', () => {
    expect(f.length % 8).toBe(0);
    expect(buildSeccompFilter('arm64')!.length % 8).toBe(0);
  });

  it('allows ordinary syscalls and plain fork-style clone', () => {
    expect(evaluate(f, { nr: 0, arch: X64 })).toBe(ALLOW); // read
    expect(evaluate(f, { nr: 59, arch: X64 })).toBe(ALLOW); // execve
    expect(evaluate(f, { nr: 56, arch: X64, arg0: 0x01200011 })).toBe(ALLOW); // clone(CHILD_SETTID|CHILD_CLEARTID|SIGCHLD)
  });

  it('refuses namespace creation, mounts and keyrings with EPERM', () => {
    expect(evaluate(f, { nr: 56, arch: X64, arg0: 0x10000000 | 17 })).toBe(EPERM); // clone(CLONE_NEWUSER)
    expect(evaluate(f, { nr: 56, arch: X64, arg0: 0x20000000 })).toBe(EPERM); // clone(CLONE_NEWPID)
    for (const nr of [272, 308, 165, 166, 155, 250, 321, 298, 323]) expect(evaluate(f, { nr, arch: X64 })).toBe(EPERM);
  });

  it('answers clone3 with ENOSYS so libc falls back to clone', () => {
    expect(evaluate(f, { nr: 435, arch: X64 })).toBe(ENOSYS);
  });

  it('refuses x32-ABI numbers and foreign architectures', () => {
    expect(evaluate(f, { nr: 0x40000000 + 272, arch: X64 })).toBe(ENOSYS);
    expect(evaluate(f, { nr: 0, arch: 0x40000003 /* i386 */ })).toBe(ENOSYS);
  });

  it('has no filter for architectures without a table', () => {
    expect(buildSeccompFilter('mips')).toBeNull();
  });
});
