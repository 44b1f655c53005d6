/**
 * The exec launcher: sandboxes are started by a small child process, never
 * forked from the server itself (fork copies the server's page tables while
 * its event loop waits). What must hold: bwrap is the launcher's child; a
 * launcher that dies takes its sandboxes with it, fails their execs with a
 * clear 503 and is replaced on the next exec; close() stops it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { AppError } from '../../src/errors.js';
import {
  SKIP_REASON,
  bwrapPath,
  createFixture,
  marker,
  processesMentioning,
  waitFor,
  type Fixture,
} from './exec-fixture.js';

/** A process's command name, or '' once it has exited (any process may end while the test reads /proc). */
function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

function ppid(pid: number): number | null {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return state !== 'Z';
  } catch {
    return false;
  }
}

describe.skipIf(!bwrapPath)(`exec launcher process${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await createFixture();
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it('starts with the probe, as a separate process named trove-exec-launcher', () => {
    const pid = f.svc.launcherPid();
    expect(pid).toBeGreaterThan(0);
    expect(pid).not.toBe(process.pid);
    expect(ppid(pid!)).toBe(process.pid);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toMatch(/^trove-exec-launcher/);
  });

  it('forks the sandbox and every command from the launcher, never from the server', async () => {
    const m = marker();
    const running = f.run(`sleep ${m}`);
    expect(await waitFor(() => processesMentioning(`sleep ${m}`).length > 0)).toBe(true);
    const launcher = f.svc.launcherPid()!;
    const procs = processesMentioning(`sleep ${m}`);
    // The command descends from the launcher (through trove-enter); nothing of the exec is the server's child.
    for (const p of procs) {
      const chain: number[] = [];
      for (let q = ppid(p.pid); q && q > 1 && chain.length < 16; q = ppid(q)) chain.push(q);
      expect(chain).toContain(launcher);
      expect(chain.indexOf(process.pid)).toBe(chain.indexOf(launcher) + 1);
    }
    // The namespace's warm sandbox (bwrap) is the launcher's child too.
    const bwraps = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => comm(Number(d)) === 'bwrap' && ppid(Number(d)) === launcher);
    expect(bwraps.length).toBeGreaterThan(0);
    await f.cleanup();
    const r = await running;
    expect(r.stderr).toContain('the server is shutting down');
    f = await createFixture();
  });

  it('a launcher killed mid-exec fails that exec with 503, kills its sandbox, and is replaced on the next exec', async () => {
    const m = marker();
    const first = f.svc.launcherPid()!;
    const running = f.run(`sleep ${m}`);
    expect(await waitFor(() => processesMentioning(`sleep ${m}`).length > 0)).toBe(true);
    process.kill(first, 'SIGKILL');

    const err = await running.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(503);
    expect((err as AppError).code).toBe('sandbox_unavailable');
    expect((err as AppError).message).toMatch(/launcher stopped/);
    // bwrap --die-with-parent: the sandbox does not outlive its launcher.
    expect(await waitFor(() => processesMentioning(`sleep ${m}`).length === 0)).toBe(true);
    expect(f.logs.some((l) => l.level === 'error' && l.msg === 'exec launcher died; its commands were killed')).toBe(
      true,
    );

    const r = await f.run('echo again');
    expect(r).toMatchObject({ exitCode: 0, stdout: 'again\n' });
    const second = f.svc.launcherPid()!;
    expect(second).not.toBe(first);
    expect(alive(second)).toBe(true);
  });

  it('close() stops the launcher process', async () => {
    const pid = f.svc.launcherPid()!;
    expect(alive(pid)).toBe(true);
    await f.cleanup();
    expect(await waitFor(() => !alive(pid))).toBe(true);
    expect(f.svc.launcherPid()).toBeUndefined();
    f = await createFixture();
  });

  it('close() does not hang on a launcher that stopped answering: it is killed, and so are its sandboxes', async () => {
    const m = marker();
    const pid = f.svc.launcherPid()!;
    const running = f.run(`sleep ${m}`).then(
      () => null,
      (e: unknown) => e,
    );
    expect(await waitFor(() => processesMentioning(`sleep ${m}`).length > 0)).toBe(true);
    process.kill(pid, 'SIGSTOP');
    try {
      await f.cleanup();
      expect(await running).toBeInstanceOf(AppError);
      expect(await waitFor(() => !alive(pid))).toBe(true);
      expect(await waitFor(() => processesMentioning(`sleep ${m}`).length === 0)).toBe(true);
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone, as it should be */
      }
    }
    f = await createFixture();
  }, 30_000);

  it('the launcher exits, killing its sandboxes, when its server goes away without closing it', async () => {
    // Closing the channel is what the kernel does for a SIGKILLed server; exec-crash-cleanup covers that case.
    const m = marker();
    const pid = f.svc.launcherPid()!;
    const running = f.run(`sleep ${m}`).catch((e: unknown) => e);
    expect(await waitFor(() => processesMentioning(`sleep ${m}`).length > 0)).toBe(true);
    const launcher = (f.svc as unknown as { launcher: { child: { disconnect(): void } } }).launcher;
    launcher.child.disconnect();
    expect(await waitFor(() => !alive(pid))).toBe(true);
    expect(await waitFor(() => processesMentioning(`sleep ${m}`).length === 0)).toBe(true);
    expect(await running).toBeInstanceOf(AppError);
  });
});
