/**
 * The non-root mode: a server that is not root runs bwrap in a user
 * namespace (as itself). The tests run as root, so they start a child node
 * process as `nobody` running the same runner code (transpiled on the fly)
 * and check what its sandbox allows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bwrapPath, isRoot, marker, processesMentioning, testOptions, transpileSandboxCode } from './exec-fixture.js';

const NOBODY = 65534;

function usernsWorksFor(uid: number): boolean {
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'unshare', '-U', 'true']);
  return r.status === 0;
}

const canRun = Boolean(bwrapPath) && isRoot && usernsWorksFor(NOBODY);
const reason = !bwrapPath
  ? 'SKIPPED: bubblewrap is not installed; run `npm run setup:toolbox`'
  : !isRoot
    ? 'SKIPPED: needs root to start a process as another user (the whole suite already runs unprivileged here)'
    : 'SKIPPED: unprivileged user namespaces are disabled on this host (sysctl kernel.unprivileged_userns_clone=1)';

describe.skipIf(!canRun)(`exec as a non-root server${canRun ? '' : ` (${reason})`}`, () => {
  let base: string;
  let results: Record<string, { exitCode: number; stdout: string; stderr: string; timedOut: boolean } | string>;
  let status: { available: boolean; mode: string; reason?: string; cgroups?: unknown };
  let nsRoot: string;
  let sibling: string;
  const m = marker();

  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'trove-exec-nonroot-'));
    chmodSync(base, 0o755);
    transpileSandboxCode(base);
    // A data dir owned by the (non-root) server user, 0700 like the real one.
    const data = join(base, 'data');
    mkdirSync(join(data, 'ns', 'a'), { recursive: true });
    mkdirSync(join(data, 'ns', 'b'), { recursive: true });
    writeFileSync(join(data, 'ns', 'b', 'secret.txt'), 'nonroot-sibling-secret');
    for (const p of [
      data,
      join(data, 'ns'),
      join(data, 'ns', 'a'),
      join(data, 'ns', 'b'),
      join(data, 'ns', 'b', 'secret.txt'),
    ]) {
      chownSync(p, NOBODY, NOBODY);
    }
    chmodSync(data, 0o700);
    nsRoot = join(data, 'ns', 'a');
    sibling = join(data, 'ns', 'b', 'secret.txt');
    const opts = { ...testOptions, uid: NOBODY, gid: NOBODY, timeoutMs: 8000, maxProcs: 32 };
    const runner = `
      import { SandboxRunner } from './code/sandbox/runner.js';
      const log = { info() {}, warn() {}, error(o, m) { console.error(m); } };
      const svc = new SandboxRunner(${JSON.stringify(opts)}, log);
      const status = await svc.init();
      const run = (command, extra = {}) => svc.run({ workspaceId: 'w', namespace: 'a', nsRoot: ${JSON.stringify(nsRoot)}, command, sourceInit: true, ...extra })
        .then((r) => r, (e) => 'error: ' + e.message);
      const results = {};
      if (status.available) {
        results.id = await run('id -u; id -g; cat /proc/self/uid_map | tr -s " "');
        results.write = await run('echo hi > workspace/f.txt && cat workspace/f.txt');
        results.sibling = await run('cat ${sibling}; ls -a workspace/..');
        results.userns = await run('unshare -U true 2>&1; echo "rc=$?"');
        results.status = await run("grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status");
        const filler = run(\`python3 -c "
import os, signal, time
n = 0
try:
    while n < 1000:
        if os.fork() == 0:
            signal.pause()
        n += 1
except OSError as e:
    print(n, e.errno, flush=True)
time.sleep(2)
"\`, { namespace: 'filler' });
        await new Promise((r) => setTimeout(r, 1000));
        results.neighbour = await run('for i in 1 2 3 4 5; do sh -c "echo $i" & done; wait', { namespace: 'neighbour' });
        results.filler = await filler;
        results.timeout = await run('sleep ${m}1 & setsid sleep ${m}2 & echo spawned; sleep ${m}3', { timeoutMs: 3000 });
      }
      await svc.close();
      console.log(JSON.stringify({ status, results }));
    `;
    writeFileSync(join(base, 'runner.mjs'), runner, { mode: 0o644 });
    const stdout = execFileSync(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, join(base, 'runner.mjs')],
      { cwd: base, encoding: 'utf8', timeout: 90_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
    );
    ({ status, results } = JSON.parse(stdout.trim().split('\n').at(-1)!));
  }, 120_000);

  afterAll(() => {
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('probes bubblewrap successfully without root', () => {
    expect(status).toEqual({
      available: true,
      mode: 'bubblewrap',
      cgroups: { mode: 'none', parent: null, controllers: [], missing: ['the server does not run as root'] },
      warm: { running: 0, idle: 0, max: 256, idleMs: 300_000 },
      // The pool is root only: a server without root makes every sandbox on its first call's path.
      pool: { size: 0, ready: 0, making: 0, claimed: 0, failed: 0 },
      // No change tracker is wired into a bare SandboxRunner.
      changes: null,
    });
  });

  it('runs commands as the server user in a user namespace that maps that one uid only', () => {
    const r = results.id as { exitCode: number; stdout: string };
    expect(r.exitCode).toBe(0);
    const [uid, gid, map] = r.stdout.split('\n');
    expect([uid, gid]).toEqual([String(NOBODY), String(NOBODY)]);
    // --disable-userns nests one more user namespace, so the outside id is relative to bwrap's own.
    expect(map).toMatch(new RegExp(`^ ${NOBODY} \\d+ 1$`));
  });

  it('writes the namespace tree as the server user', () => {
    expect(results.write).toMatchObject({ exitCode: 0, stdout: 'hi\n' });
    expect(statSync(join(nsRoot, 'f.txt')).uid).toBe(NOBODY);
  });

  it('cannot see the sibling namespace', () => {
    const r = results.sibling as { stdout: string; stderr: string };
    expect(r.stderr).toContain(`cat: ${sibling}: No such file or directory`);
    expect(r.stdout).toBe('.\n..\nworkspace\n');
  });

  it('cannot create user namespaces, has no capabilities, no_new_privs and seccomp on', () => {
    expect((results.userns as { stdout: string }).stdout).toMatch(/Operation not permitted\nrc=1\n$/);
    expect((results.status as { stdout: string }).stdout).toBe(
      'CapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n',
    );
  });

  it('caps processes per exec: a full sandbox does not stop a neighbour from forking', () => {
    const [forked, errno] = (results.filler as { stdout: string }).stdout.trim().split(' ').map(Number);
    expect(errno).toBe(11);
    expect(forked).toBeLessThan(32);
    expect((results.neighbour as { stdout: string }).stdout.split('\n').filter(Boolean).sort()).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5',
    ]);
  });

  it('kills the whole tree on timeout', () => {
    expect(results.timeout).toMatchObject({ timedOut: true, exitCode: 124, stdout: 'spawned\n' });
    expect(processesMentioning(m)).toEqual([]);
  });
});
