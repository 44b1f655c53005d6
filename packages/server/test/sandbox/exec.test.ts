/**
 * SandboxRunner behaviour through the real sandbox: what a command sees and
 * what comes back (output, exit codes, stdin, encodings, caps, init.sh,
 * ownership, admission control, status and shutdown).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../src/errors.js';
import { SandboxRunner, TIMEOUT_EXIT_CODE, execTimeoutError } from '../../src/sandbox/runner.js';
import {
  SKIP_REASON,
  bwrapPath,
  createFixture,
  execGid,
  execUid,
  isRoot,
  recordingLogger,
  testOptions,
  type Fixture,
} from './exec-fixture.js';
import { needsRoot } from '../../../../test/helpers/root.js';

describe.skipIf(!bwrapPath)(`exec runner behaviour${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await createFixture();
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it('reports the sandbox as bubblewrap and logs that it is ready', () => {
    expect(f.svc.status()).toEqual({
      available: true,
      mode: 'bubblewrap',
      cgroups: expect.objectContaining({ mode: expect.any(String) }),
      warm: { running: expect.any(Number), idle: expect.any(Number), max: 256, idleMs: 300_000 },
      // Root keeps pre-made sandboxes (the fixture waited for them); not root, none.
      pool: isRoot
        ? { size: 8, ready: expect.any(Number), making: expect.any(Number), claimed: expect.any(Number), failed: 0 }
        : { size: 0, ready: 0, making: 0, claimed: 0, failed: 0 },
      // No change tracker is wired into a bare SandboxRunner.
      changes: null,
    });
    expect(f.logs.some((l) => l.level === 'info' && l.msg === 'exec sandbox ready (bubblewrap)')).toBe(true);
  });

  it('returns stdout, stderr and the exit code separately', async () => {
    const r = await f.run('echo out; echo err >&2; exit 3');
    expect(r).toMatchObject({ exitCode: 3, exitReason: 'exited', stdout: 'out\n', stderr: 'err\n', timedOut: false });
    expect(r.stdoutTruncated).toBe(false);
    expect(r.stderrTruncated).toBe(false);
    expect(Number.isInteger(r.durationMs) && r.durationMs >= 0).toBe(true);
  });

  it('exit code 0 and an empty stderr for a successful command', async () => {
    expect(await f.run('true')).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
  });

  it('reports death by signal as 128+N', async () => {
    const r = await f.run('kill -9 $$');
    expect(r.exitCode).toBe(137);
  });

  it('forwards stdin, and gives /dev/null when there is none', async () => {
    expect((await f.run('tr a-z A-Z', { stdin: 'hello\nworld' })).stdout).toBe('HELLO\nWORLD');
    const none = await f.run('cat; echo "[eof]"; readlink /proc/self/fd/0');
    expect(none.stdout).toBe('[eof]\n/dev/null\n');
  });

  it('forwards a large stdin the command reads only partly without hanging', async () => {
    const big = 'x'.repeat(1024 * 1024);
    const r = await f.run('head -c 5', { stdin: big });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'xxxxx' });
    const all = await f.run('wc -c', { stdin: big });
    expect(all.stdout.trim()).toBe(String(1024 * 1024));
  });

  it('round-trips unicode in the command, stdin, output and file names', async () => {
    const r = await f.run(
      'printf "%s|" "héllo wörld 日本語 🎉"; cat; echo "ünï" > workspace/"файл.txt"; ls workspace',
      {
        stdin: 'ß→∑',
      },
    );
    expect(r.stdout).toBe('héllo wörld 日本語 🎉|ß→∑файл.txt\n');
    expect(readFileSync(join(f.nsA, 'файл.txt'), 'utf8')).toBe('ünï\n');
  });

  it('decodes binary output as UTF-8 with replacement characters', async () => {
    const r = await f.run("printf 'a\\377\\376b\\000c'");
    expect(r.stdout).toBe('a\uFFFD\uFFFDb\u0000c');
    const bytes = await f.run('head -c 4096 /dev/urandom | base64 -d 2>/dev/null; head -c 3000 /dev/urandom');
    expect(bytes.exitCode).toBe(0);
    expect(bytes.stdout.length).toBeGreaterThan(0);
  });

  it('caps each stream, marks the truncation, and still drains the writer', async () => {
    const cap = testOptions.maxOutputBytes;
    const r = await f.run(`head -c ${cap * 3} /dev/zero | tr '\\0' a; echo small >&2`);
    expect(r.exitCode).toBe(0);
    expect(r.stdoutTruncated).toBe(true);
    expect(r.stderrTruncated).toBe(false);
    expect(r.stdout.startsWith('a'.repeat(cap))).toBe(true);
    expect(r.stdout.slice(cap)).toBe(`\n[trove: stdout truncated: showing the first ${cap} of ${cap * 3} bytes]\n`);
    expect(r.stderr).toBe('small\n');
  });

  it('caps stderr independently and never splits a UTF-8 character', async () => {
    const cap = testOptions.maxOutputBytes;
    // 3-byte characters do not divide the cap evenly: the last partial one must be dropped.
    const r = await f.run(`yes '€' | tr -d '\\n' | head -c ${cap + 10} >&2`);
    expect(r.stderrTruncated).toBe(true);
    const shown = r.stderr.split('\n[trove: stderr truncated')[0]!;
    expect(shown).not.toContain('\uFFFD');
    expect(Buffer.byteLength(shown)).toBe(Math.floor(cap / 3) * 3);
  });

  it('runs in a directory that contains workspace/, with HOME, PATH, UTF-8 locale and a private /tmp', async () => {
    const r = await f.run(
      'pwd; echo "$HOME|$PATH|$LANG|$LC_ALL|$USER"; ls -d workspace; echo t > /tmp/t && cat /tmp/t; locale charmap',
    );
    expect(r.stdout).toBe(
      '/home/agent\n/home/agent|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|C.UTF-8|C.UTF-8|agent\nworkspace\nt\nUTF-8\n',
    );
    expect(r.exitCode).toBe(0);
  });

  it('tells the command its namespace and workspace, and nothing of the server environment', async () => {
    process.env.TROVE_TEST_LEAK = 'server-only';
    try {
      const r = await f.run('env | sort');
      expect(r.stdout).toContain('TROVE_NAMESPACE=a\n');
      expect(r.stdout).toContain('TROVE_WORKSPACE_ID=ws-test\n');
      expect(r.stdout).not.toContain('TROVE_TEST_LEAK');
      expect(r.stdout).not.toContain('NODE');
      expect(r.stdout).not.toContain('VITEST');
    } finally {
      delete process.env.TROVE_TEST_LEAK;
    }
  });

  it('persists only workspace/ between calls', async () => {
    await f.run(
      'echo keep > workspace/keep.txt; echo lose > /tmp/lose.txt; echo lose > ~/lose.txt; echo lose > lose-cwd.txt',
    );
    const r = await f.run('cat workspace/keep.txt; ls /tmp ~');
    expect(r.stdout).toBe('keep\n/home/agent:\nworkspace\n\n/tmp:\n');
  });

  it('sources workspace/.trove/init.sh first: variables, functions and aliases reach the command', async () => {
    mkdirSync(join(f.nsA, '.trove'), { recursive: true });
    writeFileSync(
      join(f.nsA, '.trove', 'init.sh'),
      'GREETING=hi\ngreet() { echo "$GREETING $1"; }\nalias shout="echo LOUD"\n',
    );
    try {
      const r = await f.run('greet there; shout; echo "status=$?"');
      expect(r).toMatchObject({ exitCode: 0, stdout: 'hi there\nLOUD\nstatus=0\n', stderr: '' });
      const skipped = await f.run('echo "[$GREETING]"', { sourceInit: false });
      expect(skipped.stdout).toBe('[]\n');
    } finally {
      writeFileSync(join(f.nsA, '.trove', 'init.sh'), '');
    }
  });

  it('leaves $? at 0 when there is no init.sh', async () => {
    expect((await f.run('echo "$?"')).stdout).toBe('0\n');
  });

  it('shows errors of init.sh in stderr (a failing line does not stop the command)', async () => {
    mkdirSync(join(f.nsA, '.trove'), { recursive: true });
    writeFileSync(join(f.nsA, '.trove', 'init.sh'), 'no-such-tool-xyz --flag\nexport READY=1\n');
    try {
      const r = await f.run('echo "ready=$READY"');
      expect(r.stdout).toBe('ready=1\n');
      expect(r.stderr).toMatch(/no-such-tool-xyz: not found/);
      expect(r.exitCode).toBe(0);
    } finally {
      writeFileSync(join(f.nsA, '.trove', 'init.sh'), '');
    }
  });

  it('reports a syntax error in init.sh in stderr', async () => {
    mkdirSync(join(f.nsA, '.trove'), { recursive: true });
    writeFileSync(join(f.nsA, '.trove', 'init.sh'), 'if then fi (\n');
    try {
      const r = await f.run('echo never');
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/init\.sh.*Syntax error/);
    } finally {
      writeFileSync(join(f.nsA, '.trove', 'init.sh'), '');
    }
  });

  it('reports a syntax error in the command like sh -c does', async () => {
    const r = await f.run('echo "unterminated');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/Syntax error/);
  });

  it('creates files owned by the exec uid that the server can read, and can modify files the server wrote', async () => {
    writeFileSync(join(f.nsA, 'from-server.txt'), 'server');
    if (isRoot) {
      // The files module chowns what the server writes; mirror that here.
      const { chownSync } = await import('node:fs');
      chownSync(join(f.nsA, 'from-server.txt'), execUid, execGid);
    }
    const r = await f.run(
      'echo exec > workspace/from-exec.txt; mkdir -p workspace/d/e; echo more >> workspace/from-server.txt; id -u; id -g',
    );
    expect(r.stdout).toBe(`${execUid}\n${execGid}\n`);
    const st = statSync(join(f.nsA, 'from-exec.txt'));
    expect([st.uid, st.gid]).toEqual([execUid, execGid]);
    expect(st.mode & 0o777).toBe(0o644);
    expect(statSync(join(f.nsA, 'd', 'e')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(f.nsA, 'from-exec.txt'), 'utf8')).toBe('exec\n');
    expect(readFileSync(join(f.nsA, 'from-server.txt'), 'utf8')).toBe('servermore\n');
  });

  it('creates a missing namespace root, owned by the exec uid, and follows a symlinked root', async () => {
    const fresh = join(f.dataDir, 'workspaces', 'ws-test', 'namespaces', 'fresh');
    const r = await f.svc.run({
      workspaceId: 'ws-test',
      namespace: 'fresh',
      nsRoot: fresh,
      command: 'echo hi > workspace/x; ls workspace',
      sourceInit: true,
    });
    expect(r.stdout).toBe('x\n');
    expect(statSync(fresh).uid).toBe(execUid);
    const { symlinkSync } = await import('node:fs');
    const link = join(f.dataDir, 'link-to-fresh');
    symlinkSync(fresh, link);
    const viaLink = await f.svc.run({
      workspaceId: 'ws-test',
      namespace: 'fresh',
      nsRoot: link,
      command: 'cat workspace/x',
      sourceInit: true,
    });
    expect(viaLink.stdout).toBe('hi\n');
  });

  it('runs commands longer than the kernel allows in one argument (large heredocs)', async () => {
    const body = 'é'.repeat(512 * 1024); // 1 MiB of UTF-8, far above the 128 KiB argv limit
    mkdirSync(join(f.nsA, '.trove'), { recursive: true });
    writeFileSync(join(f.nsA, '.trove', 'init.sh'), 'alias count="wc -c"\n');
    try {
      const r = await f.run(
        `cat > workspace/heredoc.txt <<'EOF'\n${body}\nEOF\ncount < workspace/heredoc.txt; echo "$0"`,
      );
      expect(r).toMatchObject({ exitCode: 0, stdout: `${1024 * 1024 + 1}\nsh\n`, stderr: '' });
      expect(readFileSync(join(f.nsA, 'heredoc.txt'), 'utf8')).toBe(body + '\n');
      const err = await f.run(`echo "${'x'.repeat(100 * 1024)}" > /dev/null; exit 5`);
      expect(err.exitCode).toBe(5);
    } finally {
      writeFileSync(join(f.nsA, '.trove', 'init.sh'), '');
    }
  });

  it('returns timedOut with the output so far when the wall clock runs out', async () => {
    const r = await f.run('echo before; echo err >&2; sleep 30; echo after', { timeoutMs: 3000 });
    expect(r).toMatchObject({
      timedOut: true,
      exitCode: TIMEOUT_EXIT_CODE,
      exitReason: 'timeout',
      stdout: 'before\n',
      stderr: 'err\n',
    });
    expect(r.durationMs).toBeGreaterThanOrEqual(2950);
    expect(r.durationMs).toBeLessThan(8000);
    expect(execTimeoutError(30_000)).toMatchObject({
      status: 408,
      code: 'exec_timeout',
      detail: 'Command timed out after 30s.',
    });
    expect(execTimeoutError(1500).detail).toBe('Command timed out after 1.5s.');
  });

  it('does not hand the command descriptors the server inherited', async () => {
    const r = await f.run(
      'ls /proc/self/fd | sort -n | tr "\\n" " "; for fd in /proc/self/fd/*; do readlink "$fd"; done | grep -v -e "^/dev/null$" -e "^socket:" -e "^pipe:" -e "^/proc/" || true',
    );
    // ls itself holds one directory descriptor (3); anything else must be /dev/null-covered.
    const fds = r.stdout.split('\n')[0]!.trim().split(' ').map(Number);
    expect(fds.slice(0, 3)).toEqual([0, 1, 2]);
    expect(r.stdout.split('\n').slice(1).join('')).toBe('');
  });
});

/** A command that holds its exec slot until the test creates `workspace/<gate>`. */
const hold = (gate: string) => `while [ ! -e workspace/${gate} ]; do sleep 0.05; done; echo released`;

