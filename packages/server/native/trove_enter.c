/*
 * trove-enter: runs one command inside a namespace's warm sandbox.
 *
 * The warm sandbox is a bubblewrap process tree kept per namespace (its mount,
 * pid, ipc, uts, net and cgroup namespaces, its bind mounts and limits); its
 * pid 1 holds them. This program joins them and starts the command there, as
 * a new process of that sandbox, in the exec's own cgroup, with a fresh
 * private /tmp, /dev/shm and HOME, so that one exec sees exactly what a
 * sandbox built for it alone would show. It replaces building a sandbox per
 * exec (tens of milliseconds of kernel work) with a few syscalls.
 *
 * Three processes:
 *   outer       (host pid namespace) joins the exec's cgroups and the sandbox's
 *               namespaces, forks the supervisor, reports its pid on the info
 *               descriptor, waits for it and exits with its status.
 *   supervisor  (the sandbox's pid namespace, its own mount namespace) mounts
 *               the private tmpfs, becomes the subreaper of everything the
 *               command starts, forks the command, and when the command ends
 *               SIGKILLs whatever it left behind before it exits with the
 *               command's status. It keeps no capability but CAP_KILL.
 *   command     drops to the exec uid/gid with no capabilities, no_new_privs
 *               and the seccomp filter, and execs the shell.
 *
 * Options arrive NUL-separated (`key=value`): where to enter on descriptor 8,
 * the command (its environment, stdin_null, `--` and its argv) on descriptor 4 ("go"),
 * which the supervisor reads once everything else is in place: so it can be
 * started ahead of its command, as a spare that a command then takes at once.
 * The command line of these processes is readable inside the sandbox and must
 * not name host paths: it is `trove-enter` alone.
 *
 * Claim mode (`claim=1`, a pre-made pool sandbox handed to a namespace): no command. The process checks
 * the sandbox as above, then waits on the go descriptor for `source=<the namespace directory>`; it clones
 * that tree (open_tree, in the host's mount namespace: nothing of the sandbox is involved yet), makes the
 * clone nosuid, nodev and private (mount_setattr), joins the sandbox's mount namespace and attaches it at the
 * workspace (move_mount), which must still be the bare directory the pool sandbox was made with: a sandbox
 * claimed once cannot be claimed again. Exit 0 once the tree is in place.
 *
 * Late mode (`late=1`, the spare made with a pool sandbox before it is claimed): the supervisor makes the
 * command's private mounts only once its command arrives, so that its copy of the sandbox's mount table
 * holds the workspace the claim attached meanwhile.
 *
 * Descriptors: 0-2 the command's stdio, 3 info (the supervisor's pid, JSON as
 * bubblewrap writes it), 4 go, 5 the seccomp filter, 6 the ready pipe (passed
 * to the command), 7 a command too long for argv (written to a read-only
 * file), 8 the sandbox options.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/nsfs.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The mount API (Linux 5.2), for C libraries older than glibc 2.36. */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x00000004
#endif
/* struct mount_attr (linux/mount.h, Linux 5.12), for C libraries that lack it. */
struct trove_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

#define FD_INFO 3
#define FD_GO 4
#define FD_SECCOMP 5
#define FD_READY 6
#define FD_COMMAND 7
#define FD_ARGS 8

#define MAX_CGROUPS 8
/* How long trove-enter waits for a sandbox still being built, and how often it looks. */
#define SANDBOX_WAIT_MS 30000
#define SANDBOX_POLL_US 500
#define MAX_ENV 256
#define MAX_ARGV 64

/* Exit codes of our own failures, before the command runs (the shell never reports these as its own). */
#define EXIT_SETUP 126

struct opts {
  long bwrap_pid;        /* the sandbox's bwrap process: the launcher's child, alive while the sandbox is */
  long target_pid;       /* the sandbox's pid 1 (its parent is bwrap_pid) */
  unsigned long mnt_ino; /* its mount namespace, as bwrap reported it (0 = not checked) */
  int privileged;        /* drop to uid/gid (the server is root); else the user namespace maps them already */
  uid_t uid;
  gid_t gid;
  unsigned long tmpfs_bytes;
  const char *home;      /* the private HOME tmpfs; the workspace is re-bound inside it */
  const char *workspace; /* absolute, below home */
  const char *home_mode; /* octal */
  const char *command_file; /* where a command from FD_COMMAND is placed, read-only */
  const char *cwd;
  int seccomp;
  int stdin_null; /* the command's stdin is /dev/null (no input given), not the pipe */
  int claim;      /* claim mode: attach `source` at the workspace, run no command */
  int late;       /* late mode: the private mounts are made once the command arrives */
  const char *source; /* claim mode: the namespace directory (host path, from the go descriptor) */
  const char *cgroups[MAX_CGROUPS];
  int ncgroups;
  const char *peaks[MAX_CGROUPS]; /* cgroup v1 usage peaks of the exec's group, reset once this process is in it */
  int npeaks;
  char *env[MAX_ENV + 1];
  int nenv;
  char *argv[MAX_ARGV + 1];
  int nargv;
};

