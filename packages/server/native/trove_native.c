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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/btrfs.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
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

enum op_kind { OP_OPENAT2, OP_MKDIRAT, OP_UNLINKAT, OP_RENAMEAT2, OP_LINKAT, OP_FCHOWNAT, OP_SYMLINKAT };

typedef struct {
  enum op_kind kind;
  int fd1, fd2;
  char *s1, *s2;
  int64_t a, b, c, d;
  int64_t result;
  napi_async_work work;
  napi_ref callback;
} op_t;

static int64_t neg_errno(long rc) { return rc < 0 ? -(int64_t)errno : (int64_t)rc; }

static void op_run(op_t *op) {
  long rc;
  switch (op->kind) {
    case OP_OPENAT2: {
      struct open_how how;
      memset(&how, 0, sizeof how);
      how.flags = (uint64_t)op->a | O_CLOEXEC;
      how.mode = ((op->a & O_CREAT) || (op->a & O_TMPFILE) == O_TMPFILE) ? (uint64_t)op->b : 0;
      how.resolve = (uint64_t)op->c;
      /* EAGAIN: a rename raced a ".." step of a RESOLVE_BENEATH walk; the kernel asks for a retry. Bounded: the
         tenant who renames in a loop only gets its own call refused. */
      int tries = 0;
      do {
        rc = syscall(SYS_openat2, op->fd1, op->s1, &how, sizeof how);
      } while (rc < 0 && (errno == EINTR || (errno == EAGAIN && ++tries < 64)));
      break;
    }
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
    default:
      errno = EINVAL;
      rc = -1;
  }
  op->result = neg_errno(rc);
}

static void op_free(op_t *op) {
  free(op->s1);
  free(op->s2);
  free(op);
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
  napi_value cb, global, arg;
  napi_get_reference_value(env, op->callback, &cb);
  napi_get_global(env, &global);
  arg = num(env, status == napi_ok ? op->result : -ECANCELED);
  napi_delete_reference(env, op->callback);
  napi_delete_async_work(env, op->work);
  op_free(op);
  napi_call_function(env, global, cb, 1, &arg, NULL);
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
  napi_value name;
  napi_create_string_utf8(env, "trove_native", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[want], 1, &op->callback);
  if (napi_create_async_work(env, NULL, name, async_execute, async_complete, op, &op->work) != napi_ok ||
      napi_queue_async_work(env, op->work) != napi_ok) {
    napi_delete_reference(env, op->callback);
    op_free(op);
    return fail(env, "trove_native: could not queue the call");
  }
  return NULL;
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
  EXPORT("readlinkat", Readlinkat);
  EXPORT("getdents", Getdents);
  EXPORT("utimensat", Utimensat);
  EXPORT("lseek", Lseek);
  EXPORT("fsType", FsType);
  EXPORT("btrfsSubvolCreate", BtrfsSubvolCreate);
  EXPORT("btrfsQgroupLimit", BtrfsQgroupLimit);
  return exports;
}
