/**
 * The exec cgroup settings through the real server: the namespace limits and
 * the cgroup parent are configuration (flags, env, --help), a server pointed
 * at a cgroup2 hierarchy (mounted by this test beside the host's) places its
 * execs there, and one that cannot use cgroups says so in a warning line at
 * start, never silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, serverBin, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { nsGroupName } from '../../src/sandbox/cgroups.js';
import { isRoot } from '../../../../test/helpers/root.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));

const exec = (s: StartedServer, namespace: string, command: string) =>
  api(
    s,
    s.runtimeKey,
    namespace,
  )('/v1/exec', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ command }) });

describe('namespace limit and cgroup settings', () => {
  it('have defaults, read env and flags, and refuse bad values', () => {
    expect(loadConfig({}).exec).toMatchObject({
      nsMemoryBytes: 2 * 1024 ** 3,
      nsMaxProcs: 256,
      nsCpuWeight: 100,
      execCpuWeight: 12,
      cgroupParent: null,
    });
    expect(
      loadConfig({ TROVE_NS_MEMORY_BYTES: '0', TROVE_NS_MAX_PROCS: '64' }, [
        '--ns-cpu-weight',
        '250',
        '--exec-cpu-weight',
        '100',
        '--cgroup-parent',
        '/sys/fs/cgroup/trove',
      ]).exec,
    ).toMatchObject({
      nsMemoryBytes: 0,
      nsMaxProcs: 64,
      nsCpuWeight: 250,
      execCpuWeight: 100,
      cgroupParent: '/sys/fs/cgroup/trove',
    });
    expect(() => loadConfig({ TROVE_NS_CPU_WEIGHT: '0' })).toThrow(
      new ConfigError('TROVE_NS_CPU_WEIGHT must be 1-10000, got 0'),
    );
    expect(() => loadConfig({ TROVE_NS_CPU_WEIGHT: '10001' })).toThrow(ConfigError);
    expect(() => loadConfig({ TROVE_EXEC_CPU_WEIGHT: '0' })).toThrow(
      new ConfigError('TROVE_EXEC_CPU_WEIGHT must be 1-10000, got 0'),
    );
    expect(() => loadConfig({ TROVE_EXEC_CPU_WEIGHT: '10001' })).toThrow(ConfigError);
    expect(() => loadConfig({ TROVE_CGROUP_PARENT: 'trove' })).toThrow(
      new ConfigError(
        'TROVE_CGROUP_PARENT must be an absolute path (a directory in a cgroup2 file system), got "trove"',
      ),
    );
  });

  it('are listed in trove-server --help', () => {
    const help = execFileSync(process.execPath, [serverBin, '--help'], { encoding: 'utf8' });
    for (const [flag, env] of [
      ['ns-memory-bytes', 'TROVE_NS_MEMORY_BYTES'],
      ['ns-max-procs', 'TROVE_NS_MAX_PROCS'],
      ['ns-cpu-weight', 'TROVE_NS_CPU_WEIGHT'],
      ['exec-cpu-weight', 'TROVE_EXEC_CPU_WEIGHT'],
      ['cgroup-parent', 'TROVE_CGROUP_PARENT'],
      ['exec-warm-idle-ms', 'TROVE_EXEC_WARM_IDLE_MS'],
      ['exec-warm-max', 'TROVE_EXEC_WARM_MAX'],
      ['process-node-lost-ms', 'TROVE_PROCESS_NODE_LOST_MS'],
      ['sqlite-synchronous', 'TROVE_SQLITE_SYNCHRONOUS'],
    ]) {
      expect(help).toMatch(new RegExp(`--${flag}\\b.*${env}`));
    }
  });
});

describe.skipIf(!hasBwrap || !isRoot)(
  `a server that cannot use cgroups${hasBwrap && isRoot ? '' : ' (SKIPPED: needs root and bubblewrap)'}`,
  () => {
    let server: StartedServer;
    const notCgroup = mkdtempSync(join(tmpdir(), 'trove-not-a-cgroup-'));

    beforeAll(async () => {
      server = await startServer({ env: { TROVE_CGROUP_PARENT: notCgroup } });
    });
    afterAll(async () => {
      await server?.close();
      rmSync(notCgroup, { recursive: true, force: true });
    });

    it('says so in a warning line at start, and exec still runs (rlimits only)', async () => {
      const warning = server
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string })
        .find((l) => l.msg.startsWith('exec runs without cgroups'));
      expect(warning).toMatchObject({
        level: 40,
        msg: `exec runs without cgroups: TROVE_CGROUP_PARENT is not a directory of a cgroup2 file system (${notCgroup}); memory and process caps are per-process rlimits only and namespaces have no limits of their own (docs/exec.md, "Limits")`,
      });
      const res = await exec(server, 'plain', 'echo ok');
      expect(await res.json()).toMatchObject({ exit_code: 0, exit_reason: 'exited', stdout: 'ok\n' });
    });
  },
);

/** Mounts a cgroup2 hierarchy on a new temp dir (throws where that is not allowed). */
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

