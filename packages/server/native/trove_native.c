/*
 * trove_native: the system calls Node's fs API does not have. src/native.ts
 * loads it; the server refuses to start without it (every operation on a
 * namespace tree goes through these calls, see src/tree/).
 *
 * Descriptor-relative calls (the tree module's whole vocabulary):
 *   openat2(dirFd, path, flags, mode, resolve)        → fd | -errno
 *   mkdirat(dirFd, name, mode)                        → 0 | -errno
 *   unlinkat(dirFd, name, flags)                      → 0 | -errno
 *   renameat2(oldDirFd, old, newDirFd, new, flags)    → 0 | -errno
 *   fchownat(dirFd, name, uid, gid, flags)            → 0 | -errno
 *   symlinkat(target, dirFd, name)                    → 0 | -errno
 *   linkat(oldDirFd, old, newDirFd, new, flags)       → 0 | -errno
 *   utimensat(dirFd, name, sec, nsec, flags)          → 0 | -errno (atime = mtime)
 *   fstatat(dirFd, name, flags, out: Float64Array)    → 0 | -errno
 *   fstat(fd, out: Float64Array)                      → 0 | -errno
 *   sizesAt(dirFd, names: string[], out: Float64Array) → 0 (each name's size, lstat-like; -1: not a
 *                                                       regular file, not one component, or not found)
 *   readlinkat(dirFd, name)                           → Buffer | -errno
 *   getdents(dirFd, buf: Buffer)                      → bytes filled | -errno (linux_dirent64 records)
 *   lseek(fd, offset, whence)                         → offset | -errno (SEEK_DATA / SEEK_HOLE)
 *   fsType(fd)                                        → statfs f_type | -errno
 *   btrfsSubvolCreate(dirFd, name)                    → 0 | -errno (a subvolume instead of mkdirat)
 *   btrfsQgroupLimit(fd, maxBytes)                    → 0 | -errno (referenced-bytes limit of fd's subvolume; 0 = none)
 * Names and paths are strings (UTF-8) or Buffers (any bytes but NUL).
 * Each of openat2, mkdirat, unlinkat, renameat2 and linkat also has an
 * `...Async(..., callback(result))` form that runs on libuv's thread pool, for
 * calls that wait on the directory (creating, renaming, removing names).
 *
 * stat layout in `out` (13 doubles): mode, uid, gid, size, mtime sec, mtime
 * nsec, ino, dev, nlink, blocks, atime sec, atime nsec, blksize.
 *
 * And for downloads:
 *   sendfile(socketFd, fileFd, offset, count) → bytes sent (> 0), 0 at end of
 *   file, or -errno (-EAGAIN when the socket's send buffer is full: the socket
 *   is non-blocking, so the call never waits for the client). Synchronous.
 *
 * And the change tracker (src/changes/):
 *   changesOpen(watchPath, treesPrefix, markerDir, onBatch) → handle (> 0) | -errno
 *       fanotify on the file system holding watchPath (FAN_MARK_FILESYSTEM, FAN_REPORT_DFID_NAME_TARGET);
 *       a thread of its own reads it and hands decoded records to onBatch(records) in queue order.
 *   changesMarker(handle, seq) → 0 | -errno   a marker record {marker: seq} follows everything queued before
 *   changesClose(handle)       → 0
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/btrfs.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <node_api.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <poll.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define STAT_FIELDS 13

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value num(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

/* A path argument: a string or a Buffer, copied NUL-terminated into a heap string (freed by the caller). */
static char *path_arg(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  if (t == napi_string) {
    size_t len;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len >= PATH_MAX) return NULL;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    napi_get_value_string_utf8(env, v, s, len + 1, &len);
    if (strlen(s) != len) {
      free(s);
      return NULL; /* an embedded NUL would cut the path short */
    }
    return s;
  }
  bool isbuf = false;
  if (napi_is_buffer(env, v, &isbuf) != napi_ok || !isbuf) return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok || len >= PATH_MAX) return NULL;
  if (memchr(data, 0, len) != NULL) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  memcpy(s, data, len);
  s[len] = 0;
  return s;
}

static bool int_arg(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return false;
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/* ------------------------------------------------------------------ the operations */

enum op_kind {
  OP_OPENAT2,
  OP_MKDIRAT,
  OP_UNLINKAT,
  OP_RENAMEAT2,
  OP_LINKAT,
  OP_FCHOWNAT,
  OP_SYMLINKAT,
  OP_WRITEV_FSYNC,
  OP_CREATE_WRITEV
};

typedef struct {
  enum op_kind kind;
  int fd1, fd2;
  char *s1, *s2;
  int64_t a, b, c, d, e;
  int64_t result;
  /* OP_CREATE_WRITEV: the descriptor it opened (-1 when it failed), and whether to fsync after the write. */
  int created;
  int fsync_after;
  napi_async_work work;
  napi_ref callback;
  /* OP_WRITEV_FSYNC: the caller's buffers, referenced until the call completes. */
  struct iovec *iov;
  napi_ref *bufs;
  size_t nbufs;
} op_t;

static int64_t neg_errno(long rc) { return rc < 0 ? -(int64_t)errno : (int64_t)rc; }

/* openat2 with the retries a RESOLVE_BENEATH walk may need. */
static long open_beneath(int dirfd, const char *path, int64_t flags, int64_t mode, int64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)flags | O_CLOEXEC;
  how.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? (uint64_t)mode : 0;
  how.resolve = (uint64_t)resolve;
  /* EAGAIN: a rename raced a ".." step of a RESOLVE_BENEATH walk; the kernel asks for a retry. Bounded: the
     tenant who renames in a loop only gets its own call refused. */
  long rc;
  int tries = 0;
  do {
    rc = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  } while (rc < 0 && (errno == EINTR || (errno == EAGAIN && ++tries < 64)));
  return rc;
}

/*
 * Every byte of `iov` at the descriptor's position (writev may stop short: the rest, or its error, on the next
 * call), then an fsync when `sync`. Returns the bytes written, or -1 with errno set.
 */