static void die(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  n += snprintf(buf + n, sizeof buf - n, "%s%s\n", errno ? ": " : "", errno ? strerror(errno) : "");
  if (write(2, "trove-enter: ", 13) < 0 || write(2, buf, strlen(buf)) < 0) {
    /* nothing more to do */
  }
  _exit(EXIT_SETUP);
}

static char *read_all(int fd, size_t *len, size_t max) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  if (!buf) die("out of memory");
  for (;;) {
    if (n == cap) {
      if (cap >= max) {
        errno = 0;
        die("descriptor %d holds more than %zu bytes", fd, max);
      }
      cap *= 2;
      buf = realloc(buf, cap + 1);
      if (!buf) die("out of memory");
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read descriptor %d", fd);
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

static long parse_long(const char *key, const char *v) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *end || x < 0) {
    errno = 0;
    die("bad %s %s", key, v);
  }
  return x;
}

/*
 * Adds the options in `buf` (NUL-separated `key=value`, then `--` and argv) to `o`. The go descriptor
 * (`go` true) may carry only the command: its environment, command_file and argv.
 */
static void parse(struct opts *o, char *buf, size_t len, int go) {
  char *p = buf, *end = buf + len;
  int in_argv = 0;
  while (p < end) {
    char *tok = p;
    p += strlen(tok) + 1;
    if (in_argv) {
      if (o->nargv == MAX_ARGV) die("too many arguments");
      o->argv[o->nargv++] = tok;
      continue;
    }
    if (strcmp(tok, "--") == 0) {
      if (!go) {
        errno = 0;
        die("the command arrives on the go descriptor");
      }
      in_argv = 1;
      continue;
    }
    char *eq = strchr(tok, '=');
    if (!eq) {
      errno = 0;
      die("bad option %s", tok);
    }
    *eq = '\0';
    const char *k = tok, *v = eq + 1;
    if (go && strcmp(k, "env") != 0 && strcmp(k, "command_file") != 0 && strcmp(k, "stdin_null") != 0 &&
        !(o->claim && strcmp(k, "source") == 0)) {
      errno = 0;
      die("option %s is not for the go descriptor", k);
    }
    if (!strcmp(k, "bwrap")) o->bwrap_pid = parse_long(k, v);
    else if (!strcmp(k, "target")) o->target_pid = parse_long(k, v);
    else if (!strcmp(k, "mnt")) o->mnt_ino = (unsigned long)parse_long(k, v);
    else if (!strcmp(k, "privileged")) o->privileged = parse_long(k, v) != 0;
    else if (!strcmp(k, "uid")) o->uid = (uid_t)parse_long(k, v);
    else if (!strcmp(k, "gid")) o->gid = (gid_t)parse_long(k, v);
    else if (!strcmp(k, "tmpfs")) o->tmpfs_bytes = (unsigned long)parse_long(k, v);
    else if (!strcmp(k, "home")) o->home = v;
    else if (!strcmp(k, "workspace")) o->workspace = v;
    else if (!strcmp(k, "home_mode")) o->home_mode = v;
    else if (!strcmp(k, "command_file")) o->command_file = v;
    else if (!strcmp(k, "cwd")) o->cwd = v;
    else if (!strcmp(k, "seccomp")) o->seccomp = parse_long(k, v) != 0;
    else if (!strcmp(k, "stdin_null")) o->stdin_null = parse_long(k, v) != 0;
    else if (!strcmp(k, "claim") && !go) o->claim = parse_long(k, v) != 0;
    else if (!strcmp(k, "late") && !go) o->late = parse_long(k, v) != 0;
    else if (!strcmp(k, "source") && go) o->source = v;
    else if (!strcmp(k, "cgroup")) {
      if (o->ncgroups == MAX_CGROUPS) die("too many cgroups");
      o->cgroups[o->ncgroups++] = v;
    } else if (!strcmp(k, "peak")) {
      if (o->npeaks == MAX_CGROUPS) die("too many peaks");
      o->peaks[o->npeaks++] = v;
    } else if (!strcmp(k, "env")) {
      if (o->nenv == MAX_ENV) die("too many environment variables");
      o->env[o->nenv++] = (char *)v;
    } else {
      errno = 0;
      die("unknown option %s", k);
    }
  }
}

