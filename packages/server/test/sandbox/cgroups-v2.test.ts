/**
 * The cgroup v2 code path, on a cgroup2 hierarchy this test mounts itself.
 * On a cgroup v1 host (the machine these tests were written on) the memory,
 * pids and cpu controllers are bound to v1, so they are absent in cgroup2:
 * their limit files are skipped (and said to be), while cgroup.procs,
 * cgroup.kill and cgroup.events are the kernel's own. On a cgroup2-only host
 * the same tests also see the controllers that are delegated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CgroupPool, cgroupsEmpty, killCgroups, nsGroupName } from '../../src/sandbox/cgroups.js';
import { SandboxRunner } from '../../src/sandbox/runner.js';
import {
  SKIP_REASON,
  bwrapPath,
  isRoot,
  marker,
  processesMentioning,
  recordingLogger,
  testOptions,
  waitFor,
} from './exec-fixture.js';

/** Mounts a cgroup2 hierarchy on a new temp dir. */
function mountCgroup2(): string {
  const mnt = mkdtempSync(join(tmpdir(), 'trove-cgroup2-'));
  try {
    execFileSync('mount', ['-t', 'cgroup2', 'none', mnt], { stdio: 'pipe' });
    return mnt;
  } catch (err) {
    rmdirSync(mnt);
    throw err;
  }
}

function unmount(mnt: string): void {
  execFileSync('umount', [mnt]);
  rmdirSync(mnt);
}

/** Why this host cannot run these tests (null: it can): tried once, unmounted right away. */
function cannotMount(): string | null {
  if (!isRoot) return 'SKIPPED: needs root to mount cgroup2';
  try {
    unmount(mountCgroup2());
    return null;
  } catch (err) {
    return `SKIPPED: cannot mount cgroup2 here (${(err as Error).message.split('\n')[0]})`;
  }
}

/** Removes a group tree, deepest first (cgroupfs directories go with rmdir only). */
function removeGroups(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeGroups(join(dir, e.name));
  rmdirSync(dir);
}

const quiet = { warn() {}, error() {} };
const skip = cannotMount();