static long writev_all(int fd, struct iovec *iov, int cnt, int sync) {
  int64_t total = 0;
  while (cnt > 0) {
    ssize_t n = writev(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    total += n;
    ssize_t wrote = n;
    while (cnt > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      cnt--;
    }
    if (cnt > 0 && wrote == 0) {
      /* No progress on a non-empty buffer: never spin (a regular file reports ENOSPC instead). */
      errno = EIO;
      return -1;
    }
    if (cnt > 0) {
      iov->iov_base = (char *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  if (sync) {
    int rc;
    do rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
  }
  return (long)total;
}

static void op_run(op_t *op) {
  long rc;
  switch (op->kind) {
    case OP_OPENAT2:
      rc = open_beneath(op->fd1, op->s1, op->a, op->b, op->c);
      break;
    case OP_MKDIRAT:
      rc = mkdirat(op->fd1, op->s1, (mode_t)op->a);
      break;
    case OP_UNLINKAT:
      rc = unlinkat(op->fd1, op->s1, (int)op->a);
      break;
    case OP_RENAMEAT2:
      rc = op->a == 0 ? renameat(op->fd1, op->s1, op->fd2, op->s2)
                      : syscall(SYS_renameat2, op->fd1, op->s1, op->fd2, op->s2, (unsigned int)op->a);
      break;
    case OP_LINKAT:
      rc = linkat(op->fd1, op->s1, op->fd2, op->s2, (int)op->a);
      break;
    case OP_FCHOWNAT:
      rc = fchownat(op->fd1, op->s1, (uid_t)op->a, (gid_t)op->b, (int)op->c);
      break;
    case OP_SYMLINKAT:
      rc = symlinkat(op->s2, op->fd1, op->s1);
      break;
    case OP_WRITEV_FSYNC:
      /* The last bytes and the fsync: one thread-pool job instead of two round trips through the event loop. */
      rc = writev_all(op->fd1, op->iov, (int)op->nbufs, 1);
      break;
    case OP_CREATE_WRITEV: {
      /*
       * A new file (an upload's temp file): created, given its owner before any byte lands, written, and fsynced
       * when these are its last bytes; one thread-pool job. On a failure after the open nothing is left behind:
       * the descriptor is closed and a named file removed (an O_TMPFILE one goes with its descriptor).
       */
      rc = open_beneath(op->fd1, op->s1, op->a, op->b, op->c);
      if (rc < 0) break;
      int fd = (int)rc;
      rc = op->d >= 0 && fchown(fd, (uid_t)op->d, (gid_t)op->e) < 0 ? -1 : 0;
      if (rc == 0) rc = writev_all(fd, op->iov, (int)op->nbufs, op->fsync_after);
      if (rc < 0) {
        int err = errno;
        close(fd);
        if ((op->a & O_TMPFILE) != O_TMPFILE) unlinkat(op->fd1, op->s1, 0);
        errno = err;
        break;
      }
      op->created = fd;
      break;
    }
    default:
      errno = EINVAL;
      rc = -1;
  }
  op->result = neg_errno(rc);
}

static void op_free(op_t *op) {
  free(op->s1);
  free(op->s2);
  free(op->iov);
  free(op->bufs);
  free(op);
}

/* Drops the references that kept an OP_WRITEV_FSYNC's buffers alive (main thread). */
static void op_unref_bufs(napi_env env, op_t *op) {
  for (size_t i = 0; i < op->nbufs; i++) {
    if (op->bufs && op->bufs[i]) napi_delete_reference(env, op->bufs[i]);
  }
}

/*
 * Reads the arguments of `kind` from argv (layout per kind, see parse_op) into a new op.
 * Returns NULL after throwing when they are wrong.
 */
static op_t *parse_op(napi_env env, enum op_kind kind, napi_value *argv, size_t argc, size_t want) {
  if (argc < want) return (op_t *)fail(env, "trove_native: missing arguments");
  op_t *op = calloc(1, sizeof *op);
  if (!op) return (op_t *)fail(env, "trove_native: out of memory");
  op->kind = kind;
  int64_t fd1 = -1, fd2 = -1;
  bool ok = true;
  switch (kind) {
    case OP_OPENAT2: /* dirFd, path, flags, mode, resolve */
      ok = int_arg(env, argv[0], &fd1) && (op->s1 = path_arg(env, argv[1])) && int_arg(env, argv[2], &op->a) &&
           int_arg(env, argv[3], &op->b) && int_arg(env, argv[4], &op->c);
      break;
    case OP_MKDIRAT: /* dirFd, name, mode */
    case OP_UNLINKAT: /* dirFd, name, flags */
      ok = int_arg(env, argv[0], &fd1) && (op->s1 = path_arg(env, argv[1])) && int_arg(env, argv[2], &op->a);
      break;
    case OP_RENAMEAT2: /* oldDirFd, old, newDirFd, new, flags */
    case OP_LINKAT:
      ok = int_arg(env, argv[0], &fd1) && (op->s1 = path_arg(env, argv[1])) && int_arg(env, argv[2], &fd2) &&
           (op->s2 = path_arg(env, argv[3])) && int_arg(env, argv[4], &op->a);
      break;
    case OP_FCHOWNAT: /* dirFd, name, uid, gid, flags */
      ok = int_arg(env, argv[0], &fd1) && (op->s1 = path_arg(env, argv[1])) && int_arg(env, argv[2], &op->a) &&
           int_arg(env, argv[3], &op->b) && int_arg(env, argv[4], &op->c);
      break;
    case OP_SYMLINKAT: /* target, dirFd, name */
      ok = (op->s2 = path_arg(env, argv[0])) && int_arg(env, argv[1], &fd1) && (op->s1 = path_arg(env, argv[2]));
      break;
    case OP_WRITEV_FSYNC: /* not parsed here: WritevFsyncAsync and CreateWritevAsync read their own arguments */
    case OP_CREATE_WRITEV:
      ok = false;
      break;
  }
  /* AT_FDCWD is never accepted: every call is relative to a descriptor the caller holds. */
  if (!ok || fd1 < 0 || fd1 > INT_MAX || fd2 < -1 || fd2 > INT_MAX || ((kind == OP_RENAMEAT2 || kind == OP_LINKAT) && fd2 < 0)) {
    op_free(op);
    return (op_t *)fail(env, "trove_native: bad arguments (descriptors must be open, names strings or Buffers without NUL)");
  }
  op->fd1 = (int)fd1;
  op->fd2 = (int)fd2;
  return op;
}

static napi_value run_sync(napi_env env, napi_callback_info info, enum op_kind kind, size_t want) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  op_t *op = parse_op(env, kind, argv, argc, want);
  if (!op) return NULL;
  op_run(op);
  int64_t r = op->result;
  op_free(op);
  return num(env, r);
}

static void async_execute(napi_env env, void *data) {
  (void)env;
  op_run((op_t *)data);
}

static void async_complete(napi_env env, napi_status status, void *data) {
  op_t *op = (op_t *)data;
  napi_value cb, global;
  napi_get_reference_value(env, op->callback, &cb);
  napi_get_global(env, &global);
  napi_value args[2];
  args[0] = num(env, status == napi_ok ? op->result : -ECANCELED);
  size_t nargs = 1;
  if (op->kind == OP_CREATE_WRITEV) {
    /* -1 unless the job ran and made the file (a cancelled job never ran: created is still as parsed). */
    args[1] = num(env, op->created);
    nargs = 2;
  }
  napi_delete_reference(env, op->callback);
  napi_delete_async_work(env, op->work);
  op_unref_bufs(env, op);
  op_free(op);
  napi_call_function(env, global, cb, nargs, args, NULL);
}

/* Queues `op` on the thread pool with `callback`; NULL (after throwing) when it could not be queued. */
static napi_value queue_op(napi_env env, op_t *op, napi_value callback) {
  napi_value name;
  napi_create_string_utf8(env, "trove_native", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, callback, 1, &op->callback);
  if (napi_create_async_work(env, NULL, name, async_execute, async_complete, op, &op->work) != napi_ok ||
      napi_queue_async_work(env, op->work) != napi_ok) {
    napi_delete_reference(env, op->callback);
    op_unref_bufs(env, op);
    op_free(op);
    return fail(env, "trove_native: could not queue the call");
  }
  return NULL;
}

static napi_value run_async(napi_env env, napi_callback_info info, enum op_kind kind, size_t want) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != want + 1) return fail(env, "trove_native: wrong number of arguments (the last is the callback)");
  napi_valuetype t;
  napi_typeof(env, argv[want], &t);
  if (t != napi_function) return fail(env, "trove_native: the last argument must be a callback");
  op_t *op = parse_op(env, kind, argv, argc - 1, want);
  if (!op) return NULL;
  return queue_op(env, op, argv[want]);
}

#define SYNC_AND_ASYNC(Name, kind, want)                                                                           \
  static napi_value Name(napi_env env, napi_callback_info info) { return run_sync(env, info, kind, want); }       \
  static napi_value Name##Async(napi_env env, napi_callback_info info) { return run_async(env, info, kind, want); }

SYNC_AND_ASYNC(Openat2, OP_OPENAT2, 5)
SYNC_AND_ASYNC(Mkdirat, OP_MKDIRAT, 3)
SYNC_AND_ASYNC(Unlinkat, OP_UNLINKAT, 3)
SYNC_AND_ASYNC(Renameat2, OP_RENAMEAT2, 5)
SYNC_AND_ASYNC(Linkat, OP_LINKAT, 5)

static napi_value Fchownat(napi_env env, napi_callback_info info) { return run_sync(env, info, OP_FCHOWNAT, 5); }

/*
 * The Buffers of array `arr` as the op's iovec, each referenced until the call completes. False (after
 * throwing) when `arr` holds anything else; the op is then freed.
 */
static bool take_buffers(napi_env env, napi_value arr, op_t *op, const char *usage) {
  uint32_t n = 0;
  napi_get_array_length(env, arr, &n);
  op->iov = calloc(n ? n : 1, sizeof *op->iov);
  op->bufs = calloc(n ? n : 1, sizeof *op->bufs);
  if (!op->iov || !op->bufs) {
    op_free(op);
    fail(env, "trove_native: out of memory");
    return false;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value b;
    bool is_buffer = false;
    void *data = NULL;
    size_t len = 0;
    napi_get_element(env, arr, i, &b);
    napi_is_buffer(env, b, &is_buffer);
    if (!is_buffer || napi_get_buffer_info(env, b, &data, &len) != napi_ok ||
        napi_create_reference(env, b, 1, &op->bufs[i]) != napi_ok) {
      op->nbufs = i;
      op_unref_bufs(env, op);
      op_free(op);
      fail(env, usage);
      return false;
    }
    op->iov[i].iov_base = data;
    op->iov[i].iov_len = len;
  }
  op->nbufs = n;
  return true;
}

/* writevFsyncAsync(fd, buffers, cb): writes every buffer at the current position, then fsyncs; cb(bytes or -errno). */
static napi_value WritevFsyncAsync(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int64_t fd = -1;
  bool is_array = false;
  napi_valuetype t = napi_undefined;
  if (argc == 3) {
    napi_is_array(env, argv[1], &is_array);
    napi_typeof(env, argv[2], &t);
  }
  if (argc != 3 || !int_arg(env, argv[0], &fd) || fd < 0 || fd > INT_MAX || !is_array || t != napi_function)
    return fail(env, "writevFsyncAsync(fd, buffers, callback)");
  op_t *op = calloc(1, sizeof *op);
  if (!op) return fail(env, "trove_native: out of memory");
  op->kind = OP_WRITEV_FSYNC;
  op->fd1 = (int)fd;
  op->fd2 = -1;
  if (!take_buffers(env, argv[1], op, "writevFsyncAsync: buffers must be an array of Buffers")) return NULL;
  return queue_op(env, op, argv[2]);
}

/*
 * createWritevAsync(dirFd, name, flags, mode, resolve, uid, gid, buffers, fsync, cb): openat2 of a new file
 * (flags with O_CREAT|O_EXCL, or O_TMPFILE with name "."), fchown to uid:gid unless uid is -1, every buffer
 * written, then fsync when `fsync`; cb(bytes or -errno, fd). On an error nothing is left: no descriptor, no name.
 */
static napi_value CreateWritevAsync(napi_env env, napi_callback_info info) {
  const char *usage = "createWritevAsync(dirFd, name, flags, mode, resolve, uid, gid, buffers, fsync, callback)";
  size_t argc = 10;
  napi_value argv[10];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 10) return fail(env, usage);
  bool is_array = false, sync = false;
  napi_valuetype t = napi_undefined;
  napi_is_array(env, argv[7], &is_array);
  napi_typeof(env, argv[9], &t);
  int64_t dirfd = -1;
  op_t *op = calloc(1, sizeof *op);
  if (!op) return fail(env, "trove_native: out of memory");
  op->kind = OP_CREATE_WRITEV;
  op->created = -1;
  op->fd2 = -1;
  if (!int_arg(env, argv[0], &dirfd) || dirfd < 0 || dirfd > INT_MAX || !(op->s1 = path_arg(env, argv[1])) ||
      !int_arg(env, argv[2], &op->a) || !int_arg(env, argv[3], &op->b) || !int_arg(env, argv[4], &op->c) ||
      !int_arg(env, argv[5], &op->d) || !int_arg(env, argv[6], &op->e) || op->d < -1 || op->d > UINT32_MAX - 1 ||
      op->e < -1 || op->e > UINT32_MAX - 1 || !is_array || napi_get_value_bool(env, argv[8], &sync) != napi_ok ||
      t != napi_function) {
    op_free(op);
    return fail(env, usage);
  }
  op->fd1 = (int)dirfd;
  op->fsync_after = sync ? 1 : 0;
  if (!take_buffers(env, argv[7], op, "createWritevAsync: buffers must be an array of Buffers")) return NULL;
  return queue_op(env, op, argv[9]);
}