describe.skipIf(!bwrapPath)(`exec admission control${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await createFixture({ perNamespaceConcurrency: 2, globalConcurrency: 3, queueTimeoutMs: 400 });
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it('answers exec_busy (429, Retry-After) when a namespace stays at its cap past the queue timeout', async () => {
    // Slots are taken synchronously when run() is called, so the holders own them before the third call.
    const holders = [f.run(hold('gate-1')), f.run(hold('gate-1'))];
    const started = Date.now();
    const err = await f.run('echo third').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ status: 429, code: 'exec_busy', retryAfter: 1 });
    expect((err as AppError).detail).toBe('Too many commands are running in this namespace; retry shortly.');
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    // Another namespace is not held up by the busy one.
    const other = await f.svc.run({
      workspaceId: 'ws-test',
      namespace: 'b',
      nsRoot: f.nsB,
      command: 'echo other',
      sourceInit: false,
    });
    expect(other.stdout).toBe('other\n');
    writeFileSync(join(f.nsA, 'gate-1'), '');
    for (const r of await Promise.all(holders)) expect(r.stdout).toBe('released\n');
  });

  it('applies the global cap across namespaces', async () => {
    const ns = (n: string) => join(f.dataDir, 'workspaces', 'ws-test', 'namespaces', n);
    const holders = ['g1', 'g2', 'g3'].map((n) => {
      mkdirSync(ns(n), { recursive: true });
      return f.svc.run({
        workspaceId: 'ws-test',
        namespace: n,
        nsRoot: ns(n),
        command: hold('gate-2'),
        sourceInit: false,
      });
    });
    const err = await f.svc
      .run({ workspaceId: 'ws-test', namespace: 'g4', nsRoot: ns('g4'), command: 'true', sourceInit: false })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      status: 429,
      code: 'exec_busy',
      detail: 'Too many commands are running on this server; retry shortly.',
    });
    for (const n of ['g1', 'g2', 'g3']) writeFileSync(join(ns(n), 'gate-2'), '');
    for (const r of await Promise.all(holders)) expect(r.stdout).toBe('released\n');
  });
});

describe.skipIf(!bwrapPath)(`exec queueing${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  it('queues a call while the namespace is at its cap and runs it when a slot frees up', async () => {
    const f = await createFixture({ perNamespaceConcurrency: 1, queueTimeoutMs: 60_000 });
    try {
      const holder = f.run(hold('gate-q'));
      let queuedDone = false;
      const queued = f.run('echo queued').then((r) => ((queuedDone = true), r));
      // The holder cannot finish before the gate exists, so the queued call cannot have run yet.
      await new Promise((r) => setTimeout(r, 300));
      expect(queuedDone).toBe(false);
      writeFileSync(join(f.nsA, 'gate-q'), '');
      expect((await holder).stdout).toBe('released\n');
      expect((await queued).stdout).toBe('queued\n');
    } finally {
      await f.cleanup();
    }
  });
});

