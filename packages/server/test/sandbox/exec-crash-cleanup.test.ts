/**
 * A server killed with SIGKILL runs no cleanup code: its sandboxes must still
 * die (bwrap --die-with-parent) and its cgroups and runtime directory must
 * still go away (the reaper), so nothing accumulates across crashes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ownCgroupDirs } from '../../src/sandbox/cgroups.js';
import { Reaper } from '../../src/sandbox/reaper.js';
import { runtimeBase } from '../../src/sandbox/runner.js';
import {
  SKIP_REASON,
  bwrapPath,
  isRoot,
  marker,
  processesMentioning,
  testOptions,
  transpileSandboxCode,
  waitFor,
} from './exec-fixture.js';

describe('Reaper', () => {
  const base = mkdtempSync(join(tmpdir(), 'trove-reaper-test-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('removes the watched directories only after the watched process is gone', async () => {
    const cg = join(base, 'trove-1-0');
    // Namespace groups with their slots, deepest first (rmdir only removes empty directories, as in cgroupfs).
    mkdirSync(join(cg, 'ns-a', 'slot-0'), { recursive: true });
    mkdirSync(join(cg, 'ns-a', 'slot-1'));
    mkdirSync(join(cg, 'ns-b'));
    const tree = join(base, 'runtime');
    mkdirSync(join(tree, 'probe'), { recursive: true });
    writeFileSync(join(tree, 'passwd'), 'x');
    const server = spawn('sleep', ['60'], { stdio: 'ignore' });
    const reaper = new Reaper();
    try {
      reaper.watch({ cgroups: [cg], trees: [tree] }, server.pid!);
      await new Promise((r) => setTimeout(r, 1500));
      expect(existsSync(cg) && existsSync(tree)).toBe(true);
      server.kill('SIGKILL');
      expect(await waitFor(() => !existsSync(cg) && !existsSync(tree))).toBe(true);
    } finally {
      server.kill('SIGKILL');
      reaper.stop();
    }
  });

  it('stop() cancels the watch (close() cleans up by itself)', async () => {
    const tree = join(base, 'kept');
    mkdirSync(tree);
    const server = spawn('sleep', ['60'], { stdio: 'ignore' });
    const reaper = new Reaper();
    reaper.watch({ cgroups: [], trees: [tree] }, server.pid!);
    reaper.stop();
    server.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 2500));
    expect(existsSync(tree)).toBe(true);
  });
});

const canRun = Boolean(bwrapPath) && isRoot;
describe.skipIf(!canRun)(
  `a SIGKILLed server leaves nothing behind${canRun ? '' : ` (${bwrapPath ? 'SKIPPED: needs root for cgroups' : SKIP_REASON})`}`,
  () => {
    it('kills its sandboxes and removes its cgroups and runtime directory', async () => {
      const base = mkdtempSync(join(tmpdir(), 'trove-exec-crash-'));
      try {
        transpileSandboxCode(base);
        const m = marker();
        const nsRoot = join(base, 'ns');
        writeFileSync(
          join(base, 'server.mjs'),
          `
          import { SandboxRunner } from './code/sandbox/runner.js';
          const log = { info() {}, warn() {}, error(o, msg) { console.error(msg); } };
          const svc = new SandboxRunner(${JSON.stringify({ ...testOptions, timeoutMs: 120_000 })}, log);
          const status = await svc.init();
          console.log(JSON.stringify(status));
          console.log(JSON.stringify({ launcher: svc.launcherPid() }));
          svc.run({ workspaceId: 'w', namespace: 'n', nsRoot: ${JSON.stringify(nsRoot)}, command: 'touch workspace/started; sleep ${m}1 & sleep ${m}2', sourceInit: false });
          setInterval(() => {}, 1000);
          `,
        );
        const child = spawn(process.execPath, [join(base, 'server.mjs')], {
          cwd: base,
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout!.on('data', (d) => (out += d));
        expect(await waitFor(() => existsSync(join(nsRoot, 'started')), 30_000)).toBe(true);
        expect(JSON.parse(out.trim().split('\n')[0]!)).toMatchObject({ available: true, mode: 'bubblewrap' });

        const pid = child.pid!;
        const launcher = JSON.parse(out.trim().split('\n')[1]!).launcher as number;
        expect(launcher).toBeGreaterThan(0);
        const launcherAlive = () => {
          try {
            return !/^State:\s+Z/m.test(readFileSync(`/proc/${launcher}/status`, 'utf8'));
          } catch {
            return false;
          }
        };
        expect(launcherAlive()).toBe(true);
        const own = ownCgroupDirs();
        const cgroupDirs = () =>
          [own.memory, own.pids].flatMap((d) =>
            d
              ? readdirSync(d)
                  .filter((n) => n.startsWith(`trove-${pid}-`))
                  .map((n) => join(d, n))
              : [],
          );
        const runtimeDirs = () => readdirSync(runtimeBase()).filter((n) => n.startsWith(`trove-exec-${pid}-`));
        expect(cgroupDirs().length).toBeGreaterThan(0);
        expect(runtimeDirs().length).toBe(1);
        expect(processesMentioning(m).length).toBeGreaterThan(0);

        child.kill('SIGKILL');
        // The launcher sees its channel close and exits; bwrap --die-with-parent takes the sandboxes down.
        expect(await waitFor(() => !launcherAlive())).toBe(true);
        expect(await waitFor(() => processesMentioning(m).length === 0)).toBe(true);
        expect(await waitFor(() => cgroupDirs().length === 0 && runtimeDirs().length === 0)).toBe(true);
        // And the reaper itself is gone too.
        expect(await waitFor(() => spawnSync('pgrep', ['-f', `trove-exec-reaper ${pid} `]).status === 1)).toBe(true);
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    }, 90_000);
  },
);