/* The sandbox part (descriptor 8): where to enter and as whom. */
static void check_sandbox(struct opts *o) {
  errno = 0;
  if (o->nargv != 0 || o->nenv != 0 || o->command_file) die("the command arrives on the go descriptor");
  if (!o->bwrap_pid || !o->target_pid) die("no sandbox to enter");
  if (!o->home || !o->workspace || !o->cwd) die("home, workspace and cwd are required");
  if (strncmp(o->workspace, o->home, strlen(o->home)) != 0 || o->workspace[strlen(o->home)] != '/') die("workspace must be below home");
  if (strspn(o->home_mode, "01234567") != strlen(o->home_mode)) die("bad home_mode");
  if (o->claim && (o->late || o->ncgroups || o->npeaks)) die("a claim runs no command: no late mounts, no cgroup");
}

/* One read of a small /proc or /sys file (`path` relative to `dirfd`), NUL-terminated; its length, or -1. */
static ssize_t read_text(int dirfd, const char *path, char *buf, size_t size) {
  int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return n;
}

/* The parent pid of the process whose /proc directory is `dirfd`, or -1. */
static long proc_ppid(int dirfd) {
  char buf[1024];
  if (read_text(dirfd, "stat", buf, sizeof buf) < 0) return -1;
  /* The command name may hold spaces and parentheses: the fields start after the last ')'. */
  char *rp = strrchr(buf, ')');
  if (!rp) return -1;
  char state;
  long ppid;
  if (sscanf(rp + 1, " %c %ld", &state, &ppid) != 2) return -1;
  return ppid;
}

/*
 * Moves this process into the cgroup `dir`. cgroup v1: through `tasks` (this thread only; the process has no
 * other thread, so that is the whole process, and what it forks is born inside). Writing `cgroup.procs` would
 * move the thread group, which takes the kernel's global cgroup_threadgroup_rwsem for writing and so waits
 * for an RCU grace period (7 ms on average, up to 20 ms, measured on the 2-core VM after a pause); a thread
 * moving only itself skips that lock on current kernels (0.05 ms there, Linux 6.18; older ones take it either
 * way, so nothing is lost). cgroup v2 has no `tasks` and allows thread moves only in threaded subtrees:
 * `cgroup.procs` there.
 */
static void join_cgroup(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tasks", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    fd = open(path, O_WRONLY | O_CLOEXEC);
  }
  if (fd < 0) die("open %s", path);
  if (write(fd, "0", 1) != 1) die("write %s", path);
  close(fd);
}

/* True when the namespace `fd` is the one this process is in already (`name` as in /proc/self/ns). */
static int same_ns(int fd, const char *name) {
  struct stat want, have;
  char self[32];
  snprintf(self, sizeof self, "/proc/self/ns/%s", name);
  return fstat(fd, &want) == 0 && stat(self, &have) == 0 && want.st_ino == have.st_ino && want.st_dev == have.st_dev;
}

/* Joins `fd` (a namespace of kind `type`) unless this process is in it already; closes it. */
static void join_fd(int fd, const char *name, int type) {
  /*
   * Maybe there already: the user namespace when the server is root, the cgroup namespace without
   * --unshare-cgroup, the network namespace with the network shared. The sandbox's mount, pid, ipc and uts
   * namespaces are always its own (bwrap.ts): joined without a look.
   */
  int maybe_ours = type == CLONE_NEWUSER || type == CLONE_NEWCGROUP || type == CLONE_NEWNET;
  if (!(maybe_ours && same_ns(fd, name)) && setns(fd, type) < 0) die("join the sandbox's %s namespace", name);
  close(fd);
}

static int open_ns(int dirfd, const char *name, int optional) {
  char path[32];
  snprintf(path, sizeof path, "ns/%s", name);
  int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && !(optional && errno == ENOENT)) die("open the sandbox's %s namespace", name);
  return fd;
}

