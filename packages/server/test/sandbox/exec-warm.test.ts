/**
 * Warm namespace sandboxes (sandbox/warm.ts, native/trove_enter.c): a
 * namespace's commands enter one sandbox kept while used, yet each sees what a
 * sandbox of its own would show (fresh /tmp, /dev/shm and HOME), nothing it
 * started outlives it, idle sandboxes are stopped, and a sandbox that died is
 * replaced on the next command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { nsGroupName } from '../../src/sandbox/cgroups.js';
import { join } from 'node:path';
import {
  SKIP_REASON,
  bwrapPath,
  createFixture,
  marker,
  processesMentioning,
  waitFor,
  type Fixture,
} from './exec-fixture.js';

/**
 * One sandbox for its whole life, as the command sees it: its pid 1's start time and its pid namespace. The start
 * time alone (10 ms ticks) can repeat: pool sandboxes are made two at a time, so two of them may start in the same
 * tick; two sandboxes alive at once have different namespaces, and one made after another stopped starts later.
 */
const PID1 = "echo $(cut -d' ' -f22 /proc/1/stat) $(readlink /proc/self/ns/pid)";

/** Host pids of the warm sandboxes' holders (their `sleep infinity`) whose sandbox binds `nsRoot`. */
function holdersOf(nsRoot: string): number[] {
  return processesMentioning('sleep infinity')
    .filter((p) => p.cmd.startsWith('/bin/sleep'))
    .map((p) => p.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(nsRoot);
      } catch {
        return false;
      }
    });
}

