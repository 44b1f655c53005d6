/**
 * The pool of pre-made sandboxes (root only): a namespace's first command takes one, which gets the
 * namespace's tree (open_tree + move_mount by trove-enter's claim mode) and its cgroup group's name. Each is
 * claimed by exactly one namespace, a failed claim stops it, and a claimed one shows its own tree only.
 * The escape suites (exec-isolation.test.ts, e2e/exec-escape.test.ts) run in claimed sandboxes too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsGroupName } from '../../src/sandbox/cgroups.js';
import type { SandboxInfo } from '../../src/sandbox/launch.js';
import type { WarmHandle } from '../../src/sandbox/warm.js';
import { SKIP_REASON, bwrapPath, createFixture, isRoot, waitFor, type Fixture } from './exec-fixture.js';

const POOL = 4;
/** What a command reports about where it runs: its tree, its sandbox (pid namespace), its workspace mounts. */
const PROBE =
  'cat workspace/name; echo; ls -A workspace | tr "\\n" " "; echo; readlink /proc/self/ns/pid; grep -c " /home/agent/workspace " /proc/self/mountinfo';

interface Internals {
  poolReady: Array<{ info: SandboxInfo | null }>;
  claim(info: SandboxInfo, claimer: number, nsRoot: string): Promise<void>;
  claimPooled(key: string, nsRoot: string): WarmHandle | null;
}