static void join_ns(int dirfd, const char *name, int type, int optional) {
  int fd = open_ns(dirfd, name, optional);
  if (fd >= 0) join_fd(fd, name, type);
}

static void mount_tmpfs(const char *dest, const char *mode, unsigned long size);

/*
 * A fresh tmpfs in place of the sandbox's (detached, so that /proc/self/mountinfo lists each place once). Only
 * HOME needs it (the workspace is bound below it); /tmp and /dev/shm are bare directories in the sandbox
 * (bwrap.ts) and get their tmpfs without an unmount, which costs a wait for the kernel (0.4-1.4 ms on average).
 */
static void replace_tmpfs(const char *dest, const char *mode, unsigned long size) {
  if (umount2(dest, MNT_DETACH) < 0) die("unmount the sandbox's %s", dest);
  mount_tmpfs(dest, mode, size);
}

static void mount_tmpfs(const char *dest, const char *mode, unsigned long size) {
  char data[96];
  snprintf(data, sizeof data, "mode=%s,size=%lu", mode, size);
  if (mount("tmpfs", dest, "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) die("mount a tmpfs on %s", dest);
}

/* CAP_* numbers up to the kernel's last one (read from /proc; 63 when unknown). */
static int last_cap(void) {
  char buf[16];
  if (read_text(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", buf, sizeof buf) < 0) return 63;
  return atoi(buf);
}

/* Keeps only `keep` (a CAP_* number, or -1 for none) in every capability set, the bounding set included. */
static void limit_caps(int keep, int last) {
  for (int c = 0; c <= last; c++) {
    if (c == keep || prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) die("drop capability %d from the bounding set", c);
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) die("clear the ambient capabilities");
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (keep >= 0) {
    data[keep / 32].effective = data[keep / 32].permitted = 1u << (keep % 32);
  }
  if (syscall(SYS_capset, &hdr, data) < 0) die("set the capabilities");
}

/* Empties the bounding set (needs CAP_SETPCAP, which stays effective until the ids change). */
static void limit_caps_bounding(int last) {
  for (int c = 0; c <= last; c++) {
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) die("drop capability %d from the bounding set", c);
  }
}

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* Closes every descriptor from `lowest` up, but `except` (-1: none). */
static void close_from(int lowest, int except) {
  if (except < lowest) {
    if (syscall(SYS_close_range, lowest, ~0U, 0) == 0) return;
  } else if (syscall(SYS_close_range, lowest, except - 1, 0) == 0 && syscall(SYS_close_range, except + 1, ~0U, 0) == 0) {
    return;
  }
  /* Before Linux 5.9: one by one. */
  for (int fd = lowest; fd < 1024; fd++) {
    if (fd != except) close(fd);
  }
}

/* The command, in the sandbox's pid namespace: drop everything, then exec. Never returns. */
static void run_command(struct opts *o, const char *filter, size_t filter_len, int last, int userns) {
  if (setsid() < 0) die("setsid");
  /*
   * Unprivileged mode: the sandbox's own user namespace (bwrap --disable-userns nests one below the one
   * that owns the other namespaces, with user namespaces disabled in it), joined last: the mounts above
   * needed the owner's.
   */
  if (userns >= 0) join_fd(userns, "user", CLONE_NEWUSER);
  if (o->privileged) {
    /*
     * Security: the bounding set goes first (it needs CAP_SETPCAP), then the ids; no capability can come back.
     * The supervisor emptied it already: this only checks (reads, no drop left to make).
     */
    limit_caps_bounding(last);
    if (setgroups(0, NULL) < 0) die("clear the supplementary groups");
    if (setresgid(o->gid, o->gid, o->gid) < 0) die("set the gid");
    if (setresuid(o->uid, o->uid, o->uid) < 0) die("set the uid");
  }
  limit_caps(-1, last);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("set no_new_privs");
  /* After the id change (which clears it): the command dies with its supervisor. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die("set the parent-death signal");
  if (chdir(o->cwd) < 0) die("chdir %s", o->cwd);
  if (o->stdin_null) {
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0) die("open /dev/null");
    if (null != 0) close(null);
  }
  close_from(3, FD_READY);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  if (filter) {
    /* Security: last, right before exec: everything above needed syscalls the filter refuses. */
    struct sock_fprog prog = {(unsigned short)(filter_len / sizeof(struct sock_filter)), (struct sock_filter *)filter};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) die("load the seccomp filter");
  }
  o->env[o->nenv] = NULL;
  o->argv[o->nargv] = NULL;
  execve(o->argv[0], o->argv, o->env);
  die("exec %s", o->argv[0]);
}

/* Every child of this process (after the command ended: what it left behind, reparented to us). */
static int kill_children(void) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)syscall(SYS_gettid));
  char buf[8192];
  if (read_text(AT_FDCWD, path, buf, sizeof buf) < 0) return 0;
  int killed = 0;
  for (char *s = strtok(buf, " \n"); s; s = strtok(NULL, " \n")) {
    long pid = strtol(s, NULL, 10);
    if (pid > 1 && kill((pid_t)pid, SIGKILL) == 0) killed++;
  }
  return killed;
}

