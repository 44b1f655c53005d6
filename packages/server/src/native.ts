/**
 * The native addon (native/trove_native.c, built by `npm ci` through node-gyp
 * into build/Release). It is required: every operation on a namespace tree
 * resolves beneath a held descriptor with its openat2/*at calls (src/tree/),
 * and the server refuses to start without it rather than fall back to path
 * strings. It also gives downloads sendfile (http/send-file.ts), which
 * TROVE_NATIVE_IO=0 turns off (buffered writes instead; for comparisons).
 */
import { createRequire } from 'node:module';

export interface TroveNative {
  /** Bytes sent (> 0), 0 at end of file, or -errno (-EAGAIN: the socket's send buffer is full). */
  sendfile(socketFd: number, fileFd: number, offset: number, count: number): number;
  openat2(dirFd: number, path: string | Buffer, flags: number, mode: number, resolve: number): number;
  openat2Async(
    dirFd: number,
    path: string | Buffer,
    flags: number,
    mode: number,
    resolve: number,
    cb: (r: number) => void,
  ): void;
  mkdirat(dirFd: number, name: string | Buffer, mode: number): number;
  mkdiratAsync(dirFd: number, name: string | Buffer, mode: number, cb: (r: number) => void): void;
  unlinkat(dirFd: number, name: string | Buffer, flags: number): number;
  unlinkatAsync(dirFd: number, name: string | Buffer, flags: number, cb: (r: number) => void): void;
  renameat2(
    oldDirFd: number,
    oldName: string | Buffer,
    newDirFd: number,
    newName: string | Buffer,
    flags: number,
  ): number;
  /** Writes every buffer at the current position, then fsyncs, as one thread-pool job; cb(bytes or -errno). */
  writevFsyncAsync(fd: number, buffers: Buffer[], cb: (r: number) => void): void;
  /**
   * Creates a file (openat2), chowns it unless uid is -1, writes every buffer and fsyncs it when `fsync`, as one
   * thread-pool job; cb(bytes or -errno, its descriptor). On an error nothing is left (no descriptor, no name).
   */
  createWritevAsync(
    dirFd: number,
    name: string | Buffer,
    flags: number,
    mode: number,
    resolve: number,
    uid: number,
    gid: number,
    buffers: Buffer[],
    fsync: boolean,
    cb: (r: number, fd: number) => void,
  ): void;
  renameat2Async(
    oldDirFd: number,
    oldName: string | Buffer,
    newDirFd: number,
    newName: string | Buffer,
    flags: number,
    cb: (r: number) => void,
  ): void;
  linkat(oldDirFd: number, oldName: string | Buffer, newDirFd: number, newName: string | Buffer, flags: number): number;
  linkatAsync(
    oldDirFd: number,
    oldName: string | Buffer,
    newDirFd: number,
    newName: string | Buffer,
    flags: number,
    cb: (r: number) => void,
  ): void;
  fchownat(dirFd: number, name: string | Buffer, uid: number, gid: number, flags: number): number;
  symlinkat(target: string | Buffer, dirFd: number, name: string | Buffer): number;
  fstatat(dirFd: number, name: string | Buffer, flags: number, out: Float64Array): number;
  sizesAt(dirFd: number, names: string[], out: Float64Array): number;
  fstat(fd: number, out: Float64Array): number;
  readlinkat(dirFd: number, name: string | Buffer): Buffer | number;
  getdents(dirFd: number, buf: Buffer): number;
  utimensat(dirFd: number, name: string | Buffer, sec: number, nsec: number, flags: number): number;
  lseek(fd: number, offset: number, whence: number): number;
  fsType(fd: number): number;
  btrfsSubvolCreate(dirFd: number, name: string | Buffer): number;
  btrfsQgroupLimit(fd: number, maxBytes: number): number;
  /**
   * fanotify over the file system holding `watchPath` (src/changes/): handle (> 0) or -errno. A thread
   * of its own reads it and passes records to `onBatch`, in queue order.
   */
  changesOpen(watchPath: string, treesPrefix: string, markerDir: string, onBatch: (batch: ChangeBatch) => void): number;
  /**
   * Queues a marker: `{marker: seq}` reaches onBatch after everything queued before it. 0 or -errno.
   * `ringSlot` (0–63): through that pre-made marker file (an open and a close, cheaper than a create),
   * only once its previous marker has been read.
   */
  changesMarker(handle: number, seq: number, ringSlot?: number): number;
  /** Stops the reading thread and closes the group. */
  changesClose(handle: number): number;
  /**
   * Starts `file` in a clone(CLONE_VM | CLONE_VFORK | CLONE_FILES) child: nothing of this process is copied,
   * its descriptor table included. plan[i] (at most 16) is the child's descriptor i: -2 a new socket pair, -1
   * none (0-2: /dev/null), else a descriptor of ours. `cwd`: its working directory (null: ours); `setsid`: a
   * session of its own. [pid, our end of each pair (or -1), ...], or [-errno].
   */
  spawn(file: string, argv: string[], env: string[], plan: number[], cwd: string | null, setsid: boolean): number[];
  /** -1 while `pid` runs, its wait status once it ended (reaped now), or -2 - errno. */
  waitNoHang(pid: number): number;
  /** A child of this process that ended and is not reaped yet (it stays so), 0 if none, or -errno. */
  exitedChild(): number;
}

/**
 * A batch of decoded fanotify records (native/trove_native.c, "change tracker"), as columns of equal
 * length (missing elements read as undefined).
 */
export interface ChangeBatch {
  /** 0: a file record; 1: a marker; 2: the kernel's queue overflowed. */
  kinds: Uint8Array;
  /** A file record's FAN_* bits, or a marker's seq. */
  nums: Float64Array;
  /** The process's cgroup slot (`trove-<pid>-<n>/ns-<hash>/slot-<k>`); null when it could not be told. */
  groups: Array<string | null | undefined>;
  /** The entry's full path when its directory could still be opened by its handle. */
  paths: Array<string | undefined>;
  /** Otherwise the directory's file handle (hex), to find its path from another record… */
  handles: Array<string | undefined>;
  /** …and the entry's name. */
  names: Array<string | undefined>;
  /** A directory entry's own handle (hex). */
  targets: Array<string | undefined>;
}

let loaded: TroveNative | undefined;
let loadError: Error | undefined;

/** The addon; throws a clear error when it was not built (the server cannot run without it). */
export function native(): TroveNative {
  if (loaded) return loaded;
  if (loadError) throw loadError;
  if (process.platform !== 'linux') {
    loadError = new Error('trove-server runs on Linux only (namespace trees need openat2, Linux ≥ 5.6)');
    throw loadError;
  }
  try {
    // src/ and dist/ are both one level below the package root, where node-gyp builds.
    loaded = createRequire(import.meta.url)('../build/Release/trove_native.node') as TroveNative;
    return loaded;
  } catch (err) {
    loadError = new Error(
      `trove-server: the native addon is missing (${(err as Error).message.split('\n')[0]}). ` +
        'It is built by `npm ci` (needs make, a C compiler and python3: apt-get install -y make gcc g++ python3); ' +
        'run `npm rebuild trove-server` after installing them.',
    );
    throw loadError;
  }
}