describe.skipIf(!bwrapPath)(`warm namespace sandboxes${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await createFixture({ warmIdleMs: 400, warmMax: 2 });
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it("runs a namespace's commands in one sandbox, each with a fresh /tmp, /dev/shm and HOME", async () => {
    const first = await f.run(`${PID1}; echo a > /tmp/t; echo b > /dev/shm/s; echo c > ~/h; ls -A ~ /tmp /dev/shm`);
    expect(first.exitCode).toBe(0);
    const second = await f.run(`${PID1}; ls -A ~ /tmp /dev/shm; cat /tmp/t ~/h 2>&1 | head -1`);
    expect(second.exitCode).toBe(0);
    const [pid1a] = first.stdout.split('\n');
    const [pid1b, ...rest] = second.stdout.split('\n');
    expect(pid1b).toBe(pid1a);
    expect(first.stdout).toContain('\nh\n');
    // The second command's HOME holds only the workspace, its /tmp and /dev/shm nothing.
    expect(rest.join('\n')).toBe(
      '/dev/shm:\n\n/home/agent:\nworkspace\n\n/tmp:\ncat: /tmp/t: No such file or directory\n',
    );
    expect(f.svc.status().warm).toMatchObject({ running: 1, idle: 1 });
  });

  it('kills what a command leaves behind (a daemon in its own session), and only that', async () => {
    const m = marker();
    const r = await f.run(`setsid sh -c 'sleep ${m}1 & sleep ${m}2' > /dev/null 2>&1 & (sleep ${m}3 &); echo started`);
    expect(r).toMatchObject({ exitCode: 0, stdout: 'started\n' });
    expect(await waitFor(() => processesMentioning(m).length === 0, 3000)).toBe(true);
    // The sandbox itself stays up for the next command.
    expect(holdersOf(f.nsA)).toHaveLength(1);
  });

  it('stops an idle sandbox after the idle time, and makes a new one for the next command', async () => {
    const before = (await f.run(PID1)).stdout;
    expect(holdersOf(f.nsA)).toHaveLength(1);
    expect(await waitFor(() => holdersOf(f.nsA).length === 0, 5000)).toBe(true);
    expect(f.svc.status().warm.running).toBe(0);
    const after = (await f.run(PID1)).stdout;
    expect(after).not.toBe(before);
  });

  it('keeps at most warmMax idle sandboxes, stopping the least recently used', async () => {
    const dirs = ['c', 'd', 'e'].map((n) => join(f.dataDir, 'workspaces', 'ws-test', 'namespaces', n));
    for (const [i, d] of dirs.entries()) {
      mkdirSync(d, { recursive: true });
      const r = await f.svc.run({
        workspaceId: 'ws-test',
        namespace: ['c', 'd', 'e'][i]!,
        nsRoot: d,
        command: 'true',
        sourceInit: false,
      });
      expect(r.exitCode).toBe(0);
    }
    expect(f.svc.status().warm.running).toBeLessThanOrEqual(2);
    expect(await waitFor(() => holdersOf(dirs[0]!).length === 0)).toBe(true);
    expect(holdersOf(dirs[2]!)).toHaveLength(1);
  });

  it('stopSandbox (restore, delete) ends the sandbox and everything in it', async () => {
    const m = marker();
    const running = f.run(`sleep ${m}`);
    expect(await waitFor(() => processesMentioning(`sleep ${m}`).length > 0)).toBe(true);
    await f.svc.stopSandbox('ws-test', 'a');
    const r = await running;
    expect(r.exitCode).toBe(137);
    expect(processesMentioning(m)).toEqual([]);
    expect(holdersOf(f.nsA)).toEqual([]);
  });

  it('replaces a sandbox that died under it (its holder killed) on the next command', async () => {
    expect((await f.run('true')).exitCode).toBe(0);
    const [holder] = holdersOf(f.nsA);
    expect(holder).toBeGreaterThan(0);
    process.kill(holder!, 'SIGKILL');
    const r = await f.run('echo again');
    expect(r).toMatchObject({ exitCode: 0, stdout: 'again\n' });
  });
});

describe.skipIf(!bwrapPath)(`spares while calls wait${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  beforeAll(async () => {
    // Two exec slots, no pool: which calls run and which wait is decided here.
    f = await createFixture({ globalConcurrency: 2, perWorkspaceConcurrency: 2, poolSize: 0, queueTimeoutMs: 60_000 });
  });
  afterAll(async () => {
    await f?.cleanup();
  });
  const sparesOf = (name: string) =>
    (f.svc as unknown as { spares: Map<string, unknown[]> }).spares.get(nsGroupName('ws-test', name))?.length ?? 0;
  /** Holds its exec slot (and says so) until the test creates workspace/gate. */
  const gated = 'touch workspace/started; while [ ! -e workspace/gate ]; do sleep 0.05; done; echo held';
  const started = (ns: { dir: string }) => waitFor(() => existsSync(join(ns.dir, 'started')), 30_000);

  it('a command ending while other namespaces wait starts no spare; the next command starts its own', async () => {
    const [a, x, y] = [f.namespace('a'), f.namespace('x'), f.namespace('y')];
    expect((await f.runIn(a, 'true')).exitCode).toBe(0);
    expect(await waitFor(() => sparesOf('a') === 1)).toBe(true);
    const holders = [f.runIn(x, gated), f.runIn(y, gated)];
    expect(await started(x)).toBe(true);
    expect(await started(y)).toBe(true);
    // Both slots taken: these three wait, in this order.
    const [ra, rb, rc] = [
      f.runIn(a, 'echo a'),
      f.runIn(f.namespace('b'), 'echo b'),
      f.runIn(f.namespace('c'), 'echo c'),
    ];
    // y's slot goes to a (which takes its spare), then to b; c still waits (not a's call): no spare for a.
    writeFileSync(join(y.dir, 'gate'), '');
    expect((await ra).stdout).toBe('a\n');
    expect((await rb).stdout).toBe('b\n');
    await new Promise((r) => setTimeout(r, 200));
    expect(sparesOf('a')).toBe(0);
    writeFileSync(join(x.dir, 'gate'), '');
    expect((await Promise.all(holders)).map((r) => r.stdout)).toEqual(['held\n', 'held\n']);
    expect((await rc).stdout).toBe('c\n');
    // Nothing waits now: a's next command (its trove-enter started on its path) is followed by a spare again.
    expect((await f.runIn(a, 'echo again')).stdout).toBe('again\n');
    expect(await waitFor(() => sparesOf('a') === 1)).toBe(true);
  });
});