static int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

/* The command's private mount namespace: its own /tmp, /dev/shm and HOME, the workspace bound again in HOME. */
static void private_mounts(struct opts *o) {
  /* A private mount namespace: the tmpfs below exist for this exec only and vanish with it. */
  if (o->late) {
    /* Security: a pool sandbox's spare runs a command only in a claimed sandbox (the workspace a mount of its own). */
    struct stat home, ws;
    if (stat(o->home, &home) < 0 || stat(o->workspace, &ws) < 0) die("stat the workspace");
    if (home.st_dev == ws.st_dev) {
      errno = 0;
      die("the sandbox holds no workspace");
    }
  }
  if (unshare(CLONE_NEWNS) < 0) die("unshare the mount namespace");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make the mounts private");
  /* Security: a copy of the sandbox's workspace mount (its nosuid/nodev flags with it), nothing else. */
  int ws = (int)syscall(SYS_open_tree, AT_FDCWD, o->workspace, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (ws < 0) die("copy the workspace mount");
  mount_tmpfs("/tmp", "1777", o->tmpfs_bytes);
  mount_tmpfs("/dev/shm", "1777", o->tmpfs_bytes);
  replace_tmpfs(o->home, o->home_mode, o->tmpfs_bytes);
  if (mkdir(o->workspace, 0755) < 0) die("mkdir %s", o->workspace);
  if (syscall(SYS_move_mount, ws, "", AT_FDCWD, o->workspace, MOVE_MOUNT_F_EMPTY_PATH) < 0) die("mount the workspace");
  close(ws);
}

/* The supervisor: the command's private mounts, its subreaper, its end. Never returns. */
static void supervise(struct opts *o, const char *filter, size_t filter_len, int userns) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die("set the parent-death signal");
  int last = last_cap();
  /*
   * Security: the bounding set is emptied here, once, for this process and the command it forks (an empty
   * bounding set takes nothing from the capabilities in use now, only what an exec could give). Each drop is a
   * credentials change; done before the command is known, it is off the command's path.
   */
  if (o->privileged) limit_caps_bounding(last);
  if (!o->late) private_mounts(o);
  /*
   * Everything above is done before the command is known (a spare, started ahead of its command). The
   * command, its environment and where a long command goes arrive now; end-of-file without them: unused.
   */
  size_t go_len;
  char *go = read_all(FD_GO, &go_len, 1 << 20);
  close(FD_GO);
  if (go_len == 0) _exit(0);
  /* A pool sandbox's spare: the workspace was attached while it waited (claim mode); its copy is taken now. */
  if (o->late) private_mounts(o);
  parse(o, go, go_len, 1);
  errno = 0;
  if (o->nargv == 0) die("no command");
  if (o->command_file) {
    size_t len;
    char *text = read_all(FD_COMMAND, &len, (size_t)1 << 30);
    char dir[256];
    snprintf(dir, sizeof dir, "%s", o->command_file);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) die("bad command_file");
    *slash = '\0';
    mount_tmpfs(dir, "0755", len + 65536);
    int fd = open(o->command_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) die("create %s", o->command_file);
    for (size_t off = 0; off < len;) {
      ssize_t w = write(fd, text + off, len - off);
      if (w < 0) die("write %s", o->command_file);
      off += (size_t)w;
    }
    close(fd);
    free(text);
    if (mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) die("make %s read-only", dir);
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) die("become a subreaper");
  pid_t cmd = fork();
  if (cmd < 0) die("fork");
  if (cmd == 0) run_command(o, filter, filter_len, last, userns);
  if (userns >= 0) close(userns);
  /* Our copies of the command's descriptors go: the launcher sees its output end when the command's tree ends. */
  close_from(0, -1);
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  (void)fd;
  /* Security: root in the sandbox, but able only to signal (what it supervises runs as another uid). */
  limit_caps(o->privileged ? CAP_KILL : -1, last);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  int status = 0, code = -1;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, __WALL);
    if (p < 0) {
      if (errno == EINTR) continue;
      break; /* ECHILD: nothing left */
    }
    if (p == cmd) {
      status = st;
      code = exit_code(st);
    }
    /* Once the command ended, everything it started ends too (as when a sandbox's pid 1 exits). */
    if (code >= 0) kill_children();
  }
  _exit(code >= 0 ? code : exit_code(status));
}

