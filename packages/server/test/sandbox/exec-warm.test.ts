/**
 * Warm namespace sandboxes (sandbox/warm.ts, native/trove_enter.c): a
 * namespace's commands enter one sandbox kept while used, yet each sees what a
 * sandbox of its own would show (fresh /tmp, /dev/shm and HOME), nothing it
 * started outlives it, idle sandboxes are stopped, and a sandbox that died is
 * replaced on the next command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
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