describe.skipIf(!bwrapPath)(`exec status and shutdown${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  // Only root can be misconfigured this way; a non-root server always runs commands as itself.
  it.runIf(isRoot)(
    `refuses with sandbox_unavailable (503, Retry-After) and logs the fix when the sandbox cannot be used${needsRoot('only root can be told to run commands as root')}`,
    async () => {
      const { lines, logger } = recordingLogger();
      const svc = new SandboxRunner({ ...testOptions, uid: 0, gid: 0 }, logger);
      const status = await svc.init();
      expect(status).toMatchObject({ available: false, mode: 'unavailable' });
      expect(status.fix).toMatch(/TROVE_EXEC_UID/);
      const err = lines.find((l) => l.level === 'error');
      expect(err?.msg).toMatch(/^Exec sandbox unavailable: .* Fix: set TROVE_EXEC_UID/);
      const refused = await svc
        .run({ workspaceId: 'w', namespace: 'n', nsRoot: '/nonexistent-trove', command: 'true', sourceInit: false })
        .catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 503, code: 'sandbox_unavailable', retryAfter: 30 });
      await svc.close();
    },
  );

  it('close() kills running commands and later runs are refused', async () => {
    const f = await createFixture();
    try {
      const running = f.run('echo started; touch workspace/started; sleep 60');
      while (!existsSync(join(f.nsA, 'started'))) await new Promise((r) => setTimeout(r, 20));
      const closing = Date.now();
      await f.svc.close();
      expect(Date.now() - closing).toBeLessThan(5000);
      const r = await running;
      expect(r.timedOut).toBe(false);
      expect(r.exitCode).toBe(137);
      expect(r.exitReason).toBe('signaled');
      expect(r.stdout).toBe('started\n');
      expect(r.stderr).toContain('[trove: the command was killed: the server is shutting down]');
      await expect(f.run('true')).rejects.toMatchObject({ status: 503, code: 'sandbox_unavailable' });
    } finally {
      await f.cleanup();
    }
  });
});

describe('exec insecure mode', () => {
  it('runs without a sandbox, warns loudly at start and on every exec', async () => {
    const { lines, logger } = recordingLogger();
    const svc = new SandboxRunner({ ...testOptions, insecure: true }, logger);
    expect(await svc.init()).toEqual({
      available: true,
      mode: 'insecure',
      cgroups: {
        mode: 'none',
        parent: null,
        controllers: [],
        missing: ['TROVE_EXEC_INSECURE=1: no sandbox, no cgroups'],
      },
      warm: { running: 0, idle: 0, max: 256, idleMs: 300_000 },
      // No pool without a sandbox.
      pool: { size: 0, ready: 0, making: 0, claimed: 0, failed: 0 },
      changes: null,
    });
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      expect.stringMatching(/^TROVE_EXEC_INSECURE=1: exec runs commands WITHOUT ANY SANDBOX/),
    ]);
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const root = mkdtempSync(join(tmpdir(), 'trove-insecure-test-'));
    try {
      const r = await svc.run({
        workspaceId: 'w',
        namespace: 'n',
        nsRoot: root,
        command: 'echo hi > workspace/a; cat workspace/a; id -u',
        sourceInit: true,
      });
      expect(r.stdout).toBe(`hi\n${process.getuid!()}\n`);
      expect(readFileSync(join(root, 'a'), 'utf8')).toBe('hi\n');
      const warnings = lines.filter((l) => l.level === 'warn');
      expect(warnings.at(-1)?.msg).toBe('exec ran WITHOUT a sandbox (TROVE_EXEC_INSECURE=1)');
      const long = await svc.run({
        workspaceId: 'w',
        namespace: 'n',
        nsRoot: root,
        command: `echo ${'y'.repeat(200 * 1024)} | wc -c`,
        sourceInit: false,
      });
      expect(long.stdout).toBe(`${200 * 1024 + 1}\n`);
      // No RLIMIT_NPROC of its own: it would count every process of the server user (root ignores it anyway).
      const maxProcesses = (limits: string) => limits.split('\n').find((l) => l.startsWith('Max processes'));
      const limits = await svc.run({
        workspaceId: 'w',
        namespace: 'n',
        nsRoot: root,
        command: 'cat /proc/self/limits',
        sourceInit: false,
      });
      const ours = maxProcesses(readFileSync('/proc/self/limits', 'utf8'));
      expect(ours).toMatch(/^Max processes/);
      expect(maxProcesses(limits.stdout)).toBe(ours);
      const t = await svc.run({
        workspaceId: 'w',
        namespace: 'n',
        nsRoot: root,
        command: 'sleep 30',
        sourceInit: false,
        timeoutMs: 300,
      });
      expect(t).toMatchObject({ timedOut: true, exitCode: TIMEOUT_EXIT_CODE });
    } finally {
      await svc.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
