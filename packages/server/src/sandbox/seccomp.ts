/**
 * A small classic-BPF seccomp filter handed to bubblewrap (`--seccomp FD`).
 *
 * Why: when the server runs as root, bubblewrap runs privileged without a user
 * namespace (so it can reach the root-only data dir), which means the sandbox
 * could otherwise create its own user namespace and reach kernel code that is
 * normally root-only (mount, netfilter, ...). The filter refuses namespace
 * creation and a few syscalls with a long CVE history that no file/media tool
 * needs. Everything else is allowed: this is defence in depth, not the wall.
 */
import { arch, endianness } from 'node:os';

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;

const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;

// Offsets in struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; } (args[0] low word on LE).
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG0 = 16;

// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
const CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

interface ArchTable {
  auditArch: number;
  /** x86_64 also accepts x32-ABI numbers (bit 30 set); they would bypass a per-number list. */
  x32Bit?: number;
  clone: number;
  clone3: number;
  /** Refused with EPERM. */
  denied: number[];
}

const TABLES: Record<string, ArchTable> = {
  x64: {
    auditArch: 0xc000003e,
    x32Bit: 0x40000000,
    clone: 56,
    clone3: 435,
    // unshare setns mount umount2 pivot_root chroot open_tree move_mount fsopen fsconfig fsmount fspick
    // mount_setattr keyctl add_key request_key perf_event_open bpf userfaultfd io_uring_{setup,enter,register}
    denied: [
      272, 308, 165, 166, 155, 161, 428, 429, 430, 431, 432, 433, 442, 250, 248, 249, 298, 321, 323, 425, 426, 427,
    ],
  },
  arm64: {
    auditArch: 0xc00000b7,
    clone: 220,
    clone3: 435,
    denied: [97, 268, 40, 39, 41, 51, 428, 429, 430, 431, 432, 433, 442, 219, 217, 218, 241, 280, 282, 425, 426, 427],
  },
};

type Target = string | number;
interface Insn {
  code: number;
  jt: Target;
  jf: Target;
  k: number;
  label?: string;
}

/**
 * Returns the filter as raw `struct sock_filter[]` bytes, or null on an
 * architecture we have no syscall table for (the sandbox then runs without it).
 */
export function buildSeccompFilter(cpu: string = arch()): Buffer | null {
  const t = TABLES[cpu];
  if (!t || endianness() !== 'LE') return null;
  const prog: Insn[] = [];
  const op = (code: number, k: number, jt: Target = 0, jf: Target = 0, label?: string) =>
    prog.push({ code, k, jt, jf, label });

  op(LD_W_ABS, OFF_ARCH);
  op(JEQ_K, t.auditArch, 0, 'enosys');
  op(LD_W_ABS, OFF_NR);
  if (t.x32Bit !== undefined) op(JGE_K, t.x32Bit, 'enosys', 0);
  op(JEQ_K, t.clone, 'clone', 0);
  // clone3 passes flags in a struct BPF cannot read; ENOSYS makes glibc fall back to clone.
  op(JEQ_K, t.clone3, 'enosys', 0);
  for (const nr of t.denied) op(JEQ_K, nr, 'eperm', 0);
  op(RET_K, RET_ALLOW);
  op(LD_W_ABS, OFF_ARG0, 0, 0, 'clone');
  op(JSET_K, CLONE_NS_FLAGS, 'eperm', 0);
  op(RET_K, RET_ALLOW);
  op(RET_K, RET_ERRNO | EPERM, 0, 0, 'eperm');
  op(RET_K, RET_ERRNO | ENOSYS, 0, 0, 'enosys');

  const at = new Map<string, number>();
  prog.forEach((insn, i) => insn.label && at.set(insn.label, i));
  const rel = (from: number, target: Target): number => {
    if (typeof target === 'number') return target;
    const to = at.get(target);
    if (to === undefined) throw new Error(`seccomp: unknown label ${target}`);
    const off = to - from - 1;
    if (off < 0 || off > 255) throw new Error(`seccomp: jump to ${target} out of range`);
    return off;
  };
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, i) => {
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(rel(i, insn.jt), i * 8 + 2);
    buf.writeUInt8(rel(i, insn.jf), i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}