describe.skipIf(skip !== null)(`cgroup v2 pool${skip ? ` (${skip})` : ''}`, () => {
  let mnt = '';
  let parent = '';
  let available: string[] = [];

  beforeAll(() => {
    mnt = mountCgroup2();
    // The hierarchy is the machine's one: a group of our own keeps the test apart from everything else in it.
    parent = join(mnt, `trove-test-${process.pid}-${marker()}`);
    mkdirSync(parent);
    available = readFileSync(join(parent, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  });
  afterAll(() => {
    if (!mnt) return;
    removeGroups(parent);
    unmount(mnt);
  });

  it('makes <parent>/trove-<pid>-<n>/ns-<hash>/slot-<k> and says which limits it has to skip', async () => {
    const { pool, status } = CgroupPool.create(
      { memoryBytes: 64 * 1024 * 1024, maxProcs: 20, nsMaxProcs: 30, nsCpuWeight: 200 },
      quiet,
      { parent },
    );
    expect(pool).not.toBeNull();
    try {
      const missing = ['memory', 'pids', 'cpu'].filter((c) => !available.includes(c));
      expect(status).toEqual({
        mode: 'v2',
        parent,
        controllers: ['memory', 'pids', 'cpu'].filter((c) => available.includes(c)),
        missing: missing.map(
          (c) =>
            `${c}: not delegated to the parent group (its own parent's cgroup.subtree_control lacks it); its limits are skipped`,
        ),
      });
      const slot = pool!.acquire(nsGroupName('w', 'n'));
      expect(slot.v2).toBe(true);
      expect(slot.dirs).toHaveLength(1);
      expect(slot.dirs[0]).toMatch(
        new RegExp(`^${parent}/trove-${process.pid}-\\d+/${nsGroupName('w', 'n')}/slot-\\d+$`),
      );
      const ns = join(slot.dirs[0]!, '..');
      // The files the kernel gives every v2 group, controllers or not.
      for (const f of ['cgroup.procs', 'cgroup.kill', 'cgroup.events'])
        expect(existsSync(join(slot.dirs[0]!, f))).toBe(true);
      expect(existsSync(join(ns, 'pids.max'))).toBe(available.includes('pids'));
      if (available.includes('pids')) {
        expect(readFileSync(join(ns, 'pids.max'), 'utf8').trim()).toBe('30');
        expect(readFileSync(join(slot.dirs[0]!, 'pids.max'), 'utf8').trim()).toBe('20');
      }
      if (available.includes('cpu')) expect(readFileSync(join(ns, 'cpu.weight'), 'utf8').trim()).toBe('200');
      expect(slot.memoryDir).toBe(available.includes('memory') ? slot.dirs[0] : null);
      expect(await pool!.release(slot)).toBe(true);
    } finally {
      const bases = pool!.baseDirs;
      await pool!.close();
      for (const b of bases) expect(existsSync(b)).toBe(false);
    }
  });

  it('does not rename a group on v2 (the kernel refuses): adopt() says so and the slot keeps its path', async () => {
    const { pool } = CgroupPool.create({ memoryBytes: 64 * 1024 * 1024, maxProcs: 20 }, quiet, { parent });
    try {
      const slot = pool!.acquire('pool-0');
      const dir = slot.dirs[0]!;
      expect(pool!.adopt('pool-0', nsGroupName('w', 'adopt'))).toBe(false);
      expect(slot).toMatchObject({ group: 'pool-0', dirs: [dir] });
      expect(existsSync(dir)).toBe(true);
      expect(await pool!.release(slot)).toBe(true);
    } finally {
      await pool!.close();
    }
  });

  it('kills a group with cgroup.kill, children forked inside it included', async () => {
    const { pool } = CgroupPool.create({ memoryBytes: 64 * 1024 * 1024, maxProcs: 20 }, quiet, { parent });
    const m = marker();
    const sh = spawn('/bin/sh', ['-c', `read go; sleep ${m}1 & sleep ${m}2 & wait`], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    try {
      const slot = pool!.acquire('ns-kill');
      for (const dir of slot.dirs) writeFileSync(join(dir, 'cgroup.procs'), String(sh.pid));
      // Only now the shell forks: its children start inside the group.
      sh.stdin!.write('go\n');
      // The shell (its command line names the marker too) and its two sleeps.
      expect(await waitFor(() => processesMentioning(m).length === 3)).toBe(true);
      expect(readFileSync(join(slot.dirs[0]!, 'cgroup.events'), 'utf8')).toMatch(/^populated 1$/m);
      expect(readFileSync(join(slot.dirs[0]!, 'cgroup.procs'), 'utf8').trim().split('\n')).toHaveLength(3);
      pool!.kill(slot);
      expect(await waitFor(() => cgroupsEmpty(slot.dirs, true))).toBe(true);
      expect(await waitFor(() => processesMentioning(m).length === 0)).toBe(true);
      expect(await pool!.release(slot, { knownEmpty: true })).toBe(true);
    } finally {
      sh.kill('SIGKILL');
      await pool!.close();
    }
  });

  it('on v2 kills through cgroup.kill, not by signalling the pids it lists', async () => {
    // A plain directory shaped like a group: a process that is listed must not be signalled.
    const fake = mkdtempSync(join(tmpdir(), 'trove-fake-cgroup-'));
    const m = marker();
    const victim = spawn('sleep', [`${m}`], { stdio: 'ignore' });
    try {
      writeFileSync(join(fake, 'cgroup.kill'), '');
      writeFileSync(join(fake, 'cgroup.procs'), `${victim.pid}\n`);
      killCgroups([fake], true);
      expect(readFileSync(join(fake, 'cgroup.kill'), 'utf8')).toBe('1');
      expect(processesMentioning(m)).toHaveLength(1);
      // v1 (no cgroup.kill) signals each listed pid.
      killCgroups([fake]);
      expect(await waitFor(() => processesMentioning(m).length === 0)).toBe(true);
    } finally {
      victim.kill('SIGKILL');
      rmSync(fake, { recursive: true, force: true });
    }
  });

  it("removes a dead server's groups at start", async () => {
    // pid_max is at most 2^22: this pid never runs.
    const stale = join(parent, 'trove-99999999-0');
    mkdirSync(join(stale, 'ns-0123456789abcdef', 'slot-3'), { recursive: true });
    const { pool } = CgroupPool.create({ memoryBytes: 64 * 1024 * 1024, maxProcs: 20 }, quiet, { parent });
    try {
      expect(existsSync(stale)).toBe(false);
    } finally {
      await pool!.close();
    }
  });

  it('reports a parent outside any cgroup2 file system as unusable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trove-not-a-cgroup-'));
    try {
      const { pool, status } = CgroupPool.create({ memoryBytes: 1, maxProcs: 1 }, quiet, { parent: dir });
      expect(pool).toBeNull();
      expect(status).toEqual({
        mode: 'none',
        parent: dir,
        controllers: [],
        missing: ['TROVE_CGROUP_PARENT is not a directory of a cgroup2 file system'],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.skipIf(!bwrapPath)(`SandboxRunner on cgroup v2${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
    let svc: SandboxRunner;
    let logs: ReturnType<typeof recordingLogger>['lines'];
    const dataDir = mkdtempSync(join(tmpdir(), 'trove-exec-v2-'));
    const nsRoot = join(dataDir, 'ns');
    const run = (command: string, timeoutMs?: number) =>
      svc.run({ workspaceId: 'w', namespace: 'v2', nsRoot, command, sourceInit: false, timeoutMs });
    const slots = () => {
      const out: string[] = [];
      for (const base of readdirSync(parent).filter((n) => n.startsWith(`trove-${process.pid}-`))) {
        const ns = join(parent, base, nsGroupName('w', 'v2'));
        if (existsSync(ns))
          out.push(
            ...readdirSync(ns)
              .filter((n) => n.startsWith('slot-'))
              .map((n) => join(ns, n)),
          );
      }
      return out;
    };
    /** The slots holding a command (not only the namespace's spare: trove-enter waiting for the next one). */
    const commandSlots = () =>
      slots().filter((s) =>
        readFileSync(join(s, 'cgroup.procs'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .some((p) => {
            try {
              return readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== 'trove-enter';
            } catch {
              return false;
            }
          }),
      );

    beforeAll(async () => {
      const rec = recordingLogger();
      logs = rec.lines;
      svc = new SandboxRunner({ ...testOptions, nsMaxProcs: 40, cgroupParent: parent }, rec.logger);
      const status = await svc.init();
      expect(status.available).toBe(true);
      // The first call below claims a pre-made sandbox (root): the pool fills first.
      expect(await waitFor(() => svc.status().pool.ready === svc.status().pool.size, 30_000)).toBe(true);
    });
    afterAll(async () => {
      await svc?.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('reports v2 in status() and warns at start about what it skips', () => {
      const { cgroups } = svc.status();
      expect(cgroups).toMatchObject({ mode: 'v2', parent });
      const missing = ['memory', 'pids', 'cpu'].filter((c) => !available.includes(c));
      const warning = logs.find((l) => l.level === 'warn' && /^exec cgroups \(v2, /.test(l.msg ?? ''));
      if (missing.length === 0) expect(warning).toBeUndefined();
      else expect(warning?.msg).toBe(`exec cgroups (v2, ${parent}) are incomplete: ${cgroups.missing.join('; ')}`);
    });

    it('runs each exec in its slot of the v2 hierarchy, the whole tree inside it', async () => {
      const m = marker();
      const running = run(
        `cat /proc/self/cgroup; sleep ${m} & touch workspace/started; while [ ! -e workspace/go ]; do sleep 0.05; done`,
      );
      expect(await waitFor(() => existsSync(join(nsRoot, 'started')))).toBe(true);
      const busy = commandSlots();
      expect(busy).toHaveLength(1);
      expect(readFileSync(join(busy[0]!, 'cgroup.events'), 'utf8')).toMatch(/^populated 1$/m);
      const pids = readFileSync(join(busy[0]!, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number);
      // bwrap's and the shell's command lines name the marker too.
      const sleeper = processesMentioning(m).filter((p) => p.cmd.startsWith('sleep '));
      expect(sleeper).toHaveLength(1);
      expect(pids).toContain(sleeper[0]!.pid);
      writeFileSync(join(nsRoot, 'go'), '');
      const r = await running;
      expect(r).toMatchObject({ exitCode: 0, exitReason: 'exited', timedOut: false });
      // The sandbox's cgroup namespace is rooted where the launcher was: the path ends in the slot (on a hybrid
      // host the v1 lines come first).
      expect(r.stdout).toMatch(
        new RegExp(`^0::/.*/trove-${process.pid}-\\d+/${nsGroupName('w', 'v2')}/slot-\\d+$`, 'm'),
      );
      expect(await waitFor(() => cgroupsEmpty([busy[0]!], true))).toBe(true);
      // It ran in a claimed sandbox: v2 refuses the rename, so the pool spare was dropped and the slot is the namespace's.
      expect(svc.status().pool).toMatchObject({ claimed: 1, failed: 0 });
    });

    it('kills the whole tree at the wall clock (cgroup.kill) and reports timeout', async () => {
      const m = marker();
      const r = await run(`sleep ${m}1 & setsid sleep ${m}2 & (sleep ${m}3 &); echo spawned; sleep ${m}4`, 1500);
      expect(r).toMatchObject({ timedOut: true, exitReason: 'timeout', stdout: 'spawned\n' });
      // run() returns after a timeout only once the slot is empty.
      expect(processesMentioning(m)).toEqual([]);
      expect(commandSlots()).toEqual([]);
    });
  });
});
