/**
 * What a command can learn about the host's paths from /proc inside the
 * sandbox. The sandbox's pid 1 is a bwrap process whose command line any
 * process of the sandbox can read: bwrap's options (the data dir, the
 * namespace tree, the runtime files) travel on a descriptor (`--args`), so no
 * /proc/<pid>/cmdline or environ shows them. mountinfo still names the mount
 * sources (docs/exec.md, "What the sandbox does not protect against").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { runtimeBase } from '../../src/sandbox/runner.js';
import { join } from 'node:path';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

describe.skipIf(!hasBwrap)(`host paths inside exec${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let server: StartedServer;
  let rt: ReturnType<typeof api>;
  let runtimeDir: string;

  const exec = async (command: string) => {
    const res = await rt('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { exit_code: number; stdout: string; stderr: string };
  };

  beforeAll(async () => {
    server = await startServer();
    rt = api(server, server.runtimeKey, 'host-paths');
    // The first exec makes sure the sandbox (and its runtime dir) is up.
    expect((await exec('true')).exit_code).toBe(0);
    const dirs = readdirSync(runtimeBase()).filter((n) => n.startsWith(`trove-exec-${server.proc.pid}-`));
    expect(dirs).toHaveLength(1);
    runtimeDir = join(runtimeBase(), dirs[0]!);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('no /proc/*/cmdline inside the sandbox names the data dir or the runtime dir', async () => {
    const r = await exec(`for f in /proc/[0-9]*/cmdline; do printf '%s=' "$f"; tr '\\0' ' ' < "$f"; echo; done 2>&1`);
    expect(r.exit_code).toBe(0);
    // The sandbox's pid 1 (bwrap) was read: its options went through --args, only the command is in argv.
    const pid1 = r.stdout.split('\n').find((l) => l.startsWith('/proc/1/cmdline='));
    expect(pid1).toMatch(/^\/proc\/1\/cmdline=\S*bwrap --args 8 -- /);
    expect(r.stdout).not.toContain('--bind');
    expect(r.stdout).not.toContain(server.dataDir);
    expect(r.stdout).not.toContain(runtimeDir);
    expect(r.stdout).not.toContain('trove-exec-');
    expect(r.stdout).not.toContain(tmpdir() + '/');
    expect(r.stdout).not.toContain(runtimeBase() + '/');
  });

  it('no readable /proc/*/environ names them either, and the --args descriptor is not passed on', async () => {
    const r = await exec(
      `for f in /proc/[0-9]*/environ; do echo "[$f]"; tr '\\0' '\\n' < "$f" 2>/dev/null; done; readlink /proc/self/fd/8 || echo no-fd-8`,
    );
    expect(r.stdout).toContain('[/proc/1/environ]');
    expect(r.stdout).toContain('TROVE_NAMESPACE=host-paths');
    expect(r.stdout).not.toContain(server.dataDir);
    expect(r.stdout).not.toContain(runtimeDir);
    expect(r.stdout).not.toContain('TROVE_DATA_DIR');
    expect(r.stdout.trim().split('\n').pop()).toBe('no-fd-8');
  });

  it('mountinfo names the data dir only as the source of the workspace mount (documented)', async () => {
    const r = await exec('cat /proc/self/mountinfo');
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(5);
    // Field 4 of a bind mount is its path within the source filesystem: the full host path when the data dir
    // sits on the root filesystem, a shorter one when it is a filesystem of its own.
    const withDataDir = lines.filter((l) => l.includes(server.dataDir));
    expect(withDataDir.length).toBeLessThanOrEqual(1);
    for (const l of withDataDir) expect(l.split(' ')[4]).toBe('/home/agent/workspace');
    expect(lines.filter((l) => l.split(' ')[4] === '/home/agent/workspace')).toHaveLength(1);
  });
});