static napi_value Symlinkat(napi_env env, napi_callback_info info) { return run_sync(env, info, OP_SYMLINKAT, 3); }

/* ------------------------------------------------------------------ metadata */

static bool stat_out(napi_env env, napi_value v, double **out) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array ||
      length < STAT_FIELDS) {
    return false;
  }
  *out = (double *)data;
  return true;
}

static void fill_stat(double *out, const struct stat *st) {
  out[0] = st->st_mode;
  out[1] = st->st_uid;
  out[2] = st->st_gid;
  out[3] = (double)st->st_size;
  out[4] = (double)st->st_mtim.tv_sec;
  out[5] = (double)st->st_mtim.tv_nsec;
  out[6] = (double)st->st_ino;
  out[7] = (double)st->st_dev;
  out[8] = (double)st->st_nlink;
  out[9] = (double)st->st_blocks;
  out[10] = (double)st->st_atim.tv_sec;
  out[11] = (double)st->st_atim.tv_nsec;
  out[12] = (double)st->st_blksize;
}

static napi_value Fstatat(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, flags;
  double *out;
  char *name;
  if (argc != 4 || !int_arg(env, argv[0], &fd) || fd < 0 || !int_arg(env, argv[2], &flags) || !stat_out(env, argv[3], &out)) {
    return fail(env, "fstatat(dirFd, name, flags, out: Float64Array(13))");
  }
  if (!(name = path_arg(env, argv[1]))) return fail(env, "fstatat: name must be a string or Buffer without NUL");
  struct stat st;
  int rc = fstatat((int)fd, name, &st, (int)flags);
  int64_t r = neg_errno(rc);
  free(name);
  if (r == 0) fill_stat(out, &st);
  return num(env, r);
}

/* fstatat of many names in one call: the sizes of a command's written files, a directory at a time. */
static napi_value SizesAt(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd;
  bool is_array = false;
  uint32_t n = 0;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (argc != 3 || !int_arg(env, argv[0], &fd) || fd < 0 || napi_is_array(env, argv[1], &is_array) != napi_ok ||
      !is_array || napi_get_array_length(env, argv[1], &n) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || length < n) {
    return fail(env, "sizesAt(dirFd, names: string[], out: Float64Array(names.length))");
  }
  double *out = (double *)data;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    char *name = napi_get_element(env, argv[1], i, &v) == napi_ok ? path_arg(env, v) : NULL;
    struct stat st;
    /* Security: a name is one component (no path through the directory's links) and is never followed. */
    bool one = name && name[0] != 0 && strchr(name, '/') == NULL;
    out[i] = one && fstatat((int)fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) ? (double)st.st_size : -1;
    free(name);
  }
  return num(env, 0);
}

static napi_value Fstat(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd;
  double *out;
  if (argc != 2 || !int_arg(env, argv[0], &fd) || fd < 0 || !stat_out(env, argv[1], &out)) {
    return fail(env, "fstat(fd, out: Float64Array(13))");
  }
  struct stat st;
  int64_t r = neg_errno(fstat((int)fd, &st));
  if (r == 0) fill_stat(out, &st);
  return num(env, r);
}

static napi_value Readlinkat(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd;
  char *name;
  if (argc != 2 || !int_arg(env, argv[0], &fd) || fd < 0) return fail(env, "readlinkat(dirFd, name)");
  if (!(name = path_arg(env, argv[1]))) return fail(env, "readlinkat: name must be a string or Buffer without NUL");
  char buf[PATH_MAX];
  ssize_t n = readlinkat((int)fd, name, buf, sizeof buf);
  int64_t err = n < 0 ? -(int64_t)errno : 0;
  free(name);
  if (n < 0) return num(env, err);
  napi_value result;
  napi_create_buffer_copy(env, (size_t)n, buf, NULL, &result);
  return result;
}

static napi_value Getdents(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd;
  bool isbuf = false;
  void *data;
  size_t len;
  if (argc != 2 || !int_arg(env, argv[0], &fd) || fd < 0 || napi_is_buffer(env, argv[1], &isbuf) != napi_ok || !isbuf ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || len < 1024) {
    return fail(env, "getdents(dirFd, buf: Buffer of at least 1 KiB)");
  }
  long n;
  do {
    n = syscall(SYS_getdents64, (int)fd, data, len);
  } while (n < 0 && errno == EINTR);
  return num(env, neg_errno(n));
}

static napi_value Utimensat(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, sec, nsec, flags;
  char *name;
  if (argc != 5 || !int_arg(env, argv[0], &fd) || fd < 0 || !int_arg(env, argv[2], &sec) || !int_arg(env, argv[3], &nsec) ||
      !int_arg(env, argv[4], &flags) || nsec < 0 || nsec >= 1000000000) {
    return fail(env, "utimensat(dirFd, name, sec, nsec, flags)");
  }
  if (!(name = path_arg(env, argv[1]))) return fail(env, "utimensat: name must be a string or Buffer without NUL");
  struct timespec ts[2] = {{.tv_sec = sec, .tv_nsec = nsec}, {.tv_sec = sec, .tv_nsec = nsec}};
  int64_t r = neg_errno(utimensat((int)fd, name, ts, (int)flags));
  free(name);
  return num(env, r);
}

static napi_value Lseek(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, off, whence;
  if (argc != 3 || !int_arg(env, argv[0], &fd) || fd < 0 || !int_arg(env, argv[1], &off) || !int_arg(env, argv[2], &whence)) {
    return fail(env, "lseek(fd, offset, whence)");
  }
  return num(env, neg_errno((long)lseek((int)fd, (off_t)off, (int)whence)));
}

/* ------------------------------------------------------------------ btrfs: hard per-namespace quotas */

static napi_value FsType(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd;
  if (argc != 1 || !int_arg(env, argv[0], &fd) || fd < 0) return fail(env, "fsType(fd)");
  struct statfs st;
  if (fstatfs((int)fd, &st) < 0) return num(env, -(int64_t)errno);
  return num(env, (int64_t)(uint32_t)st.f_type);
}

static napi_value BtrfsSubvolCreate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd;
  char *name;
  if (argc != 2 || !int_arg(env, argv[0], &fd) || fd < 0) return fail(env, "btrfsSubvolCreate(dirFd, name)");
  if (!(name = path_arg(env, argv[1])) || strchr(name, '/') != NULL || strlen(name) >= BTRFS_PATH_NAME_MAX) {
    free(name);
    return fail(env, "btrfsSubvolCreate: name must be one path component");
  }
  struct btrfs_ioctl_vol_args args;
  memset(&args, 0, sizeof args);
  strcpy(args.name, name);
  free(name);
  return num(env, neg_errno(ioctl((int)fd, BTRFS_IOC_SUBVOL_CREATE, &args)));
}

static napi_value BtrfsQgroupLimit(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd, max;
  if (argc != 2 || !int_arg(env, argv[0], &fd) || fd < 0 || !int_arg(env, argv[1], &max) || max < 0) {
    return fail(env, "btrfsQgroupLimit(fd, maxBytes)");
  }
  struct btrfs_ioctl_qgroup_limit_args args;
  memset(&args, 0, sizeof args);
  args.qgroupid = 0; /* the subvolume fd is in */
  args.lim.flags = BTRFS_QGROUP_LIMIT_MAX_RFER;
  args.lim.max_rfer = max == 0 ? (uint64_t)-1 : (uint64_t)max;
  return num(env, neg_errno(ioctl((int)fd, BTRFS_IOC_QGROUP_LIMIT, &args)));
}

/* ------------------------------------------------------------------ downloads */

static napi_value Sendfile(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4) {
    return fail(env, "sendfile(socketFd, fileFd, offset, count)");
  }
  int32_t out_fd, in_fd;
  int64_t offset, count;
  if (napi_get_value_int32(env, argv[0], &out_fd) != napi_ok || napi_get_value_int32(env, argv[1], &in_fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &count) != napi_ok ||
      out_fd < 0 || in_fd < 0 || offset < 0 || count <= 0) {
    return fail(env, "sendfile: descriptors, offset and count must be non-negative integers (count > 0)");
  }
  off_t off = (off_t)offset;
  ssize_t n;
  do {
    n = sendfile(out_fd, in_fd, &off, (size_t)count);
  } while (n < 0 && errno == EINTR);
  return num(env, n < 0 ? -(int64_t)errno : (int64_t)n);
}

