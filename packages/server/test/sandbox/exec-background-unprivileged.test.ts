/**
 * Background processes of a non-root server (bwrap in a user namespace, no cgroups): signals reach every
 * process of the sandbox through its process tree (/proc/<pid>/task/<tid>/children), stdin and the ring
 * files work as the server user. Runs the runner code as `nobody` in a child node process, as
 * exec-unprivileged.test.ts does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bwrapPath, isRoot, marker, processesMentioning, testOptions, transpileSandboxCode } from './exec-fixture.js';

const NOBODY = 65534;
/** As in exec-background.test.ts: three processes that each trap SIGTERM once ready. */
const TREE =
  "trap 'echo main-term' TERM; " +
  "( trap 'echo child-term; exit 0' TERM; echo child-ready; while :; do sleep 0.05; done ) & " +
  'setsid sh -c \'trap "echo daemon-term; exit 0" TERM; echo daemon-ready; while :; do sleep 0.05; done\' & ' +
  'wait; wait; echo end';

function usernsWorksFor(uid: number): boolean {
  return (
    spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'unshare', '-U', 'true']).status === 0
  );
}

const canRun = Boolean(bwrapPath) && isRoot && usernsWorksFor(NOBODY);
const reason = !bwrapPath
  ? 'SKIPPED: bubblewrap is not installed; run `npm run setup:toolbox`'
  : !isRoot
    ? 'SKIPPED: needs root to start a process as another user'
    : 'SKIPPED: unprivileged user namespaces are disabled on this host (sysctl kernel.unprivileged_userns_clone=1)';

describe.skipIf(!canRun)(`background processes of a non-root server${canRun ? '' : ` (${reason})`}`, () => {
  let base: string;
  let out: Record<string, unknown>;
  const m = marker();

  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'trove-bg-nonroot-'));
    chmodSync(base, 0o755);
    transpileSandboxCode(base);
    const data = join(base, 'data');
    mkdirSync(join(data, 'ns', 'a'), { recursive: true });
    mkdirSync(join(data, 'out'), { recursive: true });
    for (const p of [data, join(data, 'ns'), join(data, 'ns', 'a'), join(data, 'out')]) chownSync(p, NOBODY, NOBODY);
    chmodSync(data, 0o700);
    const opts = { ...testOptions, uid: NOBODY, gid: NOBODY };
    const runner = `
      import { readdirSync, readFileSync } from 'node:fs';
      import { SandboxRunner } from './code/sandbox/runner.js';
      const log = { info() {}, warn() {}, error(o, m) { console.error(m); } };
      const svc = new SandboxRunner(${JSON.stringify(opts)}, log);
      await svc.init();
      const start = (command, dir) => svc.startProcess({ workspaceId: 'w', namespace: 'a', nsRoot: ${JSON.stringify(join(data, 'ns', 'a'))},
        command, sourceInit: false, timeoutMs: null, keepStdinOpen: true, output: { dir: ${JSON.stringify(join(data, 'out'))} + '/' + dir, capBytes: 65536 }, cpuSeconds: 0 });
      const text = (dir, s) => readdirSync(${JSON.stringify(join(data, 'out'))} + '/' + dir).filter((n) => n.startsWith(s + '.')).sort()
        .map((n) => readFileSync(${JSON.stringify(join(data, 'out'))} + '/' + dir + '/' + n, 'utf8')).join('');
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const out = {};
      const p = await start('read line; echo "got $line"', 'p1');
      out.stdin = await p.stdin(Buffer.from('hi\\n'), false);
      await p.done;
      out.stdout = text('p1', 'stdout');
      const t = await start(${JSON.stringify(TREE)}, 'p2');
      for (let i = 0; i < 250 && !(text('p2', 'stdout').includes('child-ready') && text('p2', 'stdout').includes('daemon-ready')); i++) await sleep(20);
      out.signal = await t.signal('SIGTERM');
      const o = await t.done;
      out.outcome = { exitCode: o.exitCode, exitReason: o.exitReason, stopped: o.stopped };
      out.tree = text('p2', 'stdout').trim().split('\\n').sort();
      const k = await start('sleep ${m} & setsid sleep ${m}1 & echo started; wait', 'p3');
      for (let i = 0; i < 250 && !text('p3', 'stdout').includes('started'); i++) await sleep(20);
      out.kill = await k.signal('SIGTERM');
      await k.done;
      await svc.close();
      console.log(JSON.stringify(out));
    `;
    writeFileSync(join(base, 'runner.mjs'), runner, { mode: 0o644 });
    const stdout = execFileSync(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, join(base, 'runner.mjs')],
      {
        cwd: base,
        encoding: 'utf8',
        timeout: 90_000,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      },
    );
    out = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  }, 120_000);

  afterAll(() => {
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('takes stdin and writes its output to the ring files as the server user', () => {
    expect(out.stdin).toEqual({ ok: true, written: 3, stdinOpen: true });
    expect(out.stdout).toBe('got hi\n');
  });

  it('a signal reaches every process of the sandbox (a background subshell, a setsid daemon) without cgroups', () => {
    expect(out.signal).toEqual({ ok: true, delivered: true });
    expect(out.outcome).toEqual({ exitCode: 0, exitReason: 'exited', stopped: false });
    expect(out.tree).toEqual(['child-ready', 'child-term', 'daemon-ready', 'daemon-term', 'end', 'main-term']);
    expect(out.kill).toEqual({ ok: true, delivered: true });
    expect(processesMentioning(`sleep ${m}`)).toEqual([]);
  });
});
