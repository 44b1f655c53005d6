/**
 * Resource limits of the exec runner: wall clock (and that nothing of the
 * exec survives it), process count, file size, memory, CPU time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { TIMEOUT_EXIT_CODE } from '../../src/sandbox/runner.js';
import { CgroupPool, nsGroupName, ownCgroupDirs } from '../../src/sandbox/cgroups.js';
import {
  SKIP_REASON,
  bwrapPath,
  createFixture,
  hostCanSpawn,
  isRoot,
  marker,
  processesMentioning,
  testOptions,
  type Fixture,
} from './exec-fixture.js';

const cgroupsExpected = isRoot && Boolean(ownCgroupDirs().memory && ownCgroupDirs().pids);

describe.skipIf(!bwrapPath)(`exec limits${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await createFixture();
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it('kills the whole process tree on timeout: background, double-forked and setsid children included', async () => {
    const m = marker();
    const r = await f.run(
      `sleep ${m}1 & (sleep ${m}2 &) ; setsid sleep ${m}3 & nohup sh -c 'trap "" TERM HUP; sleep ${m}4' >/dev/null 2>&1 & echo spawned; sleep ${m}5`,
      { timeoutMs: 4000 },
    );
    expect(r).toMatchObject({ timedOut: true, exitCode: TIMEOUT_EXIT_CODE, stdout: 'spawned\n' });
    // run() resolves only once the tree is gone: check right away, no waiting.
    expect(processesMentioning(m)).toEqual([]);
  });

  it('leaves nothing behind after a normal exit either', async () => {
    const m = marker();
    const r = await f.run(`setsid sh -c 'sleep ${m}6' </dev/null >/dev/null 2>&1 & echo done`);
    expect(r).toMatchObject({ exitCode: 0, stdout: 'done\n', timedOut: false });
    // The namespace's pid 1 dies with bwrap (die-with-parent); allow the kernel a moment to reap.
    const deadline = Date.now() + 3000;
    while (processesMentioning(m).length && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(processesMentioning(m)).toEqual([]);
  });

  it('contains a fork bomb: the host and other namespaces keep working, nothing survives', async () => {
    const m = marker();
    // The shell forks once, for the bomb's subshell, before any bomb process exists; then it needs no fork
    // (`exec`), so the cap cannot end it early: it outlives the bomb and prints after 3 s.
    const bomb = f.run(
      `# bomb ${m}\nbomb() { bomb | bomb & }; (bomb) & exec python3 -c 'import time; time.sleep(3); print("still here")'`,
      { timeoutMs: 4000 },
    );
    // While the bomb runs: the server can still spawn, and another namespace's exec works.
    await new Promise((res) => setTimeout(res, 800));
    expect(hostCanSpawn()).toBe(true);
    const other = await f.svc.run({
      workspaceId: 'ws-test',
      namespace: 'b',
      nsRoot: f.nsB,
      command: 'for i in 1 2 3 4 5; do sh -c "echo $i" & done; wait',
      sourceInit: false,
    });
    expect(other.stdout.split('\n').filter(Boolean).sort()).toEqual(['1', '2', '3', '4', '5']);
    const r = await bomb;
    // Either the shell survived to the end or the bomb was cut by the wall clock; both are contained.
    expect(r.timedOut || r.stdout.includes('still here')).toBe(true);
    expect(r.stderr).toMatch(/fork|Cannot|Resource temporarily unavailable/i);
    const deadline = Date.now() + 3000;
    while (processesMentioning(m).length && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(processesMentioning(m)).toEqual([]);
    expect(hostCanSpawn()).toBe(true);
  });

  it('caps the number of processes of one exec', async () => {
    const r = await f.run(`python3 -c "
import os, signal
pids = []
try:
    while len(pids) < 1000:
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        pids.append(pid)
except OSError as e:
    print(len(pids), e.errno)
for p in pids:
    os.kill(p, 9)
"`);
    const [forked, errno] = r.stdout.trim().split(' ').map(Number);
    expect(errno).toBe(11); // EAGAIN
    expect(forked).toBeLessThan(testOptions.maxProcs);
    expect(forked).toBeGreaterThan(testOptions.maxProcs / 2);
  });

  it('stops `yes > file` at the file size limit', async () => {
    const r = await f.run('yes > workspace/big; echo "status=$?"');
    expect(r.stdout).toBe('status=153\n'); // 128 + SIGXFSZ
    expect(statSync(join(f.nsA, 'big')).size).toBe(testOptions.maxFileBytes);
  });

  it('refuses a single allocation above the memory limit', async () => {
    const r = await f.run(
      `python3 -c "b = bytearray(${testOptions.memoryBytes + 64 * 1024 * 1024}); print('allocated')"`,
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/MemoryError|Cannot allocate memory|Killed/);
  });

  it('keeps commands running when they use node/wasm (no address-space limit)', async () => {
    const r = await f.run(`node -e "new WebAssembly.Memory({ initial: 1, maximum: 65536 }); console.log('wasm ok')"`);
    expect(r).toMatchObject({ exitCode: 0, stdout: 'wasm ok\n' });
  });

  it('caps open files', async () => {
    const r = await f.run('ulimit -n; ulimit -Hn');
    expect(r.stdout).toBe(`${testOptions.maxOpenFiles}\n${testOptions.maxOpenFiles}\n`);
  });

  it('limits cannot be raised from inside', async () => {
    const r = await f.run(`ulimit -f unlimited 2>&1; ulimit -n 100000 2>&1; ulimit -f; ulimit -n`);
    expect(r.stdout).toMatch(/Operation not permitted|not permitted|Invalid argument/);
    expect(r.stdout.trim().split('\n').slice(-2)).toEqual([
      String(testOptions.maxFileBytes / 512),
      String(testOptions.maxOpenFiles),
    ]);
  });
});

describe.skipIf(!bwrapPath)(`exec memory cgroup${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  // Without cgroups (not root, read-only cgroupfs) only the per-process RLIMIT_DATA applies.
  it.runIf(cgroupsExpected)('caps the memory of all processes together and says so in stderr', async () => {
    const limit = 128 * 1024 * 1024;
    const f = await createFixture({ memoryBytes: limit });
    try {
      // Three processes of 60 MiB each stay under the per-process limit but not under the 128 MiB total.
      const r = await f.run(
        'for i in 1 2 3; do head -c 60000000 /dev/zero | python3 -c "import sys, time; b = sys.stdin.buffer.read(); time.sleep(1)" & done; wait',
        { timeoutMs: 30_000 },
      );
      expect(r.timedOut).toBe(false);
      // The shell itself survives (\`wait\` returns 0): the reason still says a process was OOM-killed.
      expect(r).toMatchObject({ exitCode: 0, exitReason: 'oom' });
      expect(r.stderr).toContain(`[trove: a process was killed: the exec memory limit (${limit} bytes) was exceeded]`);
    } finally {
      await f.cleanup();
    }
  });
});

describe.skipIf(!bwrapPath)(`exec cgroup lifecycle${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  it.runIf(cgroupsExpected)(
    "runs each exec in a slot of its namespace's group under the server's own cgroup and removes the groups on close",
    async () => {
      const f = await createFixture({
        nsMemoryBytes: 300 * 1024 * 1024,
        nsMaxProcs: 99,
        nsCpuWeight: 50,
        execCpuWeight: 12,
      });
      const own = ownCgroupDirs();
      const dirs: string[] = [];
      try {
        const r = await f.run('cat /proc/self/cgroup');
        // The sandbox's cgroup namespace is rooted at the server's own group, so paths are relative to it.
        const slotPath = /^\/trove-\d+-\d+\/ns-[0-9a-f]{16}\/slot-\d+$/;
        const rel = (c: string) => new RegExp(`^\\d+:${c}:(.*)$`, 'm').exec(r.stdout)?.[1] ?? '';
        for (const c of ['memory', 'pids', 'cpu']) expect(rel(c)).toMatch(slotPath);
        const slot = (c: 'memory' | 'pids' | 'cpu') => join(own[c]!, rel(c));
        const ns = (c: 'memory' | 'pids' | 'cpu') => dirname(slot(c));
        expect(basename(ns('memory'))).toBe(nsGroupName('ws-test', 'a'));
        expect(readFileSync(join(slot('memory'), 'memory.limit_in_bytes'), 'utf8').trim()).toBe(
          String(testOptions.memoryBytes),
        );
        // The command's processes plus trove-enter's own two (it and the exec's supervisor).
        expect(readFileSync(join(slot('pids'), 'pids.max'), 'utf8').trim()).toBe(String(testOptions.maxProcs + 2));
        expect(readFileSync(join(ns('memory'), 'memory.limit_in_bytes'), 'utf8').trim()).toBe(
          String(300 * 1024 * 1024),
        );
        // The namespace's own 99 plus its spares' two each (its next commands' trove-enter, started ahead; at most 2).
        expect(readFileSync(join(ns('pids'), 'pids.max'), 'utf8').trim()).toBe('103');
        // cgroup v1 has shares, not weights: 100 ↔ 1024.
        expect(readFileSync(join(ns('cpu'), 'cpu.shares'), 'utf8').trim()).toBe('512');
        // All sandboxes together (the base group) against the server's own processes: 12 ↔ 123.
        expect(readFileSync(join(dirname(ns('cpu')), 'cpu.shares'), 'utf8').trim()).toBe('123');
        // Another namespace: another group, same base.
        const other = await f.svc.run({
          workspaceId: 'ws-test',
          namespace: 'b',
          nsRoot: f.nsB,
          command: 'cat /proc/self/cgroup',
          sourceInit: false,
        });
        const otherMem = /^\d+:memory:(.*)$/m.exec(other.stdout)?.[1] ?? '';
        expect(dirname(dirname(otherMem))).toBe(dirname(dirname(rel('memory'))));
        expect(basename(dirname(otherMem))).toBe(nsGroupName('ws-test', 'b'));
        expect(f.svc.status().cgroups).toEqual({
          mode: 'v1',
          parent: own.memory,
          controllers: ['memory', 'pids', 'cpu'],
          missing: [],
        });
        dirs.push(...(['memory', 'pids', 'cpu'] as const).flatMap((c) => [slot(c), ns(c), dirname(ns(c))]));
      } finally {
        await f.cleanup();
      }
      for (const d of dirs) expect(existsSync(d)).toBe(false);
    },
  );
});

describe(`exec cgroup pool`, () => {
  const quiet = { warn() {}, error() {} };
  // A pid is reused after its server died without cleaning up (reaper killed too): its groups are still there.
  it.runIf(cgroupsExpected)(
    'reuses groups left by an earlier process with the same pid instead of failing',
    async () => {
      const { pool } = CgroupPool.create({ memoryBytes: 96 * 1024 * 1024, maxProcs: 17, nsMaxProcs: 40 }, quiet);
      expect(pool).not.toBeNull();
      try {
        for (const base of pool!.baseDirs) mkdirSync(join(base, 'ns-left', 'slot-0'), { recursive: true });
        const slot = pool!.acquire('ns-left');
        const [memory, pids] = slot.dirs;
        expect(slot.memoryDir).toBe(memory);
        expect(readFileSync(join(memory!, 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(96 * 1024 * 1024));
        expect(readFileSync(join(pids!, 'pids.max'), 'utf8').trim()).toBe('17');
        expect(readFileSync(join(dirname(pids!), 'pids.max'), 'utf8').trim()).toBe('40');
        expect(pool!.isEmpty(slot)).toBe(true);
        expect(await pool!.release(slot)).toBe(true);
      } finally {
        const bases = pool!.baseDirs;
        await pool!.close();
        for (const base of bases) expect(existsSync(base)).toBe(false);
      }
    },
  );

  it.runIf(cgroupsExpected)("resets a slot's memory peak before its next command (cgroup v1)", async () => {
    const f = await createFixture();
    try {
      const own = ownCgroupDirs();
      const slotOf = (stdout: string) => /^\d+:memory:(.*)$/m.exec(stdout)?.[1] ?? '';
      const peak = (slot: string) => Number(readFileSync(join(own.memory!, slot, 'memory.max_usage_in_bytes'), 'utf8'));
      const big = await f.run('cat /proc/self/cgroup; dd if=/dev/zero of=/dev/null bs=48M count=1 2>/dev/null');
      expect(big.exitCode).toBe(0);
      const slot = slotOf(big.stdout);
      expect(slot).toMatch(/slot-\d+$/);
      // The same slot comes back within a few commands (a namespace reuses its free slots, the latest first).
      let again = false;
      for (let i = 0; i < 6 && !again; i++) again = slotOf((await f.run('cat /proc/self/cgroup')).stdout) === slot;
      expect(again).toBe(true);
      // dd's 48 MiB buffer is gone from the peak: what is left is a shell and cat.
      expect(peak(slot)).toBeLessThan(24 * 1024 * 1024);
    } finally {
      await f.cleanup();
    }
  });

  it.runIf(cgroupsExpected)(
    'keeps a bounded number of idle namespace groups, dropping the least recently used',
    async () => {
      const { pool } = CgroupPool.create({ memoryBytes: 64 * 1024 * 1024, maxProcs: 8 }, quiet);
      try {
        const base = pool!.baseDirs[0]!;
        const groups = () => readdirSync(base).filter((n) => n.startsWith('ns-'));
        for (let i = 0; i < 70; i++) await pool!.release(pool!.acquire(`ns-${i}`));
        expect(groups()).toHaveLength(64);
        // The oldest went; a used one is kept (moved to the recent end) when others go.
        expect(groups()).not.toContain('ns-0');
        await pool!.release(pool!.acquire('ns-6'));
        await pool!.release(pool!.acquire('ns-new'));
        expect(groups()).toContain('ns-6');
        expect(groups()).not.toContain('ns-7');
        expect(groups()).toHaveLength(64);
      } finally {
        await pool!.close();
      }
    },
  );

  it.runIf(cgroupsExpected)(
    'keeps as many idle namespace groups as asked (keepIdle), never fewer than 64',
    async () => {
      const limits = { memoryBytes: 64 * 1024 * 1024, maxProcs: 8 };
      const { pool } = CgroupPool.create(limits, quiet, { keepIdle: 80 });
      const { pool: small } = CgroupPool.create(limits, quiet, { keepIdle: 10 });
      try {
        const groups = (p: CgroupPool) => readdirSync(p.baseDirs[0]!).filter((n) => n.startsWith('ns-'));
        for (let i = 0; i < 85; i++) await pool!.release(pool!.acquire(`ns-${i}`));
        expect(groups(pool!)).toHaveLength(80);
        expect(groups(pool!)).not.toContain('ns-4');
        expect(groups(pool!)).toContain('ns-5');
        for (let i = 0; i < 70; i++) await small!.release(small!.acquire(`ns-${i}`));
        expect(groups(small!)).toHaveLength(64);
      } finally {
        await pool!.close();
        await small!.close();
      }
    },
  );
});

describe.skipIf(!bwrapPath)(`exec CPU-time limit${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  it('kills a busy loop after cpuSeconds of CPU (SIGXCPU)', async () => {
    const f = await createFixture({ cpuSeconds: 1 });
    try {
      const r = await f.run('while :; do :; done', { timeoutMs: 15_000 });
      expect(r.timedOut).toBe(false);
      expect(r.exitCode).toBe(152); // 128 + SIGXCPU
      expect(r.durationMs).toBeLessThan(10_000);
    } finally {
      await f.cleanup();
    }
  });
});