/* ------------------------------------------------------------------ change tracker (fanotify) */

/*
 * One watcher: a fanotify group with a FAN_MARK_FILESYSTEM mark on the data dir's file system, read by a
 * thread of its own. The thread keeps only what can concern this server's trees: events of processes in
 * one of its cgroup slots (`trove-<server pid>-<n>/ns-<hash>/slot-<k>`), and events of processes already
 * gone (their cgroup can no longer be read; src/changes/ attributes those by namespace). Everything else
 * on the file system (the server's own writes, other programs) is dropped here, before any path is
 * resolved. Records keep the queue's order; a marker (changesMarker) tells the reader that everything
 * queued before it has been handed over.
 */

#define CH_MAX_WATCHERS 16
#define CH_BUF (256 * 1024)
#define CH_PID_CACHE 1024
#define CH_DIR_CACHE 512
#define CH_GROUP_MAX 128
#define CH_LINEAGE 65536
/* Marker files made once ("r<k>"): a marker is then an open and a close (no directory entry written). */
#define CH_RING 64

typedef struct {
  uint32_t mask;
  int32_t pid;
  int64_t marker; /* >= 0: a marker record */
  bool overflow;
  char *group;  /* NULL: the process is gone */
  char *dir;    /* NULL: the directory could not be opened by its handle (removed) */
  char *dir_fh; /* hex of the directory's handle */
  char *name;
  char *target_fh; /* hex of the entry's own handle (directories only) */
} ch_rec;

typedef struct {
  ch_rec *recs;
  size_t n, cap;
} ch_batch;

/*
 * What a pid was found to be when it was last looked at. Only a live process is remembered: ours (in one
 * of our slots: it never leaves it), or, while fork reports come (so a pid that is reused is known: its
 * fork report forgets the entry), another server's or in no slot. Nothing else moves into a slot after
 * its fork but trove-enter, which does so before it writes or forks anything. Remembering the others
 * too is what keeps the rest of the machine cheap: without it every file event of every other process
 * on the file system read two files of /proc.
 */
#define CH_PID_UNKNOWN 0
#define CH_PID_OURS 1
#define CH_PID_FOREIGN 2 /* in another server's slot */
#define CH_PID_OUTSIDE 3 /* in no slot */
#define CH_PID_GONE 4    /* never stored: the process is gone or exiting */
#define CH_PID_CHILD 5   /* in no slot, a child of this server: its launcher, whose children (trove-enter) join slots */
typedef struct {
  int32_t pid;
  uint8_t kind;
  char group[CH_GROUP_MAX]; /* CH_PID_OURS: the slot */
} ch_pid_entry;

typedef struct {
  char *fh; /* hex */
  char *path;
} ch_dir_entry;

/*
 * child → parent, from the kernel's fork reports (the process connector), with the parent's cgroup slot as
 * read when the report came: CH_SLOT_UNKNOWN, CH_SLOT_FOREIGN (another server's slot) or an index into
 * the watcher's `slots`.
 */
#define CH_SLOT_UNKNOWN (-1)
#define CH_SLOT_FOREIGN (-2)
#define CH_SLOT_OUTSIDE (-3) /* the parent was in no slot: a host process */
/*
 * The parent was this server's launcher: the child is trove-enter (or bwrap). trove-enter joins a slot after
 * its fork, so where it was when it forked the command's processes is not where it was born.
 */
#define CH_SLOT_LAUNCHED (-4)
#define CH_SLOTS 512
typedef struct {
  int32_t child, parent;
  int16_t slot;
} ch_fork;

typedef struct {
  bool used;
  int fan_fd, mount_fd, marker_fd, stop_pipe[2];
  int proc_fd; /* the process connector, or -1 */
  int wake_fd; /* eventfd: a marker was placed (the reader skips its pause) */
  char *trees_prefix;
  size_t trees_prefix_len;
  char *marker_fh; /* hex of the marker directory's handle */
  char own_prefix[64];
  pthread_t thread;
  napi_threadsafe_function tsfn;
  ch_pid_entry pids[CH_PID_CACHE];
  ch_dir_entry dirs[CH_DIR_CACHE];
  ch_fork *forks; /* CH_LINEAGE entries, by child pid */
  char slots[CH_SLOTS][CH_GROUP_MAX]; /* the slot names the fork table refers to */
  int nslots;
  /* The seq each ring file's pending marker stands for (JavaScript reuses a file only once it was read). */
  _Atomic int64_t ring[CH_RING];
} ch_watcher;

static ch_watcher ch_watchers[CH_MAX_WATCHERS];
static pthread_mutex_t ch_lock = PTHREAD_MUTEX_INITIALIZER;

static char *ch_hex(const unsigned char *p, size_t n, int type) {
  static const char digits[] = "0123456789abcdef";
  char *s = malloc(n * 2 + 12);
  if (!s) return NULL;
  int o = snprintf(s, 12, "%x:", (unsigned)type);
  for (size_t i = 0; i < n; i++) {
    s[o + i * 2] = digits[p[i] >> 4];
    s[o + i * 2 + 1] = digits[p[i] & 15];
  }
  s[o + n * 2] = 0;
  return s;
}

static void ch_rec_free(ch_rec *r) {
  free(r->group);
  free(r->dir);
  free(r->dir_fh);
  free(r->name);
  free(r->target_fh);
}

static ch_rec *ch_push(ch_batch *b) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    ch_rec *r = realloc(b->recs, cap * sizeof *r);
    if (!r) return NULL;
    b->recs = r;
    b->cap = cap;
  }
  ch_rec *r = &b->recs[b->n++];
  memset(r, 0, sizeof *r);
  r->marker = -1;
  return r;
}

/*
 * What `pid` is (CH_PID_*), from the cache or /proc/<pid>/cgroup; for CH_PID_OURS, `*group` is its slot
 * ("trove-<own pid>-<n>/ns-<hash>/slot-<k>", the last three components of its group).
 */
