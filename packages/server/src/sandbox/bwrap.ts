/**
 * The bubblewrap command line of a namespace's warm sandbox: what its
 * commands can see (they enter it with trove-enter, which adds a private
 * /tmp, /dev/shm and HOME per command and drops to the exec uid).
 *
 * Two ways to run it, chosen by who the server runs as:
 * - root ("privileged"): bwrap runs as root without a user namespace, so it can
 *   bind a namespace tree that sits under the root-only (0700) data dir; the
 *   holder stays root with no capabilities, commands drop to the unprivileged
 *   exec uid/gid (no caps, no_new_privs) before any user code runs. The
 *   seccomp filter stops the sandbox from creating user namespaces of its own.
 * - not root ("userns"): bwrap runs as the server's uid in a new user
 *   namespace with `--disable-userns`; the exec uid is the server's uid.
 *
 * Either way the sandbox sees: /usr read-only (and the /bin, /lib... links
 * into it), a handful of read-only /etc files, its own /proc and minimal /dev,
 * size-limited tmpfs for /tmp, /dev/shm and HOME, and the namespace tree at
 * /home/agent/workspace. Nothing else of the host exists in it.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

export const SANDBOX_HOME = '/home/agent';
export const SANDBOX_WORKSPACE = `${SANDBOX_HOME}/workspace`;
export const SANDBOX_USER = 'agent';
export const SANDBOX_HOSTNAME = 'trove';
export const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Descriptor numbers inside bwrap / trove-enter / the command (the shell can only name 0-9). */
export const FD = { info: 3, go: 4, seccomp: 5, ready: 6, command: 7, args: 8 } as const;

/** Where a command too long for argv is placed (read-only) inside the sandbox. */
export const SANDBOX_COMMAND_DIR = '/run/trove';
export const SANDBOX_COMMAND_FILE = `${SANDBOX_COMMAND_DIR}/command.sh`;

/**
 * /etc entries tools need: the dynamic linker, name service basics, time zone,
 * `file`'s magic, ImageMagick/ghostscript/fontconfig configuration, CA
 * certificates (for the network mode), perl/python site config. Never the
 * whole of /etc: it holds host secrets (ssl/private, shadow, app configs).
 */
const ETC_ENTRIES = [
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'localtime',
  'timezone',
  'alternatives',
  'nsswitch.conf',
  'host.conf',
  'gai.conf',
  'services',
  'protocols',
  'mime.types',
  'magic',
  'magic.mime',
  'ImageMagick-6',
  'ImageMagick-7',
  'fonts',
  'ghostscript',
  'papersize',
  'libpaper.d',
  'perl',
  'inputrc',
  'os-release',
  'debian_version',
  'ssl/certs',
  'ssl/openssl.cnf',
  'ca-certificates',
  'pki/tls/certs',
  'pki/ca-trust',
];

/** Top-level names that merged-/usr systems make symlinks into /usr. */
const USR_LINKS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

export interface LayoutOptions {
  privileged: boolean;
  uid: number;
  gid: number;
  network: boolean;
  /** Size of each private tmpfs (/tmp, /dev/shm, HOME). */
  tmpfsBytes: number;
  /** The sandbox's /etc, made by prepareEtc(). */
  etcDir: string;
  bwrap: string;
  seccomp: boolean;
}

/**
 * What a warm sandbox's pid 1 runs: it says it is up on FD.ready, then holds the sandbox's namespaces
 * and mounts until it is stopped (commands enter them with trove-enter).
 */
const HOLD_SCRIPT = `printf . >&${FD.ready}; exec ${FD.ready}>&-; exec /bin/sleep infinity`;

/** Everything about the host that does not change between execs, computed once. */
export class SandboxLayout {
  private readonly fixed: string[];

  constructor(readonly opts: LayoutOptions) {
    this.fixed = this.buildFixed();
  }