/*
 * Claim mode: attaches the namespace directory at the pool sandbox's workspace (see the top of this file).
 * `dirfd` is the sandbox's pid 1 in /proc, `root` its root. Never returns.
 */
static void claim(struct opts *o, int dirfd, int root) {
  errno = 0;
  if (!o->privileged) die("a claim needs a root server");
  size_t go_len;
  char *go = read_all(FD_GO, &go_len, 1 << 20);
  close(FD_GO);
  if (go_len == 0) _exit(0); /* dropped before a namespace claimed it */
  parse(o, go, go_len, 1);
  errno = 0;
  if (!o->source || o->source[0] != '/') die("claim: no absolute source");
  /* In the host's mount namespace: a detached copy of the namespace tree (its submounts with it, as bwrap's --bind). */
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, o->source,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
  if (tree < 0) die("copy the namespace tree");
  /* Security: no set-id programs or device nodes through it, and no mount events shared with the host's tree. */
  struct trove_mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.propagation = MS_PRIVATE;
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) die("set nosuid,nodev on the tree");
  struct stat want;
  if (fstat(tree, &want) < 0) die("stat the tree");
  join_ns(dirfd, "mnt", CLONE_NEWNS, 0);
  if (fchdir(root) < 0 || chroot(".") < 0 || chdir("/") < 0) die("enter the sandbox's root");
  /* Security: only a sandbox nobody claimed: its workspace is still the bare directory of its HOME tmpfs. */
  struct stat home, ws;
  if (stat(o->home, &home) < 0 || stat(o->workspace, &ws) < 0) die("stat the sandbox's workspace");
  if (!S_ISDIR(ws.st_mode) || ws.st_dev != home.st_dev) {
    errno = 0;
    die("the sandbox's workspace is taken");
  }
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, o->workspace, MOVE_MOUNT_F_EMPTY_PATH) < 0) die("attach the namespace tree");
  close(tree);
  if (stat(o->workspace, &ws) < 0) die("stat the workspace");
  if (ws.st_dev != want.st_dev || ws.st_ino != want.st_ino) {
    errno = 0;
    die("the workspace is not the namespace tree");
  }
  _exit(0);
}

