/**
 * Typed wrappers over the native addon's descriptor-relative calls: each
 * throws an Error with the errno's `code` (ENOENT, EXDEV…) as fs does, and the
 * *Async forms run on libuv's thread pool. Only the tree module uses these.
 */
import { constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { native } from '../native.js';

export const O_RDONLY = constants.O_RDONLY;
export const O_WRONLY = constants.O_WRONLY;
export const O_CREAT = constants.O_CREAT;
export const O_EXCL = constants.O_EXCL;
export const O_TRUNC = constants.O_TRUNC;
export const O_NOFOLLOW = constants.O_NOFOLLOW;
export const O_NONBLOCK = constants.O_NONBLOCK;
export const O_NOCTTY = constants.O_NOCTTY;
export const O_DIRECTORY = constants.O_DIRECTORY;
/** Linux's O_PATH: a descriptor that names a file without opening it for I/O. */
export const O_PATH = 0o10000000;
/** Linux's O_TMPFILE (includes O_DIRECTORY): an unnamed file in the given directory, linked later with linkat. */
export const O_TMPFILE = 0o20200000;

export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
/**
 * How every tenant path is resolved: never above the descriptor it starts
 * from (absolute paths, absolute links and `..` past it fail with EXDEV), no
 * /proc magic links, no mount crossings. Symlinks that stay beneath are followed.
 */
export const BENEATH = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
/** BENEATH without following any symlink (walks, and trees the server builds itself). */
export const BENEATH_NO_LINKS = BENEATH | RESOLVE_NO_SYMLINKS;

const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(osConstants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);

export interface SysError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export function sysError(rc: number, syscall: string): SysError {
  const code = errnoNames.get(-rc) ?? `E${-rc}`;
  const err = new Error(`${syscall}: ${code}`) as SysError;
  err.code = code;
  err.errno = rc;
  err.syscall = syscall;
  return err;
}

/** The error code of a thrown value (undefined when it is not a system error). */
export function errCode(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

function check(rc: number, syscall: string): number {
  if (rc < 0) throw sysError(rc, syscall);
  return rc;
}

function promise(syscall: string, start: (cb: (rc: number) => void) => void): Promise<number> {
  return new Promise((resolve, reject) => start((rc) => (rc < 0 ? reject(sysError(rc, syscall)) : resolve(rc))));
}

/** fstat/fstatat result (the fields the server uses). */
export class Stat {
  constructor(private readonly v: Float64Array) {}
  get mode(): number {
    return this.v[0]!;
  }
  get uid(): number {
    return this.v[1]!;
  }
  get gid(): number {
    return this.v[2]!;
  }
  get size(): number {
    return this.v[3]!;
  }
  get mtimeSec(): number {
    return this.v[4]!;
  }
  get mtimeNsec(): number {
    return this.v[5]!;
  }
  get mtimeMs(): number {
    return this.v[4]! * 1000 + this.v[5]! / 1e6;
  }
  get ino(): number {
    return this.v[6]!;
  }
  get dev(): number {
    return this.v[7]!;
  }
  get nlink(): number {
    return this.v[8]!;
  }
  /** 512-byte blocks allocated (less than size / 512 for a sparse file). */
  get blocks(): number {
    return this.v[9]!;
  }
  isDirectory(): boolean {
    return (this.v[0]! & S_IFMT) === S_IFDIR;
  }
  isFile(): boolean {
    return (this.v[0]! & S_IFMT) === S_IFREG;
  }
  isSymbolicLink(): boolean {
    return (this.v[0]! & S_IFMT) === S_IFLNK;
  }
}

export function openat2(dirFd: number, path: string | Buffer, flags: number, mode: number, resolve: number): number {
  return check(native().openat2(dirFd, path, flags, mode, resolve), 'openat2');
}

export function openat2Async(
  dirFd: number,
  path: string | Buffer,
  flags: number,
  mode: number,
  resolve: number,
): Promise<number> {
  return promise('openat2', (cb) => native().openat2Async(dirFd, path, flags, mode, resolve, cb));
}

export function mkdirat(dirFd: number, name: string | Buffer, mode: number): void {
  check(native().mkdirat(dirFd, name, mode), 'mkdirat');
}

export function mkdiratAsync(dirFd: number, name: string | Buffer, mode: number): Promise<number> {
  return promise('mkdirat', (cb) => native().mkdiratAsync(dirFd, name, mode, cb));
}

export function unlinkat(dirFd: number, name: string | Buffer, flags: number): void {
  check(native().unlinkat(dirFd, name, flags), 'unlinkat');
}

export function unlinkatAsync(dirFd: number, name: string | Buffer, flags: number): Promise<number> {
  return promise('unlinkat', (cb) => native().unlinkatAsync(dirFd, name, flags, cb));
}

export function renameat2(
  oldDirFd: number,
  oldName: string | Buffer,
  newDirFd: number,
  newName: string | Buffer,
  flags = 0,
): void {
  check(native().renameat2(oldDirFd, oldName, newDirFd, newName, flags), 'renameat2');
}

/**
 * Writes all of `buffers` at the descriptor's position, then fsyncs it: one thread-pool job, where a write
 * and an fsync are two, each waiting for the event loop again before the next starts. Resolves to the bytes
 * written; a short write is continued, and its error (ENOSPC, EDQUOT) reported as the write's.
 */
export function writevFsyncAsync(fd: number, buffers: Buffer[]): Promise<number> {
  return promise('write', (cb) => native().writevFsyncAsync(fd, buffers, cb));
}

/**
 * Creates a new file beneath `dirFd` (openat2 with `flags`, which hold O_CREAT|O_EXCL, or O_TMPFILE with name
 * "."), chowns it to uid:gid (uid -1: not), writes all of `buffers` and fsyncs it when `fsync`: one thread-pool
 * job. Resolves to its descriptor; on an error nothing is left behind (the descriptor closed, a name removed).
 */
export function createWritevAsync(
  dirFd: number,
  name: string | Buffer,
  flags: number,
  mode: number,
  resolve: number,
  owner: { uid: number; gid: number } | null,
  buffers: Buffer[],
  fsync: boolean,
): Promise<number> {
  return new Promise((ok, fail) =>
    native().createWritevAsync(
      dirFd,
      name,
      flags,
      mode,
      resolve,
      owner ? owner.uid : -1,
      owner ? owner.gid : -1,
      buffers,
      fsync,
      (rc, fd) => (rc < 0 ? fail(sysError(rc, 'write')) : ok(fd)),
    ),
  );
}

export function renameat2Async(
  oldDirFd: number,
  oldName: string | Buffer,
  newDirFd: number,
  newName: string | Buffer,
  flags = 0,
): Promise<number> {
  return promise('renameat2', (cb) => native().renameat2Async(oldDirFd, oldName, newDirFd, newName, flags, cb));
}

export function linkat(
  oldDirFd: number,
  oldName: string | Buffer,
  newDirFd: number,
  newName: string | Buffer,
  flags = 0,
): void {
  check(native().linkat(oldDirFd, oldName, newDirFd, newName, flags), 'linkat');
}

export function fchownat(dirFd: number, name: string | Buffer, uid: number, gid: number, flags: number): void {
  check(native().fchownat(dirFd, name, uid, gid, flags), 'fchownat');
}

export function symlinkat(target: string | Buffer, dirFd: number, name: string | Buffer): void {
  check(native().symlinkat(target, dirFd, name), 'symlinkat');
}

/** lstat-like by default (AT_SYMLINK_NOFOLLOW); null when the name does not exist. */
export function fstatat(dirFd: number, name: string | Buffer, flags = AT_SYMLINK_NOFOLLOW): Stat | null {
  const out = new Float64Array(13);
  const rc = native().fstatat(dirFd, name, flags, out);
  if (rc === -osConstants.errno.ENOENT) return null;
  check(rc, 'fstatat');
  return new Stat(out);
}

/**
 * The size of each of `names` in `dirFd` when it is a regular file (the last component not followed), else
 * null (a directory, a symlink, gone, unreadable): one native call for the lot.
 */
export function regularSizesAt(dirFd: number, names: string[]): Array<number | null> {
  const out = new Float64Array(names.length);
  check(native().sizesAt(dirFd, names, out), 'sizesAt');
  return Array.from(out, (size) => (size < 0 ? null : size));
}

export function fstat(fd: number): Stat {
  const out = new Float64Array(13);
  check(native().fstat(fd, out), 'fstat');
  return new Stat(out);
}

export function readlinkat(dirFd: number, name: string | Buffer): Buffer {
  const r = native().readlinkat(dirFd, name);
  if (typeof r === 'number') throw sysError(r, 'readlinkat');
  return r;
}

export function utimensat(
  dirFd: number,
  name: string | Buffer,
  sec: number,
  nsec: number,
  flags = AT_SYMLINK_NOFOLLOW,
): void {
  check(native().utimensat(dirFd, name, sec, nsec, flags), 'utimensat');
}

/** SEEK_DATA / SEEK_HOLE: the offset, or -1 past the last data (ENXIO). */
export function lseek(fd: number, offset: number, whence: number): number {
  const rc = native().lseek(fd, offset, whence);
  if (rc === -osConstants.errno.ENXIO) return -1;
  return check(rc, 'lseek');
}

export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_LNK = 10;
export const DT_UNKNOWN = 0;

export interface DirEntry {
  /** Raw name bytes (any bytes but NUL and '/'). */
  name: Buffer;
  /** d_type: DT_DIR, DT_REG, DT_LNK, other, or DT_UNKNOWN (fstatat then). */
  type: number;
}

/**
 * Reads the next batch of entries of an open directory (its position lives in
 * the descriptor), without '.' and '..'. An empty array means the end.
 * `buf` bounds the batch: the caller decides how much of a huge directory is in memory.
 */
export function readDirBatch(dirFd: number, buf: Buffer): DirEntry[] {
  const out: DirEntry[] = [];
  for (;;) {
    const n = native().getdents(dirFd, buf);
    if (n < 0) throw sysError(n, 'getdents64');
    if (n === 0) return out;
    let off = 0;
    while (off < n) {
      // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
      const reclen = buf.readUInt16LE(off + 16);
      const type = buf[off + 18]!;
      const start = off + 19;
      let end = start;
      while (buf[end] !== 0) end++;
      const isDot = end - start === 1 && buf[start] === 0x2e;
      const isDotDot = end - start === 2 && buf[start] === 0x2e && buf[start + 1] === 0x2e;
      if (!isDot && !isDotDot) out.push({ name: Buffer.from(buf.subarray(start, end)), type });
      off += reclen;
    }
    if (out.length > 0) return out;
  }
}