  private buildFixed(): string[] {
    const o = this.opts;
    const a: string[] = [];
    // bwrap creates missing parents of a mount point as 0700 root: make every parent explicitly 0755 first.
    const made = new Set<string>(['/']);
    const parents = (dest: string) => {
      const parts = dest.split('/').filter(Boolean);
      for (let i = 1; i < parts.length; i++) {
        const dir = '/' + parts.slice(0, i).join('/');
        if (!made.has(dir)) {
          made.add(dir);
          a.push('--dir', dir);
        }
      }
    };
    const roBind = (src: string, dest: string, optional = false) => {
      parents(dest);
      a.push(optional ? '--ro-bind-try' : '--ro-bind', src, dest);
    };
    if (o.privileged) {
      a.push('--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try');
      // Security: the holder and bwrap's pid 1 keep no capability (commands enter with trove-enter, which drops its own).
      a.push('--cap-drop', 'ALL');
    } else {
      // Security: --disable-userns: the command cannot nest a user namespace to regain capabilities.
      a.push(
        '--unshare-user',
        '--disable-userns',
        '--unshare-pid',
        '--unshare-ipc',
        '--unshare-uts',
        '--unshare-cgroup-try',
      );
      a.push('--uid', String(o.uid), '--gid', String(o.gid));
    }
    // Security: an empty network namespace (loopback only) unless the operator opted in.
    if (!o.network) a.push('--unshare-net');
    // Security: killed with the server, no controlling terminal to inject into, no server environment.
    a.push('--hostname', SANDBOX_HOSTNAME, '--die-with-parent', '--new-session', '--clearenv');

    a.push('--ro-bind', '/usr', '/usr');
    for (const name of USR_LINKS) {
      const p = `/${name}`;
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(p), p);
      else if (st.isDirectory()) a.push('--ro-bind', p, p);
    }
    a.push('--proc', '/proc', '--dev', '/dev');
    const size = String(o.tmpfsBytes);
    // Bare mount points, read-only with the root: every command gets its own tmpfs on them (trove_enter.c), and
    // without one of the sandbox's below it needs no unmount first (an unmount waits for the kernel).
    a.push('--dir', '/dev/shm', '--dir', '/tmp');
    // Security: in the user-namespace mode bwrap's /dev tmpfs belongs to the command's own uid (in the root
    // mode to root): read-only, or a command could leave files there for the namespace's next commands, in
    // memory that no quota counts. Its devices stay usable (a read-only mount does not stop writes to a device).
    if (!o.privileged) a.push('--remount-ro', '/dev');
    // The privileged tmpfs belongs to root: sticky world-writable lets the exec uid use it.
    parents(SANDBOX_HOME);
    a.push('--perms', o.privileged ? '1777' : '0700', '--size', size, '--tmpfs', SANDBOX_HOME);
    made.add(SANDBOX_HOME);

    // One bind for all of /etc (prepareEtc): bwrap re-reads the mount table for every bind, so 30 binds of
    // single /etc entries cost more than the rest of the sandbox together.
    roBind(o.etcDir, '/etc');
    // The resolver's file changes under DHCP: bound live (prepareEtc leaves its mount point).
    if (o.network) roBind('/etc/resolv.conf', '/etc/resolv.conf', true);
    parents('/var/tmp');
    a.push('--symlink', '../tmp', '/var/tmp');
    if (existsSync('/var/cache/fontconfig')) roBind('/var/cache/fontconfig', '/var/cache/fontconfig', true);
    return a;
  }

  /**
   * A namespace's warm sandbox (see trove_enter.c): bwrap's options travel NUL-separated on FD.args
   * (`--args`), only the holder command stays in argv. The sandbox's pid 1 is a bwrap process, so its
   * /proc/1/cmdline is readable inside: with the options in argv it would show the host paths of the
   * data dir, the namespace tree and the runtime files. bwrap closes FD.args once read. `nsRoot` null: a
   * pool sandbox, made before any namespace needs it, with a bare workspace directory that a claim later
   * mounts the namespace's tree on (trove_enter.c, claim mode).
   */
  holderArgsViaFd(nsRoot: string | null): { argv: string[]; argsData: Buffer } {
    const opts = this.options(nsRoot);
    for (const arg of opts) {
      // Security: a NUL would split one argument in two inside bwrap and shift the option stream: refuse.
      if (arg.includes('\0')) throw new Error('a sandbox option contains a NUL byte');
    }
    // Security: privileged, the holder stays root (the tenant's uid cannot signal it) with no capability (--cap-drop ALL).
    return {
      argv: ['--args', String(FD.args), '--', '/bin/sh', '-c', HOLD_SCRIPT],
      argsData: Buffer.from(opts.map((arg) => `${arg}\0`).join(''), 'utf8'),
    };
  }

  private options(nsRoot: string | null): string[] {
    const a = [...this.fixed];
    // Security: the namespace tree is the only host directory the sandbox can write.
    if (nsRoot !== null) a.push('--bind', nsRoot, SANDBOX_WORKSPACE);
    // A pool sandbox: nothing of the host there until a claim (read-only for the tenant's uid meanwhile).
    else a.push('--perms', '0755', '--dir', SANDBOX_WORKSPACE);
    // Where trove-enter mounts a command too long for argv (a read-only tmpfs per exec).
    a.push('--dir', '/run', '--dir', SANDBOX_COMMAND_DIR);
    // Security: last mount op: nothing else may be created in the sandbox root (only the tmpfs mounts stay writable).
    a.push('--remount-ro', '/');
    a.push('--chdir', SANDBOX_HOME);
    a.push('--info-fd', String(FD.info));
    if (this.opts.seccomp) a.push('--seccomp', String(FD.seccomp));
    return a;
  }
}