int main(void) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die("set the parent-death signal");
  size_t len;
  char *buf = read_all(FD_ARGS, &len, 1 << 20);
  close(FD_ARGS);
  struct opts o;
  memset(&o, 0, sizeof o);
  o.home_mode = "1777";
  parse(&o, buf, len, 0);
  check_sandbox(&o);

  char *filter = NULL;
  size_t filter_len = 0;
  if (o.seccomp) {
    filter = read_all(FD_SECCOMP, &filter_len, 1 << 20);
    if (filter_len == 0 || filter_len % sizeof(struct sock_filter) != 0) {
      errno = 0;
      die("bad seccomp filter (%zu bytes)", filter_len);
    }
    close(FD_SECCOMP);
  }

  /* Security: into the exec's cgroups before anything else, so every process it makes is counted and killable. */
  for (int i = 0; i < o.ncgroups; i++) join_cgroup(o.cgroups[i]);
  /*
   * The group's usage peak from its previous exec goes (the launcher compares the peak with the limit at the
   * end: "limit reached"). Best effort, as a peak it cannot reset only makes that report less exact.
   */
  for (int i = 0; i < o.npeaks; i++) {
    int fd = open(o.peaks[i], O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && write(fd, "0", 1) < 0) {
      /* reported by nothing: see above */
    }
    if (fd >= 0) close(fd);
  }

  /*
   * Security: the pid could have been reused if the sandbox died. Its bwrap process is the launcher's child
   * (not reaped, so its pid is not reused), and only the sandbox's pid 1 has it as parent. The directory
   * descriptor pins the process we checked: if it dies afterwards, opening its namespaces fails.
   */
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld", o.target_pid);
  int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) die("the sandbox (pid %ld) is gone", o.target_pid);
  if (proc_ppid(dirfd) != o.bwrap_pid) {
    errno = 0;
    die("pid %ld is not the sandbox any more", o.target_pid);
  }
  if (o.mnt_ino) {
    struct stat st;
    int fd = openat(dirfd, "ns/mnt", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) die("the sandbox's mount namespace");
    if ((unsigned long)st.st_ino != o.mnt_ino) {
      errno = 0;
      die("pid %ld is not the sandbox any more", o.target_pid);
    }
    close(fd);
  }
  /*
   * The sandbox may still be being built (a spare started as soon as bwrap said where it is): its pid 1 forks
   * the holder only once every mount is in place. Wait for that child, polling, at most SANDBOX_WAIT_MS.
   */
  char children[64];
  snprintf(children, sizeof children, "task/%ld/children", o.target_pid);
  struct stat host_root;
  if (stat("/", &host_root) < 0) die("stat /");
  for (int waited = 0;; waited++) {
    char buf[64];
    struct stat its_root;
    errno = 0;
    ssize_t n = read_text(dirfd, children, buf, sizeof buf);
    if (n < 0 && (errno == ESRCH || errno == ENOENT)) die("the sandbox (pid %ld) is gone", o.target_pid);
    /* Security: never the host's root (a sandbox not yet pivoted into its own): that is not a sandbox yet. */
    if (n > 0 && fstatat(dirfd, "root", &its_root, 0) == 0 && (its_root.st_dev != host_root.st_dev || its_root.st_ino != host_root.st_ino)) break;
    if (waited * SANDBOX_POLL_US >= SANDBOX_WAIT_MS * 1000) {
      errno = 0;
      die("the sandbox (pid %ld) did not come up", o.target_pid);
    }
    usleep(SANDBOX_POLL_US);
  }
  int root = openat(dirfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("open the sandbox's root");
  struct stat root_st;
  if (fstat(root, &root_st) < 0) die("stat the sandbox's root");
  if (root_st.st_dev == host_root.st_dev && root_st.st_ino == host_root.st_ino) {
    errno = 0;
    die("the sandbox (pid %ld) has no root of its own", o.target_pid);
  }
  if (o.claim) claim(&o, dirfd, root);

  /*
   * Unprivileged mode: first the user namespace that owns the sandbox's namespaces (it grants what
   * joining them and mounting need), the sandbox's own (maybe nested) one last, in the command.
   */
  int ipc = open_ns(dirfd, "ipc", 0);
  int owner = ioctl(ipc, NS_GET_USERNS);
  if (owner < 0) die("find the owner of the sandbox's namespaces");
  join_fd(owner, "user", CLONE_NEWUSER);
  int userns = open_ns(dirfd, "user", 0);
  if (same_ns(userns, "user")) {
    close(userns);
    userns = -1;
  }
  join_fd(ipc, "ipc", CLONE_NEWIPC);
  join_ns(dirfd, "uts", CLONE_NEWUTS, 0);
  join_ns(dirfd, "net", CLONE_NEWNET, 0);
  join_ns(dirfd, "cgroup", CLONE_NEWCGROUP, 1);
  join_ns(dirfd, "pid", CLONE_NEWPID, 0);
  join_ns(dirfd, "mnt", CLONE_NEWNS, 0);
  if (fchdir(root) < 0 || chroot(".") < 0 || chdir("/") < 0) die("enter the sandbox's root");
  close(root);
  close(dirfd);

  pid_t sup = fork();
  if (sup < 0) die("fork");
  if (sup == 0) supervise(&o, filter, filter_len, userns);

  /* The launcher signals the supervisor's subtree by this pid (as it does a bwrap sandbox's pid 1). */
  char info[64];
  int n = snprintf(info, sizeof info, "{\"child-pid\": %ld}\n", (long)sup);
  if (write(FD_INFO, info, (size_t)n) < 0) {
    /* no reader: nobody to tell */
  }
  close_from(0, -1);
  int status;
  for (;;) {
    pid_t p = waitpid(sup, &status, 0);
    if (p == sup) break;
    if (p < 0 && errno != EINTR) _exit(EXIT_SETUP);
  }
  _exit(exit_code(status));
}