describe.skipIf(!bwrapPath || !isRoot)(
  `sandbox pool${!bwrapPath ? ` (${SKIP_REASON})` : !isRoot ? ' (SKIPPED: the pool is root only)' : ''}`,
  () => {
    let f: Fixture;
    let n = 0;
    /** A new namespace directory holding `name` (its name) only. */
    const newNamespace = () => {
      const ns = f.namespace(`p${n++}`);
      writeFileSync(join(ns.dir, 'name'), ns.name);
      return ns;
    };
    const probe = async (ns: { name: string; dir: string }) => {
      const r = await f.svc.run({
        workspaceId: 'ws-test',
        namespace: ns.name,
        nsRoot: ns.dir,
        command: PROBE,
        sourceInit: false,
      });
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const [name, listing, pidNs, mounts] = r.stdout.split('\n');
      return { name, listing, pidNs: pidNs!, mounts: Number(mounts) };
    };
    const internals = () => f.svc as unknown as Internals;
    const full = () => waitFor(() => f.svc.status().pool.ready === POOL, 30_000);

    beforeAll(async () => {
      // The concurrent calls below all run at once (no exec slot to wait for, however busy the machine is).
      f = await createFixture({
        poolSize: POOL,
        globalConcurrency: 16,
        perWorkspaceConcurrency: 16,
        queueTimeoutMs: 60_000,
      });
    });
    afterAll(async () => {
      await f?.cleanup();
    });

    it('a first call takes a pre-made sandbox: its own tree only, its cgroup group renamed to the namespace', async () => {
      expect(await full()).toBe(true);
      const before = f.svc.status().pool;
      const ns = newNamespace();
      const p = await probe(ns);
      expect(p.name).toBe(ns.name);
      expect(p.listing).toBe('name ');
      // One workspace mount: the namespace's tree, attached once.
      expect(p.mounts).toBe(1);
      expect(f.svc.status().pool).toMatchObject({ claimed: before.claimed + 1, failed: 0 });
      // Its spare's group `pool-<n>` is now the namespace's `ns-<hash>` (cgroup v1 renames in place).
      const parent = f.svc.status().cgroups.parent!;
      const base = readdirSync(parent).find((d) => d.startsWith(`trove-${process.pid}-`))!;
      expect(existsSync(join(parent, base, nsGroupName('ws-test', ns.name)))).toBe(true);
      const r = await f.svc.run({
        workspaceId: 'ws-test',
        namespace: ns.name,
        nsRoot: ns.dir,
        command: 'cat /proc/self/cgroup',
        sourceInit: false,
      });
      expect(r.stdout).toContain(`/${nsGroupName('ws-test', ns.name)}/slot-`);
      expect(r.stdout).not.toContain('/pool-');
      // Another namespace's tree is nowhere: not by its host path, not beside the workspace.
      const other = await f.svc.run({
        workspaceId: 'ws-test',
        namespace: ns.name,
        nsRoot: ns.dir,
        command: `cat ${join(f.nsB, 'secret.txt')} 2>&1; ls -A /home/agent | tr "\\n" " "`,
        sourceInit: false,
      });
      expect(other.stdout).toBe(`cat: ${join(f.nsB, 'secret.txt')}: No such file or directory\nworkspace `);
    });

    it('a pool sandbox holds no tree until its claim, then exactly the claiming namespace tree', async () => {
      expect(await full()).toBe(true);
      /** The sandbox's mounts at the workspace, seen from the host (its pid 1's mount table): their roots. */
      const workspaceMounts = (pid1: number) =>
        readFileSync(`/proc/${pid1}/mountinfo`, 'utf8')
          .split('\n')
          .map((l) => l.split(' '))
          .filter((f) => f[4] === '/home/agent/workspace')
          .map((f) => f[3]);
      const ready = internals().poolReady.map((p) => p.info!.pid1);
      expect(ready).toHaveLength(POOL);
      for (const pid1 of ready) {
        expect(workspaceMounts(pid1)).toEqual([]);
        expect(readdirSync(`/proc/${pid1}/root/home/agent/workspace`)).toEqual([]);
      }
      const ns = newNamespace();
      expect((await probe(ns)).name).toBe(ns.name);
      // The oldest was claimed: the namespace's tree, once; the others still hold nothing.
      expect(workspaceMounts(ready[0]!)).toEqual([ns.dir]);
      expect(readdirSync(`/proc/${ready[0]}/root/home/agent/workspace`)).toEqual(['name']);
      for (const pid1 of ready.slice(1)) expect(workspaceMounts(pid1)).toEqual([]);
    });

    it('concurrent first calls in more namespaces than the pool holds: one sandbox each, never shared', async () => {
      expect(await full()).toBe(true);
      const before = f.svc.status().pool;
      const all = Array.from({ length: 10 }, newNamespace);
      const results = await Promise.all(all.map((ns) => probe(ns)));
      results.forEach((p, i) => {
        expect(p.name).toBe(all[i]!.name);
        expect(p.listing).toBe('name ');
        expect(p.mounts).toBe(1);
      });
      // Ten sandboxes (pid namespaces), one per namespace.
      expect(new Set(results.map((p) => p.pidNs)).size).toBe(10);
      const after = f.svc.status().pool;
      expect(after.claimed - before.claimed).toBeGreaterThanOrEqual(POOL);
      expect(after.failed).toBe(0);
      // A namespace's later calls stay in its sandbox.
      expect((await probe(all[0]!)).pidNs).toBe(results[0]!.pidNs);
    });

    it('concurrent first calls in one namespace share the one sandbox it claimed', async () => {
      expect(await full()).toBe(true);
      const before = f.svc.status().pool.claimed;
      const ns = newNamespace();
      const results = await Promise.all([probe(ns), probe(ns), probe(ns)]);
      expect(new Set(results.map((p) => p.pidNs)).size).toBe(1);
      expect(f.svc.status().pool.claimed).toBe(before + 1);
    });

    it('a claimed sandbox cannot be claimed again; a stopped one is never handed out again', async () => {
      expect(await full()).toBe(true);
      // The oldest ready sandbox is the next one claimed.
      const info = internals().poolReady[0]!.info!;
      const ns = newNamespace();
      const first = await probe(ns);
      const victim = newNamespace();
      // trove-enter refuses a second claim (its workspace is no longer the bare directory).
      await expect(internals().claim(info, -1, victim.dir)).rejects.toThrow(/the sandbox's workspace is taken/);
      const again = await probe(ns);
      expect(again).toEqual(first);
      // Stopped (as a restore or delete does), the namespace gets another sandbox, and nobody gets this one.
      await f.svc.stopSandbox('ws-test', ns.name);
      expect(await waitFor(() => !existsSync(`/proc/${info.pid1}`))).toBe(true);
      const seen = new Set([first.pidNs]);
      for (const x of [ns, victim, newNamespace()]) {
        const p = await probe(x);
        expect(p.name).toBe(x.name);
        expect(seen.has(p.pidNs)).toBe(false);
        seen.add(p.pidNs);
      }
    });

    it('a failed claim stops that sandbox (never back in the pool) and the namespace gets one made for it', async () => {
      expect(await full()).toBe(true);
      const before = f.svc.status().pool;
      const info = internals().poolReady[0]!.info!;
      // A directory that does not exist: the claim (and the fallback bwrap over it) fail.
      const handle = internals().claimPooled(nsGroupName('ws-test', 'gone'), join(f.dataDir, 'no-such-namespace'));
      expect(handle).not.toBeNull();
      await expect(handle!.ready).rejects.toThrow();
      await handle!.done;
      expect(await waitFor(() => !existsSync(`/proc/${info.pid1}`))).toBe(true);
      expect(f.svc.status().pool).toMatchObject({ claimed: before.claimed, failed: before.failed + 1 });
      expect(internals().poolReady.some((p) => p.info?.pid1 === info.pid1)).toBe(false);
      // The pool refills, and the next namespace is served as usual.
      expect(await full()).toBe(true);
      const ns = newNamespace();
      expect((await probe(ns)).name).toBe(ns.name);
    });
  },
);

describe.skipIf(!bwrapPath || !isRoot)(
  `sandbox pool refills${!bwrapPath ? ` (${SKIP_REASON})` : !isRoot ? ' (SKIPPED: the pool is root only)' : ''}`,
  () => {
    let f: Fixture;
    beforeAll(async () => {
      // One exec slot: a second call waits for the first.
      f = await createFixture({
        poolSize: 2,
        globalConcurrency: 1,
        perWorkspaceConcurrency: 1,
        queueTimeoutMs: 60_000,
      });
    });
    afterAll(async () => {
      await f?.cleanup();
    });

    it('makes no pool sandbox while a call waits for a slot, and refills once none waits', async () => {
      expect(await waitFor(() => f.svc.status().pool.ready === 2, 30_000)).toBe(true);
      const claimed = f.svc.status().pool.claimed;
      const a = f.namespace('holder');
      const holder = f.runIn(a, 'while [ ! -e workspace/gate ]; do sleep 0.05; done; echo released');
      expect(await waitFor(() => f.svc.status().pool.claimed === claimed + 1)).toBe(true);
      const waiting = f.runIn(f.namespace('waiting'), 'echo ran');
      // Ten times the refill's delay after the claim: nothing made while the second call waits.
      const seen: Array<{ ready: number; making: number }> = [];
      for (let i = 0; i < 25; i++) {
        const { ready, making } = f.svc.status().pool;
        seen.push({ ready, making });
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen.every((p) => p.ready === 1 && p.making === 0)).toBe(true);
      writeFileSync(join(a.dir, 'gate'), '');
      expect((await holder).stdout).toBe('released\n');
      expect((await waiting).stdout).toBe('ran\n');
      expect(f.svc.status().pool.claimed).toBe(claimed + 2);
      expect(await waitFor(() => f.svc.status().pool.ready === 2, 30_000)).toBe(true);
    });
  },
);
