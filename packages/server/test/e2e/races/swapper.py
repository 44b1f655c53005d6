"""Race attacker for the tree race tests (see harness.ts).

Exchanges the directory `d` and the symlink `l` of one directory with
renameat2(RENAME_EXCHANGE) in a tight loop, so that `d` is at any moment
either the real directory or a link to a victim. Every `repoint_every`
swaps, while `l` is the link, it is atomically re-pointed at the next target
(absolute host paths and `..` climbs), so one run aims at every victim.

The directory is held open and the exchange is done relative to that
descriptor: when the server moves the tree away (restore, namespace delete)
the attack follows it until `d`/`l` are gone (or for DETACHED_GRACE seconds
when the server leaves it behind), then opens the path again.

argv[1] is a JSON object: dir, targets, stop, ready, repoint_every.
Stops when the `stop` path exists; prints its counters as JSON on exit.
`d` and `l` are made by the test (as the tenant would); this only swaps them.
"""
import ctypes
import errno
import json
import os
import platform
import sys
import time

cfg = json.loads(sys.argv[1])
DIR = cfg["dir"]
TARGETS = cfg["targets"]
STOP = cfg["stop"]
READY = cfg["ready"]
REPOINT_EVERY = int(cfg.get("repoint_every", 0))
DETACHED_GRACE = 1.0
PARENT = os.getppid()

libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
if hasattr(libc, "renameat2"):
    _renameat2 = libc.renameat2
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

    def exchange(fd):
        return _renameat2(fd, b"d", fd, b"l", RENAME_EXCHANGE)
else:
    NR = {"x86_64": 316, "aarch64": 276}[platform.machine()]
    libc.syscall.restype = ctypes.c_long

    def exchange(fd):
        return libc.syscall(NR, fd, b"d", fd, b"l", RENAME_EXCHANGE)

# A tight loop, but the server and the test get the CPU first (on a small machine the attackers
# would otherwise starve them); it runs whenever they wait, which is where the windows are.
os.nice(10)

swaps = 0
repoints = 0
reopens = 0
failures = {}
next_target = 1
fd = None
ready = False
tmp_name = ".race-link-%d" % os.getpid()
detached_since = None
i = 0


def detached(fd):
    """True when DIR no longer names the directory held open (it was moved away or removed)."""
    try:
        here, there = os.fstat(fd), os.stat(DIR)
    except OSError:
        return True
    return (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino)


while True:
    i += 1
    if i % 256 == 0:
        # The test is gone (killed without stopping us): never outlive it.
        if os.path.exists(STOP) or os.getppid() != PARENT:
            break
        if fd is not None:
            if not detached(fd):
                detached_since = None
            elif detached_since is None:
                detached_since = time.monotonic()
            elif time.monotonic() - detached_since > DETACHED_GRACE:
                os.close(fd)
                fd = None
                detached_since = None
    if fd is None:
        try:
            fd = os.open(DIR, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue  # the tree is not there (yet): a namespace being recreated
        reopens += 1
    if exchange(fd) == 0:
        swaps += 1
        if not ready:
            with open(READY, "w") as f:
                f.write("swapping\n")
            ready = True
        if REPOINT_EVERY and swaps % REPOINT_EVERY == 0 and len(TARGETS) > 1:
            try:
                os.readlink("l", dir_fd=fd)  # only while `l` is the link
                os.symlink(TARGETS[next_target % len(TARGETS)], tmp_name, dir_fd=fd)
                # rename() of a link onto a directory fails: the real directory is never replaced.
                os.rename(tmp_name, "l", src_dir_fd=fd, dst_dir_fd=fd)
                next_target += 1
                repoints += 1
            except OSError:
                try:
                    os.unlink(tmp_name, dir_fd=fd)
                except OSError:
                    pass
        continue
    e = ctypes.get_errno()
    name = errno.errorcode.get(e, str(e))
    failures[name] = failures.get(name, 0) + 1
    if e == errno.ENOENT:
        # `d` or `l` is gone: this tree was removed (or is being rebuilt); open the path again.
        os.close(fd)
        fd = None

print(json.dumps({"swaps": swaps, "repoints": repoints, "reopens": reopens, "failures": failures}))