static int ch_classify(ch_watcher *w, int32_t pid, const char **group) {
  ch_pid_entry *e = &w->pids[(uint32_t)pid % CH_PID_CACHE];
  if (e->pid == pid && e->kind != CH_PID_UNKNOWN) {
    *group = e->kind == CH_PID_OURS ? e->group : "";
    return e->kind;
  }
  *group = NULL;
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return CH_PID_GONE;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return CH_PID_GONE; /* a zombie being reaped */
  buf[n] = 0;
  /* Another server's command: its slots are ":/…trove-<pid>-<n>/ns-<hash>/slot-<k>". */
  char *other = strstr(buf, "/trove-");
  bool foreign = other && strstr(other, "/ns-") && strstr(other, "/slot-");
  char *found = NULL;
  for (char *line = buf; line && *line;) {
    char *next = strchr(line, '\n');
    if (next) *next++ = 0;
    char *p = strchr(line, ':');
    p = p ? strchr(p + 1, ':') : NULL;
    if (p) {
      char *at = strstr(p + 1, w->own_prefix);
      if (at && (at == p + 1 || at[-1] == '/')) {
        found = at;
        break;
      }
    }
    line = next;
  }
  int kind;
  if (found) {
    /* trove-<pid>-<n>/ns-<hash>/slot-<k>: exactly three components, the last a slot. */
    int slashes = 0;
    for (char *c = found; *c; c++) slashes += *c == '/';
    char *last = strrchr(found, '/');
    if (slashes == 2 && last && strncmp(last + 1, "slot-", 5) == 0 && strlen(found) < CH_GROUP_MAX) {
      e->pid = pid;
      e->kind = CH_PID_OURS;
      strcpy(e->group, found);
      *group = e->group;
      return CH_PID_OURS;
    }
    kind = CH_PID_OUTSIDE; /* one of our groups that is not a slot (a namespace's sandbox) */
  } else if (foreign) {
    kind = CH_PID_FOREIGN;
  } else {
    /* cgroup v1 shows "/" for a process that is exiting: such a one is as good as gone. */
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CH_PID_GONE;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return CH_PID_GONE;
    buf[n] = 0;
    char *paren = strrchr(buf, ')');
    if (!paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X') return CH_PID_GONE;
    /* Fields after the name: state ppid pgrp session tty_nr tpgid flags; PF_EXITING = 0x4. */
    char *f = paren + 2;
    for (int i = 0; i < 6 && f; i++) {
      f = strchr(f, ' ');
      if (f) f++;
    }
    if (!f || (strtoul(f, NULL, 10) & 0x4)) return CH_PID_GONE;
    kind = strtol(paren + 4, NULL, 10) == (long)getpid() ? CH_PID_CHILD : CH_PID_OUTSIDE;
  }
  /* Without fork reports a reused pid would go unnoticed: then only our own processes are remembered. */
  if (w->proc_fd >= 0) {
    e->pid = pid;
    e->kind = (uint8_t)kind;
  }
  *group = "";
  return kind;
}

/*
 * The cgroup slot of `pid` when it is one of this server's, "" when it is some other process, or NULL
 * when the process is gone (and its parent's could not be told either). For a process already gone, its
 * parent's (a process stays in the cgroup it was forked in: nothing in a sandbox may move itself), found
 * through the fork reports, a few levels up.
 */
static const char *ch_group_of(ch_watcher *w, int32_t pid) {
  for (int depth = 0; depth < 8; depth++) {
    const char *g;
    int kind = ch_classify(w, pid, &g);
    /* Alive: its own cgroup says. Gone: what its parent was in when it was forked, else its parent's now. */
    if (kind == CH_PID_OURS) return g;
    if (kind != CH_PID_GONE) return depth == 0 ? "" : NULL; /* an ancestor outside the slots (the launcher): unknown */
    if (!w->forks) return NULL;
    ch_fork *f = &w->forks[(uint32_t)pid % CH_LINEAGE];
    if (f->child != pid || f->parent <= 0) return NULL;
    if (f->slot >= 0) return w->slots[f->slot];
    /* Forked in another server's slot, or outside every slot by a host process: not a command's process. */
    if (f->slot == CH_SLOT_FOREIGN || f->slot == CH_SLOT_OUTSIDE) return "";
    /*
     * Forked by the launcher: trove-enter (or bwrap), itself writing nothing in the trees. Met as an
     * ancestor, it is trove-enter, which joined its slot after its own fork and before it forked anything;
     * its child's fork report was read only after it was gone (a short first command, a reader behind), so
     * which slot is lost with it. Unknown, not outside: the record goes by its namespace.
     */
    if (f->slot == CH_SLOT_LAUNCHED) return depth == 0 ? "" : NULL;
    pid = f->parent;
  }
  return NULL;
}

/* The slot a process alive now is in: its index in `slots`, or CH_SLOT_FOREIGN, _OUTSIDE, _LAUNCHED, _UNKNOWN. */
static int16_t ch_slot_at_fork(ch_watcher *w, int32_t parent) {
  const char *own;
  switch (ch_classify(w, parent, &own)) {
  case CH_PID_OURS:
    for (int i = 0; i < w->nslots; i++) {
      if (strcmp(w->slots[i], own) == 0) return (int16_t)i;
    }
    if (w->nslots == CH_SLOTS) return CH_SLOT_UNKNOWN;
    strcpy(w->slots[w->nslots], own);
    return (int16_t)w->nslots++;
  case CH_PID_FOREIGN:
    return CH_SLOT_FOREIGN;
  case CH_PID_OUTSIDE:
    return CH_SLOT_OUTSIDE;
  case CH_PID_CHILD:
    return CH_SLOT_LAUNCHED;
  default:
    /* Gone, or on its way out (which shows "/" in cgroup v1): unknown, not outside. */
    return CH_SLOT_UNKNOWN;
  }
}

static void ch_dir_forget_all(ch_watcher *w) {
  for (int i = 0; i < CH_DIR_CACHE; i++) {
    free(w->dirs[i].fh);
    free(w->dirs[i].path);
    w->dirs[i].fh = w->dirs[i].path = NULL;
  }
}

static uint32_t ch_hash(const char *s) {
  uint32_t h = 0x811c9dc5;
  while (*s) h = (h ^ (unsigned char)*s++) * 0x01000193;
  return h;
}

/* The directory's path now, or NULL when it is gone (or not a directory any more). */
static char *ch_dir_path(ch_watcher *w, struct file_handle *fh, const char *hex) {
  ch_dir_entry *e = &w->dirs[ch_hash(hex) % CH_DIR_CACHE];
  if (e->fh && strcmp(e->fh, hex) == 0) return strdup(e->path);
  int fd = open_by_handle_at(w->mount_fd, fh, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return NULL;
  char link[64], buf[PATH_MAX];
  struct stat st;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  bool gone = fstat(fd, &st) < 0 || st.st_nlink == 0;
  close(fd);
  if (n <= 0 || gone || buf[0] != '/') return NULL;
  buf[n] = 0;
  free(e->fh);
  free(e->path);
  e->fh = strdup(hex);
  e->path = strdup(buf);
  return strdup(buf);
}

static bool ch_under_trees(ch_watcher *w, const char *dir) {
  size_t n = strlen(dir);
  /* The trees prefix ends with '/': the directory is it (without the slash) or below it. */
  if (n + 1 == w->trees_prefix_len) return strncmp(dir, w->trees_prefix, n) == 0;
  return n >= w->trees_prefix_len && strncmp(dir, w->trees_prefix, w->trees_prefix_len) == 0;
}

static void ch_decode(ch_watcher *w, char *buf, ssize_t len, ch_batch *b, int32_t self) {
  struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
  for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
    if (m->vers != FANOTIFY_METADATA_VERSION) continue;
    if (m->mask & FAN_Q_OVERFLOW) {
      ch_rec *r = ch_push(b);
      if (r) r->overflow = true;
      continue;
    }
    struct file_handle *dfh = NULL, *tfh = NULL;
    const char *name = NULL;
    char *info = (char *)m + m->metadata_len, *end = (char *)m + m->event_len;
    while (info + sizeof(struct fanotify_event_info_header) <= end) {
      struct fanotify_event_info_header *h = (struct fanotify_event_info_header *)info;
      if (h->len == 0 || info + h->len > end) break;
      if (h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME || h->info_type == FAN_EVENT_INFO_TYPE_FID) {
        struct fanotify_event_info_fid *fid = (struct fanotify_event_info_fid *)h;
        struct file_handle *fh = (struct file_handle *)fid->handle;
        if (h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
          dfh = fh;
          name = (const char *)fh->f_handle + fh->handle_bytes;
        } else {
          tfh = fh;
        }
      }
      info += h->len;
    }
    if (m->fd >= 0) close(m->fd);
    if (!dfh || !name) continue;
    if (m->pid == self) {
      /* The server's own writes (the files API) are recorded by the API; only its markers pass. */
      char *dhex = name[0] == 'm' || name[0] == 'r' ? ch_hex(dfh->f_handle, dfh->handle_bytes, dfh->handle_type) : NULL;
      if (dhex && w->marker_fh && strcmp(dhex, w->marker_fh) == 0) {
        if ((m->mask & FAN_CREATE) && name[0] == 'm') {
          ch_rec *r = ch_push(b);
          if (r) r->marker = strtoll(name + 1, NULL, 10);
        } else if ((m->mask & FAN_CLOSE_WRITE) && name[0] == 'r') {
          long k = strtol(name + 1, NULL, 10);
          ch_rec *r = k >= 0 && k < CH_RING ? ch_push(b) : NULL;
          if (r) r->marker = w->ring[k];
        }
      }
      free(dhex);
      continue;
    }
    /* Who first: most records on a busy machine are other programs', dropped here before anything is allocated. */
    const char *group = ch_group_of(w, m->pid);
    if (group && group[0] == 0) continue; /* another process of this machine */
    char *dhex = ch_hex(dfh->f_handle, dfh->handle_bytes, dfh->handle_type);
    if (!dhex) continue;
    if (m->mask & FAN_ONDIR && m->mask & (FAN_MOVED_FROM | FAN_MOVED_TO)) {
      /* A directory moved: the paths cached below it are stale. */
      ch_dir_forget_all(w);
    }
    char *dir = ch_dir_path(w, dfh, dhex);
    if (dir && !ch_under_trees(w, dir)) {
      free(dir);
      free(dhex);
      continue;
    }
    ch_rec *r = ch_push(b);
    if (!r) {
      free(dir);
      free(dhex);
      continue;
    }
    r->mask = (uint32_t)m->mask;
    r->pid = m->pid;
    r->group = group ? strdup(group) : NULL;
    r->dir = dir;
    r->dir_fh = dhex;
    r->name = strdup(name);
    if (tfh && (m->mask & FAN_ONDIR)) r->target_fh = ch_hex(tfh->f_handle, tfh->handle_bytes, tfh->handle_type);
  }
}

/* Reads the fork reports queued so far (every fork that happened before the events just read is among them). */
static void ch_drain_forks(ch_watcher *w) {
  if (w->proc_fd < 0) return;
  char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
  for (;;) {
    ssize_t n = recv(w->proc_fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOBUFS) {
      /* Some were lost (their records fall back to the namespace), and with them the news of reused pids. */
      for (int i = 0; i < CH_PID_CACHE; i++) w->pids[i].kind = CH_PID_UNKNOWN;
      continue;
    }
    if (n <= 0) return; /* EAGAIN: drained */
    for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
      if (nh->nlmsg_type == NLMSG_ERROR || nh->nlmsg_type == NLMSG_NOOP) continue;
      struct cn_msg *cn = (struct cn_msg *)NLMSG_DATA(nh);
      if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC || cn->len < sizeof(struct proc_event)) continue;
      struct proc_event *ev = (struct proc_event *)cn->data;
      if (ev->what != PROC_EVENT_FORK) continue;
      /* A new process (a new thread shares its process's pid and cgroup). */
      if (ev->event_data.fork.child_pid != ev->event_data.fork.child_tgid) continue;
      /* A new process: whatever was known of an earlier one with its pid is not about this one. */
      ch_pid_entry *e = &w->pids[(uint32_t)ev->event_data.fork.child_tgid % CH_PID_CACHE];
      if (e->pid == ev->event_data.fork.child_tgid) e->kind = CH_PID_UNKNOWN;
      ch_fork *f = &w->forks[(uint32_t)ev->event_data.fork.child_tgid % CH_LINEAGE];
      f->child = ev->event_data.fork.child_tgid;
      f->parent = ev->event_data.fork.parent_tgid;
      f->slot = ch_slot_at_fork(w, f->parent);
    }
  }
}