/** The host's /etc entries a sandbox gets (ETC_ENTRIES and Debian's python3.X site directories), as they exist. */
function etcSources(root: string): string[] {
  const out = ETC_ENTRIES.filter((rel) => existsSync(join(root, rel)));
  // Debian's python3 reads /etc/python3.X/sitecustomize.py.
  for (const name of safeReaddir(root)) if (/^python3(\.\d+)?$/.test(name)) out.push(name);
  return out;
}

/**
 * Makes the sandbox's /etc in a new directory below `dir`: generated passwd, group and hosts, and copies
 * of the host entries it may see (symlinks kept as links). Returns its path. Copies go stale when the host
 * changes them (a package upgrade): etcSignature() tells, and the caller makes a new one.
 */
export function prepareEtc(dir: string, o: { uid: number; gid: number; network: boolean }, root = '/etc'): string {
  const etc = mkdtempSync(join(dir, 'etc-'));
  chmodSync(etc, 0o755);
  for (const rel of etcSources(root)) {
    const dest = join(etc, rel);
    mkdirSync(dirname(dest), { recursive: true, mode: 0o755 });
    copyTree(join(root, rel), dest);
  }
  for (const [name, text] of Object.entries(sandboxEtc(o.uid, o.gid)))
    writeFileSync(join(etc, name), text, { mode: 0o644 });
  if (o.network) writeFileSync(join(etc, 'resolv.conf'), '', { mode: 0o644 });
  return etc;
}

/**
 * Copies `src` to `dest`: directories, regular files (mode kept) and symlinks as links; anything else, or
 * anything unreadable or gone meanwhile, is left out (the sandbox goes without it, as without a missing one).
 * Plain syscalls: fs.cpSync takes ~1 s for /etc/ssl/certs' hundreds of links, this a few milliseconds.
 */
function copyTree(src: string, dest: string): void {
  let st;
  try {
    st = lstatSync(src);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dest);
    else if (st.isFile()) {
      copyFileSync(src, dest);
      chmodSync(dest, st.mode & 0o7777);
    } else if (st.isDirectory()) {
      mkdirSync(dest, { mode: 0o755 });
      for (const name of safeReaddir(src)) copyTree(join(src, name), join(dest, name));
      chmodSync(dest, st.mode & 0o7777);
    }
  } catch {
    /* see above */
  }
}

/** A fingerprint of the host's /etc entries prepareEtc copies (names, sizes, times, link targets), at most 20,000 files. */
export function etcSignature(root = '/etc'): string {
  const h = createHash('sha256');
  let budget = 20_000;
  const walk = (p: string) => {
    if (budget-- <= 0) return;
    let st;
    try {
      st = lstatSync(p);
    } catch {
      h.update(`${p}\0-\n`);
      return;
    }
    h.update(`${p}\0${st.mode}\0${st.size}\0${st.mtimeMs}\0${st.ino}\n`);
    if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else if (st.isDirectory()) for (const name of safeReaddir(p).sort()) walk(join(p, name));
  };
  for (const rel of etcSources(root)) walk(join(root, rel));
  return h.digest('hex');
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** /etc/passwd, /etc/group and /etc/hosts as the sandbox sees them. */
export function sandboxEtc(uid: number, gid: number): { passwd: string; group: string; hosts: string } {
  const users = [`root:x:0:0:root:/root:/usr/sbin/nologin`];
  if (uid !== 0) users.push(`${SANDBOX_USER}:x:${uid}:${gid}:Trove agent:${SANDBOX_HOME}:/bin/sh`);
  if (uid !== 65534) users.push('nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin');
  const groups = ['root:x:0:'];
  if (gid !== 0) groups.push(`${SANDBOX_USER}:x:${gid}:`);
  if (gid !== 65534) groups.push('nogroup:x:65534:');
  const hosts = ['127.0.0.1\tlocalhost', `127.0.1.1\t${SANDBOX_HOSTNAME}`, '::1\tlocalhost ip6-localhost ip6-loopback'];
  return { passwd: users.join('\n') + '\n', group: groups.join('\n') + '\n', hosts: hosts.join('\n') + '\n' };
}