function canMount(): boolean {
  if (!isRoot) return false;
  try {
    const mnt = mountCgroup2();
    execFileSync('umount', [mnt]);
    rmdirSync(mnt);
    return true;
  } catch {
    return false;
  }
}

const v2 = hasBwrap && canMount();

describe.skipIf(!v2)(
  `a server on cgroup v2${v2 ? '' : ' (SKIPPED: needs root, bubblewrap and permission to mount cgroup2)'}`,
  () => {
    let server: StartedServer;
    let mnt = '';
    let parent = '';

    beforeAll(async () => {
      mnt = mountCgroup2();
      parent = join(mnt, `trove-e2e-${process.pid}`);
      mkdirSync(parent);
      server = await startServer({ env: { TROVE_CGROUP_PARENT: parent } });
    });
    afterAll(async () => {
      await server?.close();
      if (!mnt) return;
      for (const base of readdirSync(parent).filter((n) => n.startsWith('trove-'))) removeGroups(join(parent, base));
      rmdirSync(parent);
      execFileSync('umount', [mnt]);
      rmdirSync(mnt);
    });

    it('runs each exec in its namespace group below TROVE_CGROUP_PARENT', async () => {
      const res = await exec(server, 'on-v2', 'cat /proc/self/cgroup');
      const body = (await res.json()) as { exit_code: number; exit_reason: string; stdout: string };
      expect(body).toMatchObject({ exit_code: 0, exit_reason: 'exited' });
      const slot = new RegExp(
        `^0::/.*/trove-${server.proc.pid}-\\d+/${nsGroupName(server.workspaceId, 'on-v2')}/slot-\\d+$`,
        'm',
      );
      expect(body.stdout).toMatch(slot);
      const base = readdirSync(parent).find((n) => n.startsWith(`trove-${server.proc.pid}-`));
      expect(existsSync(join(parent, base ?? 'missing', nsGroupName(server.workspaceId, 'on-v2')))).toBe(true);
    });

    it('warns at start about every limit it cannot apply there', () => {
      const controllers = readFileSync(join(parent, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
      const skipped = ['memory', 'pids', 'cpu'].filter((c) => !controllers.includes(c));
      const line = server
        .output()
        .split('\n')
        .find((l) => l.includes('exec cgroups (v2, '));
      if (skipped.length === 0) expect(line).toBeUndefined();
      else for (const c of skipped) expect(line).toContain(`${c}: not delegated to the parent group`);
      if (line) expect(line).toContain(`exec cgroups (v2, ${parent}) are incomplete: `);
    });

    it('removes its groups when it shuts down', async () => {
      expect(readdirSync(parent).filter((n) => n.startsWith(`trove-${server.proc.pid}-`))).toHaveLength(1);
      await server.stop();
      expect(readdirSync(parent).filter((n) => n.startsWith('trove-'))).toEqual([]);
    });
  },
);

/** Removes a group tree, deepest first (what a failed test may leave). */
function removeGroups(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeGroups(join(dir, e.name));
  rmdirSync(dir);
}