/* Subscribes to the kernel's process reports (root only); -1 when unavailable. */
static int ch_open_forks(void) {
  int fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
  if (fd < 0) return -1;
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC, .nl_pid = 0};
  int size = 8 * 1024 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    close(fd);
    return -1;
  }
  struct {
    struct nlmsghdr nh;
    struct cn_msg cn;
    enum proc_cn_mcast_op op;
  } __attribute__((packed)) msg;
  memset(&msg, 0, sizeof msg);
  msg.nh.nlmsg_len = sizeof msg;
  msg.nh.nlmsg_type = NLMSG_DONE;
  msg.cn.id.idx = CN_IDX_PROC;
  msg.cn.id.val = CN_VAL_PROC;
  msg.cn.len = sizeof(enum proc_cn_mcast_op);
  msg.op = PROC_CN_MCAST_LISTEN;
  if (send(fd, &msg, sizeof msg, 0) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void *ch_thread(void *arg) {
  ch_watcher *w = (ch_watcher *)arg;
  char *buf = malloc(CH_BUF);
  int32_t self = (int32_t)getpid();
  if (!buf) return NULL;
  /* When events keep coming (a command writing thousands of files), read every 2 ms rather than at each
     one: fewer wake-ups of this thread and of the JavaScript thread, on the cores the command runs on. */
  struct timespec last = {0, 0};
  struct pollfd fds[3] = {
      {.fd = w->fan_fd, .events = POLLIN}, {.fd = w->stop_pipe[0], .events = POLLIN}, {.fd = w->proc_fd, .events = POLLIN}};
  for (;;) {
    int rc = poll(fds, w->proc_fd >= 0 ? 3 : 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || (fds[1].revents & (POLLIN | POLLHUP))) break;
    /* Fork reports are read as they come (the socket's buffer is bounded), and again after each read below. */
    if (w->proc_fd >= 0 && (fds[2].revents & POLLIN)) ch_drain_forks(w);
    if (!(fds[0].revents & POLLIN)) continue;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t since_ns = (int64_t)(now.tv_sec - last.tv_sec) * 1000000000 + (now.tv_nsec - last.tv_nsec);
    if (since_ns < 5000000) {
      /* Cut short when a marker is placed: a command's end waits for it. */
      struct pollfd wake = {.fd = w->wake_fd, .events = POLLIN};
      if (poll(&wake, 1, 2) > 0) {
        uint64_t v;
        ssize_t r = read(w->wake_fd, &v, sizeof v);
        (void)r;
      }
    }
    clock_gettime(CLOCK_MONOTONIC, &last);
    ch_batch *b = calloc(1, sizeof *b);
    if (!b) break;
    /* Drain what is queued now (a few reads at most), so one batch crosses to JavaScript. */
    for (int i = 0; i < 16; i++) {
      ssize_t n = read(w->fan_fd, buf, CH_BUF);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      ch_drain_forks(w);
      ch_decode(w, buf, n, b, self);
      if (n < CH_BUF / 2) break;
    }
    if (b->n == 0) {
      free(b->recs);
      free(b);
      continue;
    }
    if (napi_call_threadsafe_function(w->tsfn, b, napi_tsfn_blocking) != napi_ok) {
      for (size_t i = 0; i < b->n; i++) ch_rec_free(&b->recs[i]);
      free(b->recs);
      free(b);
      break;
    }
  }
  free(buf);
  return NULL;
}

/* A string element, or null; `prev`/`prev_s` reuse the previous element's value when the text repeats. */
static napi_value ch_str(napi_env env, const char *v, const char **prev_s, napi_value *prev) {
  napi_value r;
  if (!v) {
    napi_get_null(env, &r);
    return r;
  }
  if (prev && *prev_s && strcmp(*prev_s, v) == 0) return *prev;
  napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &r);
  if (prev) {
    *prev_s = v;
    *prev = r;
  }
  return r;
}

/*
 * A batch crosses as columns (cheaper than one object per record): kinds (0 file, 1 marker, 2 overflow),
 * nums (the FAN_* mask, or the marker's seq), groups, paths (the entry's full path when its directory could
 * be named), handles and names (the directory's handle and the entry's name when it could not), targets.
 */
static void ch_call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  ch_batch *b = (ch_batch *)data;
  if (env && cb) {
    napi_value batch, kinds_buf, kinds, nums_buf, nums, groups, paths, handles, names, targets, global;
    void *kd, *nd;
    napi_create_arraybuffer(env, b->n, &kd, &kinds_buf);
    napi_create_typedarray(env, napi_uint8_array, b->n, kinds_buf, 0, &kinds);
    napi_create_arraybuffer(env, b->n * sizeof(double), &nd, &nums_buf);
    napi_create_typedarray(env, napi_float64_array, b->n, nums_buf, 0, &nums);
    napi_create_array_with_length(env, b->n, &groups);
    napi_create_array_with_length(env, b->n, &paths);
    napi_create_array_with_length(env, b->n, &handles);
    napi_create_array_with_length(env, b->n, &names);
    napi_create_array_with_length(env, b->n, &targets);
    const char *prev_group = NULL, *prev_dir = NULL;
    napi_value prev_group_v = NULL, prev_dir_v = NULL;
    char *path = malloc(PATH_MAX * 2);
    for (size_t i = 0; i < b->n; i++) {
      ch_rec *r = &b->recs[i];
      uint8_t *k = (uint8_t *)kd + i;
      double *num_at = (double *)nd + i;
      if (r->overflow) {
        *k = 2;
        *num_at = 0;
        continue;
      }
      if (r->marker >= 0) {
        *k = 1;
        *num_at = (double)r->marker;
        continue;
      }
      *k = 0;
      *num_at = r->mask;
      napi_set_element(env, groups, (uint32_t)i, ch_str(env, r->group, &prev_group, &prev_group_v));
      if (r->dir && path) {
        snprintf(path, PATH_MAX * 2, "%s/%s", r->dir, r->name);
        napi_set_element(env, paths, (uint32_t)i, ch_str(env, path, NULL, NULL));
      } else {
        napi_set_element(env, handles, (uint32_t)i, ch_str(env, r->dir_fh, &prev_dir, &prev_dir_v));
        napi_set_element(env, names, (uint32_t)i, ch_str(env, r->name, NULL, NULL));
      }
      if (r->target_fh) napi_set_element(env, targets, (uint32_t)i, ch_str(env, r->target_fh, NULL, NULL));
    }
    free(path);
    napi_create_object(env, &batch);
    napi_set_named_property(env, batch, "kinds", kinds);
    napi_set_named_property(env, batch, "nums", nums);
    napi_set_named_property(env, batch, "groups", groups);
    napi_set_named_property(env, batch, "paths", paths);
    napi_set_named_property(env, batch, "handles", handles);
    napi_set_named_property(env, batch, "names", names);
    napi_set_named_property(env, batch, "targets", targets);
    napi_get_global(env, &global);
    napi_call_function(env, global, cb, 1, &batch, NULL);
  }
  for (size_t i = 0; i < b->n; i++) ch_rec_free(&b->recs[i]);
  free(b->recs);
  free(b);
}

static void ch_release(ch_watcher *w) {
  if (w->fan_fd >= 0) close(w->fan_fd);
  if (w->mount_fd >= 0) close(w->mount_fd);
  if (w->marker_fd >= 0) close(w->marker_fd);
  if (w->stop_pipe[0] >= 0) close(w->stop_pipe[0]);
  if (w->stop_pipe[1] >= 0) close(w->stop_pipe[1]);
  if (w->proc_fd >= 0) close(w->proc_fd);
  if (w->wake_fd >= 0) close(w->wake_fd);
  free(w->forks);
  ch_dir_forget_all(w);
  free(w->trees_prefix);
  free(w->marker_fh);
  memset(w, 0, sizeof *w);
}

