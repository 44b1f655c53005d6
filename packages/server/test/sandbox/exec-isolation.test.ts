/**
 * The escape suite at the runner level: each test tries one way out of the
 * sandbox and asserts the exact outcome (the HTTP-level suite is
 * test/e2e/exec-escape.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SKIP_REASON, bwrapPath, createFixture, execUid, isRoot, type Fixture } from './exec-fixture.js';

/** The repository checkout, wherever it is on this machine. */
const REPO_ROOT = fileURLToPath(new URL('../../../..', import.meta.url)).replace(/\/$/, '');

interface Listener {
  port: number;
  connections: number;
  close(): Promise<void>;
}

async function listen(): Promise<Listener> {
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server: Server = createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.end('hello from the host\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe.skipIf(!bwrapPath)(`exec isolation${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await createFixture();
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it.skipIf(!isRoot)('runs in a sandbox claimed from the pool (root)', async () => {
    expect((await f.run('true')).exitCode).toBe(0);
    expect(f.svc.status().pool).toMatchObject({ claimed: 1, failed: 0 });
  });

  it('cannot read a sibling namespace by its absolute host path', async () => {
    const r = await f.run(`cat ${join(f.nsB, 'secret.txt')}`);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(`cat: ${join(f.nsB, 'secret.txt')}: No such file or directory\n`);
    expect(r.stdout).not.toContain(f.secretB);
  });

  it('cannot climb out of workspace/ with ..', async () => {
    const r = await f.run(
      'ls -a workspace/..; cat workspace/../b/secret.txt; cat workspace/../../b/secret.txt; ls -a workspace/../../..',
    );
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['.', '..', 'workspace']);
    expect(r.stderr).toContain('cat: workspace/../b/secret.txt: No such file or directory');
    expect(r.stderr).toContain('cat: workspace/../../b/secret.txt: No such file or directory');
    expect(r.stdout + r.stderr).not.toContain(f.secretB);
  });

  it('the sandbox root holds only the system dirs, the private tmpfs and home; no data dir anywhere', async () => {
    const r = await f.run(
      'ls -A /; find / -path /proc -prune -o -path /usr -prune -o -path /sys -prune -o -print 2>/dev/null',
    );
    const usrLinks = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'].filter((n) => existsSync(`/${n}`));
    // run: the empty, read-only mount point of a command too long for argv (run/trove).
    const expected = [...usrLinks, 'dev', 'etc', 'home', 'proc', 'run', 'tmp', 'usr', 'var'].sort();
    expect(r.stdout.split('\n').slice(0, expected.length)).toEqual(expected);
    const listing = r.stdout;
    expect(listing).not.toContain(f.dataDir);
    expect(listing).not.toContain('trove.db');
    expect(listing).not.toContain('namespaces');
    expect(listing).not.toContain('/etc/shadow');
    expect(listing).not.toContain('/etc/ssl/private');
    expect(listing).not.toContain('/root');
    // The server's own checkout (wherever it lives) is not visible either.
    expect(listing).not.toContain(REPO_ROOT);
  });

  it('cannot read the server database or data dir', async () => {
    const r = await f.run(`cat ${f.dbPath}; ls ${f.dataDir}`);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`cat: ${f.dbPath}: No such file or directory`);
    expect(r.stderr).toContain(`ls: cannot access '${f.dataDir}': No such file or directory`);
  });

  it('cannot reach the host through /proc: no server pid, pid 1 is the sandbox', async () => {
    const r = await f.run(
      `ls /proc/${process.pid}/root 2>&1; cat /proc/1/root${join(f.nsB, 'secret.txt')} 2>&1; ps -eo pid,user,comm --no-headers`,
    );
    expect(r.stdout).toContain(`ls: cannot access '/proc/${process.pid}/root': No such file or directory`);
    expect(r.stdout).toContain('No such file or directory');
    expect(r.stdout).not.toContain(f.secretB);
    const procs = r.stdout
      .split('\n')
      .filter((l) => /^\s*\d+\s/.test(l))
      .map((l) => l.trim().split(/\s+/));
    // Only the namespace's warm sandbox: bwrap's init as pid 1, its holder (root), this exec's supervisor
    // (trove-enter, root), the shell, ps.
    expect(procs.map((p) => Number(p[0]))).toEqual(expect.arrayContaining([1]));
    expect(procs.map((p) => p[2])).toEqual(expect.arrayContaining(['bwrap', 'sleep', 'trove-enter', 'sh', 'ps']));
    expect(procs.length).toBeLessThanOrEqual(6);
    expect(procs.every((p) => Number(p[0]) < 100)).toBe(true);
  });

  it('a symlink to a host path leads nowhere inside the sandbox', async () => {
    const r = await f.run(
      `ln -s ${join(f.nsB, 'secret.txt')} workspace/to-b; ln -s /etc/shadow workspace/to-shadow; cat workspace/to-b workspace/to-shadow; ln /etc/passwd workspace/hard 2>&1`,
    );
    expect(r.stdout).toMatch(
      /ln: failed to create hard link 'workspace\/hard' => '\/etc\/passwd': Invalid cross-device link/,
    );
    expect(r.stderr).toContain('cat: workspace/to-b: No such file or directory');
    expect(r.stderr).toContain('cat: workspace/to-shadow: No such file or directory');
    expect(r.stdout + r.stderr).not.toContain(f.secretB);
  });

  it('cannot open TCP connections: not to a host service on 127.0.0.1, not to port 5432, not outside', async () => {
    const host = await listen();
    try {
      const r = await f.run(
        [
          `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${host.port}' 2>&1 | tail -1 | sed 's/^.*: //'`,
          `bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' 2>&1 | tail -1 | sed 's/^.*: //'`,
          `python3 -c "
import socket
for addr in [('127.0.0.1', ${host.port}), ('1.1.1.1', 53)]:
    try:
        socket.create_connection(addr, timeout=2)
        print('connected', addr[1])
    except OSError as e:
        print(type(e).__name__, e.errno)
"`,
          'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "',
        ].join('; '),
      );
      expect(r.stdout).toBe('Connection refused\nConnection refused\nConnectionRefusedError 111\nOSError 101\nlo\n');
      expect(host.connections).toBe(0);
    } finally {
      await host.close();
    }
  });

  it('cannot become root', async () => {
    const r = await f.run(
      [
        'id -u',
        'su -c id root </dev/null >/dev/null 2>&1; echo "su=$?"',
        'sudo -n id >/dev/null 2>&1; echo "sudo=$?"',
        'unshare -r id -u 2>&1; echo "unshare=$?"',
        'python3 -c "import os; os.setuid(0)" 2>&1 | tail -1',
        "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status",
      ].join('; '),
    );
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(String(execUid));
    expect(lines[0]).not.toBe('0');
    expect(r.stdout).toMatch(/^su=[1-9]\d*$/m);
    expect(r.stdout).toMatch(/^sudo=[1-9]\d*$/m);
    expect(r.stdout).toContain('unshare: unshare failed: Operation not permitted\nunshare=1\n');
    // Root mode: uid 0 exists and setuid is refused; user-namespace mode: uid 0 is not even mapped in the sandbox.
    expect(r.stdout).toContain(
      isRoot ? 'PermissionError: [Errno 1] Operation not permitted' : 'OSError: [Errno 22] Invalid argument',
    );
    expect(r.stdout).toContain('CapEff:\t0000000000000000');
    expect(r.stdout).toContain('CapPrm:\t0000000000000000');
    expect(r.stdout).toContain('NoNewPrivs:\t1');
    if (isRoot) expect(r.stdout).toContain('CapBnd:\t0000000000000000');
  });

  it('cannot write outside workspace/, except a private /tmp and HOME that vanish', async () => {
    const targets = ['/usr/x', '/etc/x', '/x', '/home/x', '/bin/x', '/var/x', '/proc/x', '/dev/x', '/etc/passwd'];
    const r = await f.run(
      targets.map((t) => `(echo x > ${t}) 2>/dev/null && echo "wrote ${t}" || echo "refused ${t}"`).join('; ') +
        '; echo x > /tmp/ok && echo "wrote /tmp"; echo x > ~/ok && echo "wrote home"; echo x > /dev/shm/ok && echo "wrote shm"' +
        '; mount -t tmpfs none /tmp 2>&1 | sed "s/^.*: //"',
    );
    for (const t of targets) expect(r.stdout).toContain(`refused ${t}\n`);
    expect(r.stdout).toContain('wrote /tmp\nwrote home\nwrote shm\n');
    expect(r.stdout).toMatch(/must be superuser|permission denied|not permitted/i);
    const again = await f.run('ls -A /tmp ~ /dev/shm');
    expect(again.stdout).toBe('/dev/shm:\n\n/home/agent:\nworkspace\n\n/tmp:\n');
  });

  it('sees a minimal /dev and no host devices', async () => {
    const r = await f.run('ls -A /dev');
    const entries = r.stdout.trim().split('\n');
    const allowed = [
      'core',
      'fd',
      'full',
      'mqueue',
      'null',
      'ptmx',
      'pts',
      'random',
      'shm',
      'stderr',
      'stdin',
      'stdout',
      'tty',
      'urandom',
      'zero',
    ];
    expect(entries.filter((e) => !allowed.includes(e))).toEqual([]);
    expect(entries).toEqual(expect.arrayContaining(['null', 'zero', 'urandom', 'shm']));
  });

  it('has its own hostname and only its own passwd entries', async () => {
    const r = await f.run('hostname; cat /etc/passwd | cut -d: -f1,3 | tr "\\n" " "');
    const agent = execUid === 65534 ? '' : `agent:${execUid} `;
    expect(r.stdout).toBe(`trove\nroot:0 ${agent}nobody:65534 `);
  });

  it('another namespace only ever sees its own tree', async () => {
    await f.run('echo mine > workspace/only-a.txt');
    const r = await f.svc.run({
      workspaceId: 'ws-test',
      namespace: 'b',
      nsRoot: f.nsB,
      command: 'ls workspace',
      sourceInit: false,
    });
    expect(r.stdout).toBe('secret.txt\n');
    expect(existsSync(join(f.nsB, 'only-a.txt'))).toBe(false);
  });

  it('a symlink planted as the namespace root target of another tree is realpathed, not followed at mount time into a sibling', async () => {
    // nsRoot given as a symlink is resolved once by the server; the sandbox gets the real directory.
    const link = join(f.dataDir, 'ns-link');
    symlinkSync(f.nsA, link);
    const r = await f.svc.run({
      workspaceId: 'ws-test',
      namespace: 'a',
      nsRoot: link,
      command: 'ls -a workspace/.. | tr "\\n" " "',
      sourceInit: false,
    });
    expect(r.stdout).toBe('. .. workspace ');
    expect(readFileSync(join(f.nsB, 'secret.txt'), 'utf8')).toBe(f.secretB);
  });
});

describe.skipIf(!bwrapPath)(`exec with TROVE_EXEC_NETWORK=1${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  it('shares the host network, loopback services included (the operator opted in)', async () => {
    const f = await createFixture({ network: true });
    const host = await listen();
    try {
      const r = await f.run(
        `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${host.port}; cat <&3'; test -f /etc/resolv.conf && echo resolv`,
      );
      expect(r.stdout).toBe('hello from the host\nresolv\n');
      expect(host.connections).toBe(1);
    } finally {
      await host.close();
      await f.cleanup();
    }
  });
});