static napi_value ChangesOpen(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t = napi_undefined;
  if (argc == 4) napi_typeof(env, argv[3], &t);
  if (argc != 4 || t != napi_function) return fail(env, "changesOpen(watchPath, treesPrefix, markerDir, onBatch)");
  char *watch = path_arg(env, argv[0]), *prefix = path_arg(env, argv[1]), *marker = path_arg(env, argv[2]);
  if (!watch || !prefix || !marker || prefix[0] != '/' || prefix[strlen(prefix) - 1] != '/') {
    free(watch);
    free(prefix);
    free(marker);
    return fail(env, "changesOpen: paths must be strings; treesPrefix absolute and ending in '/'");
  }
  pthread_mutex_lock(&ch_lock);
  int slot = -1;
  for (int i = 0; i < CH_MAX_WATCHERS; i++) {
    if (!ch_watchers[i].used) {
      slot = i;
      break;
    }
  }
  if (slot < 0) {
    pthread_mutex_unlock(&ch_lock);
    free(watch);
    free(prefix);
    free(marker);
    return num(env, -EMFILE);
  }
  ch_watcher *w = &ch_watchers[slot];
  memset(w, 0, sizeof *w);
  w->used = true;
  w->fan_fd = w->mount_fd = w->marker_fd = w->stop_pipe[0] = w->stop_pipe[1] = w->proc_fd = w->wake_fd = -1;
  pthread_mutex_unlock(&ch_lock);
  w->trees_prefix = prefix;
  w->trees_prefix_len = strlen(prefix);
  snprintf(w->own_prefix, sizeof w->own_prefix, "trove-%d-", (int)getpid());
  int64_t err = 0;
  w->fan_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_REPORT_DFID_NAME_TARGET,
                            O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (w->fan_fd < 0) err = -errno;
  if (!err && fanotify_mark(w->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
                            FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_CLOSE_WRITE | FAN_ONDIR, AT_FDCWD,
                            watch) < 0) {
    err = -errno;
  }
  if (!err && (w->mount_fd = open(watch, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) err = -errno;
  if (!err && (w->marker_fd = open(marker, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) err = -errno;
  if (!err) {
    struct {
      struct file_handle fh;
      unsigned char bytes[MAX_HANDLE_SZ];
    } h;
    int mount_id;
    h.fh.handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(w->marker_fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0) err = -errno;
    else w->marker_fh = ch_hex(h.fh.f_handle, h.fh.handle_bytes, h.fh.handle_type);
  }
  if (!err && pipe2(w->stop_pipe, O_CLOEXEC) < 0) err = -errno;
  if (!err && (w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) err = -errno;
  for (int k = 0; !err && k < CH_RING; k++) {
    char name[16];
    snprintf(name, sizeof name, "r%d", k);
    int fd = openat(w->marker_fd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) err = -errno;
    else close(fd);
  }
  /* Optional: without it, records of processes gone before they are read are attributed by namespace. */
  if (!err && (w->forks = calloc(CH_LINEAGE, sizeof *w->forks)) != NULL) {
    w->proc_fd = ch_open_forks();
    if (w->proc_fd < 0) {
      free(w->forks);
      w->forks = NULL;
    }
  }
  free(watch);
  free(marker);
  if (!err) {
    napi_value name;
    napi_create_string_utf8(env, "trove_changes", NAPI_AUTO_LENGTH, &name);
    if (napi_create_threadsafe_function(env, argv[3], NULL, name, 0, 1, NULL, NULL, NULL, ch_call_js, &w->tsfn) != napi_ok) {
      err = -ENOMEM;
    } else if (pthread_create(&w->thread, NULL, ch_thread, w) != 0) {
      napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
      err = -EAGAIN;
    } else {
      pthread_setname_np(w->thread, "trove-changes"); /* how it shows in top -H and /proc/<pid>/task */
    }
  }
  if (err) {
    pthread_mutex_lock(&ch_lock);
    ch_release(w);
    pthread_mutex_unlock(&ch_lock);
    return num(env, err);
  }
  /* The watcher must not keep the process alive on its own: src/changes/ closes it on shutdown. */
  napi_unref_threadsafe_function(env, w->tsfn);
  return num(env, slot + 1);
}

static ch_watcher *ch_handle(napi_env env, napi_value v) {
  int64_t h;
  if (!int_arg(env, v, &h) || h < 1 || h > CH_MAX_WATCHERS || !ch_watchers[h - 1].used) return NULL;
  return &ch_watchers[h - 1];
}

/* The reader is told a marker is queued (it skips the rest of its pause); after the marker's own event. */
static void ch_wake(ch_watcher *w) {
  uint64_t one = 1;
  ssize_t r = write(w->wake_fd, &one, sizeof one);
  (void)r; /* EAGAIN: a wake-up is pending already */
}

static napi_value ChangesMarker(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t seq, k = -1;
  ch_watcher *w = argc >= 2 ? ch_handle(env, argv[0]) : NULL;
  if (!w || !int_arg(env, argv[1], &seq) || seq < 0 || (argc == 3 && (!int_arg(env, argv[2], &k) || k >= CH_RING))) {
    return fail(env, "changesMarker(handle, seq, ringSlot?)");
  }
  char name[32];
  if (k >= 0) {
    /* A close-write of ring file k: the caller guarantees k's previous marker was read (two identical
       events in the queue would merge into one). */
    w->ring[k] = seq;
    snprintf(name, sizeof name, "r%lld", (long long)k);
    int fd = openat(w->marker_fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      ch_wake(w);
      return num(env, 0);
    }
    /* Gone (removed by hand?): the slower marker below. */
  }
  snprintf(name, sizeof name, "m%lld", (long long)seq);
  /* Read-only: a create event, and no close-write one. */
  int fd = openat(w->marker_fd, name, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return num(env, -(int64_t)errno);
  close(fd);
  unlinkat(w->marker_fd, name, 0);
  ch_wake(w);
  return num(env, 0);
}

static napi_value ChangesClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ch_watcher *w = argc == 1 ? ch_handle(env, argv[0]) : NULL;
  if (!w) return fail(env, "changesClose(handle)");
  char c = 1;
  ssize_t n;
  do {
    n = write(w->stop_pipe[1], &c, 1);
  } while (n < 0 && errno == EINTR);
  /* The thread may be blocked handing over a batch (napi_tsfn_blocking with an unbounded queue: never long). */
  pthread_join(w->thread, NULL);
  napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
  pthread_mutex_lock(&ch_lock);
  ch_release(w);
  pthread_mutex_unlock(&ch_lock);
  return num(env, 0);
}

/* ------------------------------------------------------------------ process spawning without fork */

/*
 * spawn(file, argv, env, plan, cwd, setsid): starts `file` in a child made with clone(CLONE_VM | CLONE_VFORK |
 * CLONE_FILES), as posix_spawn does without CLONE_FILES: the child borrows this process's memory until it
 * execs, so nothing of a large parent (the exec launcher, a Node process) is copied, write-protected or faulted
 * back in, as a fork would. Its descriptor table is not copied either: the child takes a table of its own
 * holding only this process's lowest descriptors (close_range(CLOSE_RANGE_UNSHARE)), where the descriptors it
 * is to get wait in slots reserved low at the first spawn. posix_spawn copied the whole table and closed every
 * copy in the child, at a cost that grew with the launcher's descriptors (a dozen per warm or pooled sandbox):
 * 9 % of the machine's CPU at full exec load with 128 pooled sandboxes.
 *
 * plan[i] says what the child's descriptor i is: SPAWN_PIPE a new socket pair (this process keeps the other
 * end, returned at index i + 1), SPAWN_NONE closed (descriptors 0-2: /dev/null), or a descriptor of this
 * process to pass on. Every descriptor not in the plan is closed in the child. Signals: all at their default,
 * none blocked. `cwd` (a string, or null) is its working directory; `setsid` true starts it in a session (and
 * process group) of its own. Returns [pid, end of 0, end of 1, ...] (-1 where no pair), or [-errno].
 */
#define SPAWN_PIPE -2
#define SPAWN_NONE -1
#define SPAWN_MAX_FDS 16
#define SPAWN_MAX_STRINGS 1024
#define SPAWN_STACK (64 * 1024)
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

/*
 * The reserved slots: low descriptors of this process holding /dev/null between spawns. A spawn puts the
 * child's descriptors there (dup3 over the placeholder), the child copies the descriptors below spawn_keep
 * only, and the slots get /dev/null back. Close-on-exec throughout: nothing else this process starts sees them.
 */
static int spawn_slots[SPAWN_MAX_FDS];
static int spawn_null = -1;
static int spawn_keep = 0;
static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;

static int spawn_reserve(void) {
  if (spawn_keep) return 0;
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return errno;
  int top = null;
  for (int i = 0; i < SPAWN_MAX_FDS; i++) {
    spawn_slots[i] = fcntl(null, F_DUPFD_CLOEXEC, 0);
    if (spawn_slots[i] < 0) {
      int err = errno;
      while (i-- > 0) close(spawn_slots[i]);
      close(null);
      return err;
    }
    if (spawn_slots[i] > top) top = spawn_slots[i];
  }
  spawn_null = null;
  spawn_keep = top + 1;
  return 0;
}

struct spawn_req {
  const char *file;
  const char *cwd;
  char **argv;
  char **envp;
  bool setsid;
  int n;                    /* descriptors the child gets: 0..n-1 (n >= 3) */
  int src[SPAWN_MAX_FDS];   /* for each, the slot holding it, or -1 (0-2: /dev/null; others: closed) */
  volatile int err;         /* the child's errno when it could not exec */
};

/*
 * Kernels before 5.9 (no close_range): the child's own table as a full copy, then everything from `keep` up
 * closed, as listed in /proc/self/fd (raw getdents64: the child must not call into malloc).
 */
static int spawn_close_from(int keep) {
  if (unshare(CLONE_FILES) < 0) return -1;
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  char buf[1024];
  for (;;) {
    long len = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (len < 0) {
      close(dir);
      return -1;
    }
    if (len == 0) break;
    for (long off = 0; off < len;) {
      struct dirent64 *e = (struct dirent64 *)(buf + off);
      off += e->d_reclen;
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      int fd = atoi(e->d_name);
      if (fd >= keep && fd != dir) close(fd);
    }
  }
  close(dir);
  return 0;
}

/* The child, until its exec: sharing this process's memory and (at first) its descriptor table. */
static int spawn_child(void *arg) {
  struct spawn_req *r = arg;
  int keep = spawn_keep;
  /* Security: a table of its own first, with nothing of this process above the slots in it. */
  if (syscall(SYS_close_range, (unsigned)keep, ~0U, CLOSE_RANGE_UNSHARE) < 0 && spawn_close_from(keep) < 0) goto fail;
  /* Each descriptor moved above every number in play, then placed: placing one never overwrites another. */
  int hi = keep > r->n ? keep : r->n;
  int moved[SPAWN_MAX_FDS];
  for (int i = 0; i < r->n; i++) {
    int from = r->src[i] >= 0 ? r->src[i] : i < 3 ? spawn_null : -1;
    moved[i] = from < 0 ? -1 : fcntl(from, F_DUPFD, hi);
    if (from >= 0 && moved[i] < 0) goto fail;
  }
  for (int i = 0; i < r->n; i++) {
    if (moved[i] >= 0 ? dup2(moved[i], i) < 0 : close(i) < 0 && errno != EBADF) goto fail;
  }
  /* Security: nothing else, not even a descriptor this process inherited without close-on-exec. */
  if (syscall(SYS_close_range, (unsigned)r->n, ~0U, 0) < 0) {
    for (int fd = r->n; fd < hi + r->n; fd++) close(fd);
  }
  /* Every signal at its default (an ignored one would stay ignored across the exec); handlers reset at exec. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < _NSIG; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL); /* glibc's own two refuse: never ignored */
  }
  if (r->setsid && setsid() < 0) goto fail;
  if (r->cwd && chdir(r->cwd) < 0) goto fail;
  uint64_t none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
  execve(r->file, r->argv, r->envp);
fail:
  r->err = errno ? errno : EINVAL;
  _exit(127);
}

static void free_strings(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

/* A JS array of strings as a NULL-terminated array of heap strings (embedded NULs refused), or NULL. */
static char **string_array(napi_env env, napi_value arr) {
  bool is;
  uint32_t n;
  if (napi_is_array(env, arr, &is) != napi_ok || !is || napi_get_array_length(env, arr, &n) != napi_ok) return NULL;
  if (n > SPAWN_MAX_STRINGS) return NULL;
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    size_t len;
    napi_valuetype t;
    if (napi_get_element(env, arr, i, &e) != napi_ok || napi_typeof(env, e, &t) != napi_ok || t != napi_string ||
        napi_get_value_string_utf8(env, e, NULL, 0, &len) != napi_ok || !(v[i] = malloc(len + 1))) {
      free_strings(v);
      return NULL;
    }
    napi_get_value_string_utf8(env, e, v[i], len + 1, &len);
    if (strlen(v[i]) != len) {
      free_strings(v);
      return NULL;
    }
  }
  return v;
}

/* Starts r's child (r->src filled with this process's descriptors, not yet slots); its pid, or -errno. */
static pid_t spawn_start(struct spawn_req *r) {
  pthread_mutex_lock(&spawn_lock);
  int err = spawn_reserve();
  int used = 0;
  for (int i = 0; i < r->n && !err; i++) {
    if (r->src[i] < 0) continue;
    if (dup3(r->src[i], spawn_slots[used], O_CLOEXEC) < 0) err = errno;
    else r->src[i] = spawn_slots[used++];
  }
  pid_t pid = -1;
  void *stack = err ? MAP_FAILED : mmap(NULL, SPAWN_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (!err && stack == MAP_FAILED) err = errno;
  if (!err) {
    /* Every signal blocked (glibc's internal two included: a raw mask) until the child has reset its handlers. */
    uint64_t all = ~(uint64_t)0, old = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
    r->err = 0;
    pid = clone(spawn_child, (char *)stack + SPAWN_STACK, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, r);
    if (pid < 0) err = errno;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof old);
    munmap(stack, SPAWN_STACK);
  }
  for (int i = 0; i < used; i++) dup3(spawn_null, spawn_slots[i], O_CLOEXEC);
  pthread_mutex_unlock(&spawn_lock);
  if (!err && r->err) {
    /* It ended without its exec (it reported why): reaped here, never seen by the caller. */
    err = r->err;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  return err ? -err : pid;
}

static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is, setsid = false;
  uint32_t nplan = 0;
  napi_valuetype cwd_type = napi_null;
  if (argc != 6 || napi_typeof(env, argv[4], &cwd_type) != napi_ok || (cwd_type != napi_null && cwd_type != napi_string) ||
      napi_get_value_bool(env, argv[5], &setsid) != napi_ok || napi_is_array(env, argv[3], &is) != napi_ok || !is ||
      napi_get_array_length(env, argv[3], &nplan) != napi_ok || nplan > SPAWN_MAX_FDS) {
    return fail(env, "spawn(file, argv, env, plan, cwd, setsid): plan has at most 16 entries");
  }
  int64_t plan[SPAWN_MAX_FDS];
  for (uint32_t i = 0; i < nplan; i++) {
    napi_value e;
    if (napi_get_element(env, argv[3], i, &e) != napi_ok || !int_arg(env, e, &plan[i]) || plan[i] < SPAWN_PIPE || plan[i] > INT_MAX) {
      return fail(env, "spawn: plan entries are descriptors, -1 (none) or -2 (a socket pair)");
    }
  }
  struct spawn_req r = {.file = path_arg(env, argv[0]),
                        .cwd = cwd_type == napi_string ? path_arg(env, argv[4]) : NULL,
                        .argv = string_array(env, argv[1]),
                        .envp = string_array(env, argv[2]),
                        .setsid = setsid,
                        .n = nplan < 3 ? 3 : (int)nplan};
  int mine[SPAWN_MAX_FDS], theirs[SPAWN_MAX_FDS];
  for (int i = 0; i < SPAWN_MAX_FDS; i++) mine[i] = theirs[i] = r.src[i] = -1;
  bool bad = !r.file || !r.argv || !r.argv[0] || !r.envp || (cwd_type == napi_string && !r.cwd);
  int64_t result = 0;
  for (uint32_t i = 0; i < nplan && !bad && !result; i++) {
    if (plan[i] == SPAWN_PIPE) {
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) result = -errno;
      else {
        mine[i] = sv[0];
        theirs[i] = r.src[i] = sv[1];
      }
    } else if (plan[i] >= 0) {
      r.src[i] = (int)plan[i];
    }
  }
  if (!bad && !result) result = spawn_start(&r);
  for (int i = 0; i < SPAWN_MAX_FDS; i++) {
    if (theirs[i] >= 0) close(theirs[i]);
    if (result < 0 && mine[i] >= 0) close(mine[i]);
  }
  free((char *)r.file);
  free((char *)r.cwd);
  free_strings(r.argv);
  free_strings(r.envp);
  if (bad) return fail(env, "spawn: file, argv (at least one) and env must be strings without NUL");
  napi_value out;
  napi_create_array_with_length(env, result < 0 ? 1 : nplan + 1, &out);
  napi_set_element(env, out, 0, num(env, result));
  if (result >= 0) {
    for (uint32_t i = 0; i < nplan; i++) napi_set_element(env, out, i + 1, num(env, mine[i]));
  }
  return out;
}

/* waitNoHang(pid): -1 while it runs, its wait status once it ended (now reaped), or -2 - errno (not a child). */
static napi_value WaitNoHang(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t pid;
  if (argc != 1 || !int_arg(env, argv[0], &pid) || pid <= 0 || pid > INT_MAX) return fail(env, "waitNoHang(pid)");
  int status = 0;
  pid_t r;
  do {
    r = waitpid((pid_t)pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return num(env, -1);
  if (r < 0) return num(env, -2 - (int64_t)errno);
  return num(env, status);
}

/* exitedChild(): the pid of a child that has ended and is not reaped yet (left so: WNOWAIT), 0 if none, or -errno. */
static napi_value ExitedChild(napi_env env, napi_callback_info info) {
  (void)info;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r;
  do {
    r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return num(env, -(int64_t)errno);
  return num(env, si.si_pid);
}

#define EXPORT(name, fn)                                                  \
  do {                                                                    \
    napi_value f;                                                         \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);      \
    napi_set_named_property(env, exports, name, f);                       \
  } while (0)

NAPI_MODULE_INIT() {
  EXPORT("sendfile", Sendfile);
  EXPORT("openat2", Openat2);
  EXPORT("openat2Async", Openat2Async);
  EXPORT("mkdirat", Mkdirat);
  EXPORT("mkdiratAsync", MkdiratAsync);
  EXPORT("unlinkat", Unlinkat);
  EXPORT("unlinkatAsync", UnlinkatAsync);
  EXPORT("renameat2", Renameat2);
  EXPORT("renameat2Async", Renameat2Async);
  EXPORT("linkat", Linkat);
  EXPORT("linkatAsync", LinkatAsync);
  EXPORT("fchownat", Fchownat);
  EXPORT("symlinkat", Symlinkat);
  EXPORT("fstatat", Fstatat);
  EXPORT("fstat", Fstat);
  EXPORT("sizesAt", SizesAt);
  EXPORT("readlinkat", Readlinkat);
  EXPORT("getdents", Getdents);
  EXPORT("utimensat", Utimensat);
  EXPORT("lseek", Lseek);
  EXPORT("fsType", FsType);
  EXPORT("btrfsSubvolCreate", BtrfsSubvolCreate);
  EXPORT("btrfsQgroupLimit", BtrfsQgroupLimit);
  EXPORT("changesOpen", ChangesOpen);
  EXPORT("changesMarker", ChangesMarker);
  EXPORT("changesClose", ChangesClose);
  EXPORT("writevFsyncAsync", WritevFsyncAsync);
  EXPORT("createWritevAsync", CreateWritevAsync);
  EXPORT("spawn", Spawn);
  EXPORT("waitNoHang", WaitNoHang);
  EXPORT("exitedChild", ExitedChild);
  return exports;
}
