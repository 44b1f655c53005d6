/**
 * The exec escape suite through the real server and HTTP API: every way out
 * of a namespace an agent might try, each asserting the exact outcome.
 * (packages/server/test/sandbox/exec-isolation.test.ts covers the runner alone.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';

const isRoot = process.getuid?.() === 0;
const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';
const TIMEOUT_MS = 3000;
const MAX_FILE = 8 * 1024 * 1024;

interface ExecJson {
  exit_code: number;
  stdout: string;
  stderr: string;
  duration_ms: number;
}

/** A number that appears in no other command line on the machine. */
const marker = () => String(700000 + Math.floor(Math.random() * 299999));

function survivors(needle: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'))?.[1];
      if (cmd.includes(needle) && state !== 'Z') out.push(`${name}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

describe.skipIf(!hasBwrap)(`exec escape suite over HTTP${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let server: StartedServer;
  let attacker: ReturnType<typeof api>;
  let victim: ReturnType<typeof api>;
  let victimDir: string;
  let victimSecretPath: string;
  const secret = `victim-secret-${Math.random().toString(36).slice(2)}`;

  const exec = async (command: string): Promise<ExecJson> => {
    const res = await attacker('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command }),
    });
    const body = await res.text();
    expect(res.status, body).toBe(200);
    return JSON.parse(body) as ExecJson;
  };

  beforeAll(async () => {
    server = await startServer({
      env: {
        TROVE_EXEC_TIMEOUT_MS: String(TIMEOUT_MS),
        TROVE_EXEC_MAX_FILE_BYTES: String(MAX_FILE),
        TROVE_EXEC_MAX_PROCS: '64',
      },
    });
    attacker = api(server, server.runtimeKey, 'attacker');
    victim = api(server, server.runtimeKey, 'victim');
    const put = await victim('/files/secret.txt', { method: 'PUT', body: secret });
    expect(put.status).toBe(200);
    victimDir = join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', 'victim');
    victimSecretPath = join(victimDir, 'secret.txt');
    expect(readFileSync(victimSecretPath, 'utf8')).toBe(secret);
    // As root the attacker's first exec takes a pre-made sandbox (the suite runs in a claimed one): the pool fills first.
    if (isRoot) {
      const deadline = Date.now() + 30_000;
      for (let p = await pool(); p.ready < p.size; p = await pool()) {
        if (Date.now() > deadline) throw new Error(`the sandbox pool did not fill: ${JSON.stringify(p)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // The attacker's namespace exists from its first exec.
    expect((await exec('true')).exit_code).toBe(0);
  });

  /** The server's pool of pre-made sandboxes (admin health). */
  const pool = async () => {
    const res = await api(server, server.adminKey)('/v1/admin/health');
    return ((await res.json()) as { sandbox_pool: { size: number; ready: number; claimed: number; failed: number } })
      .sandbox_pool;
  };

  it.skipIf(!isRoot)('the suite runs in a sandbox claimed from the pool (root)', async () => {
    expect(await pool()).toMatchObject({ size: 8, claimed: 1, failed: 0 });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('cannot read another namespace by its absolute host path', async () => {
    const r = await exec(`cat ${victimSecretPath}`);
    expect(r.exit_code).toBe(1);
    expect(r.stderr).toBe(`cat: ${victimSecretPath}: No such file or directory\n`);
    expect(r.stdout).toBe('');
  });

  it('cannot reach another namespace with ..', async () => {
    const r = await exec(
      'cat workspace/../victim/secret.txt ../victim/secret.txt workspace/../../namespaces/victim/secret.txt ../../../victim/secret.txt 2>&1; ls -a workspace/.. | tr "\\n" " "',
    );
    expect(r.stdout).toContain('cat: workspace/../victim/secret.txt: No such file or directory');
    expect(r.stdout).toContain('cat: ../victim/secret.txt: No such file or directory');
    expect(r.stdout).toContain('cat: workspace/../../namespaces/victim/secret.txt: No such file or directory');
    expect(r.stdout).toContain('cat: ../../../victim/secret.txt: No such file or directory');
    expect(r.stdout.endsWith('. .. workspace ')).toBe(true);
    expect(r.stdout).not.toContain(secret);
  });

  it('cannot reach the host through /proc/<server pid>/root', async () => {
    const pid = server.proc.pid!;
    const r = await exec(
      `cat /proc/${pid}/root${victimSecretPath} 2>&1; ls /proc/${pid} 2>&1; cat /proc/1/root${victimSecretPath} 2>&1`,
    );
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`cat: /proc/${pid}/root${victimSecretPath}: No such file or directory`);
    expect(lines[1]).toBe(`ls: cannot access '/proc/${pid}': No such file or directory`);
    // pid 1 is the sandbox's own init: its root is the sandbox root (and, run by root, not even traversable).
    expect(lines[2]).toMatch(
      new RegExp(`^cat: /proc/1/root${victimSecretPath}: (No such file or directory|Permission denied)$`),
    );
    expect(r.stdout).not.toContain(secret);
  });

  it('cannot read another namespace through a symlink, inside exec or through the files API', async () => {
    const r = await exec(
      `ln -s ${victimSecretPath} workspace/to-secret; ln -s ${victimDir} workspace/to-victim; ` +
        `ln -s ../../../../../../../../../../..${victimSecretPath} workspace/up-secret; ` +
        'cat workspace/to-secret workspace/to-victim/secret.txt workspace/up-secret 2>&1',
    );
    expect(r.stdout).toBe(
      'cat: workspace/to-secret: No such file or directory\n' +
        'cat: workspace/to-victim/secret.txt: No such file or directory\n' +
        'cat: workspace/up-secret: No such file or directory\n',
    );
    // The files API sees the links as host paths: it must refuse them, never follow them out.
    for (const path of ['to-secret', 'to-victim/secret.txt', 'up-secret']) {
      const raw = await attacker(`/files/${path}`);
      const text = await raw.text();
      expect(raw.status, `GET /files/${path}`).toBeGreaterThanOrEqual(400);
      expect(raw.status).toBeLessThan(500);
      expect(text).not.toContain(secret);
      expect(JSON.parse(text)).toHaveProperty('detail');
      const content = await attacker(`/v1/files/content?path=${encodeURIComponent(`workspace/${path}`)}`);
      const ctext = await content.text();
      expect(content.status, `GET /v1/files/content ${path}`).toBeGreaterThanOrEqual(400);
      expect(content.status).toBeLessThan(500);
      expect(ctext).not.toContain(secret);
    }
    const listing = await attacker(`/v1/files?path=${encodeURIComponent('workspace/to-victim')}`);
    expect(listing.status).toBeGreaterThanOrEqual(400);
    expect(listing.status).toBeLessThan(500);
    expect(await listing.text()).not.toContain('secret.txt');
  });

  it('a symlink to a host file (/etc/passwd, the database) is refused by the files API', async () => {
    await exec(`ln -s /etc/passwd workspace/etc-passwd; ln -s ${join(server.dataDir, 'trove.db')} workspace/db`);
    for (const path of ['etc-passwd', 'db']) {
      const res = await attacker(`/files/${path}`);
      const text = await res.text();
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(text).not.toContain('root:x:0:0');
      expect(text).not.toContain('SQLite format');
    }
  });

  it('cannot read the server database or the data dir', async () => {
    const db = join(server.dataDir, 'trove.db');
    const r = await exec(
      `cat ${db} 2>&1; ls ${server.dataDir} 2>&1; find / -path /proc -prune -o -path /usr -prune -o -name 'trove.db*' -print 2>/dev/null`,
    );
    expect(r.stdout).toBe(
      `cat: ${db}: No such file or directory\nls: cannot access '${server.dataDir}': No such file or directory\n`,
    );
  });

  it('cannot open TCP connections to the server port or to 127.0.0.1:5432', async () => {
    const r = await exec(
      `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${server.port}' 2>&1 | tail -1 | sed 's/^.*: //'; ` +
        `bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' 2>&1 | tail -1 | sed 's/^.*: //'; ` +
        `python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${server.port}/v1/me', timeout=2)" 2>&1 | tail -1`,
    );
    expect(r.stdout).toBe(
      'Connection refused\nConnection refused\nurllib.error.URLError: <urlopen error [Errno 111] Connection refused>\n',
    );
  });

  it('contains a fork bomb: the server and a neighbour keep working, the bomb times out and nothing survives', async () => {
    const m = marker();
    // The shell forks once, for the bomb's subshell, before any bomb process exists (`bomb | bomb &` in the
    // shell itself forks twice: the cap could refuse the second and end the shell), then `exec sleep` needs
    // no fork: the shell outlives the bomb whatever the process cap does to it, always a 408.
    const bomb = attacker('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: `# ${m}\nbomb() { bomb | bomb & }; (bomb) & exec sleep ${m}` }),
    });
    await new Promise((r) => setTimeout(r, 700));
    const during = Date.now();
    const me = await attacker('/v1/me');
    expect(me.status).toBe(200);
    expect(Date.now() - during).toBeLessThan(2000);
    const other = await victim('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'sh -c "echo neighbour"' }),
    });
    expect(other.status).toBe(200);
    expect(((await other.json()) as ExecJson).stdout).toBe('neighbour\n');
    const res = await bomb;
    expect(res.status).toBe(408);
    expect(await res.json()).toEqual({
      detail: `Command timed out after ${TIMEOUT_MS / 1000}s.`,
      code: 'exec_timeout',
    });
    // The 408 is only sent once the exec's whole tree is gone.
    expect(survivors(m)).toEqual([]);
  });

  it('stops `yes > file` at the file size limit, and the files API sees the capped file', async () => {
    const r = await exec('yes > workspace/big.txt; echo "status=$?"');
    expect(r.stdout).toBe('status=153\n');
    const list = await attacker('/v1/files?path=workspace/');
    const entries = ((await list.json()) as { entries: Array<{ path: string; size_bytes: number | null }> }).entries;
    expect(entries.find((e) => e.path === 'workspace/big.txt')?.size_bytes).toBe(MAX_FILE);
  });

  it('sleeping past the timeout answers 408 and leaves no process of the exec alive', async () => {
    const m = marker();
    const started = Date.now();
    const res = await attacker('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: `sleep ${m}1 & setsid sleep ${m}2 & (sleep ${m}3 &); sleep ${m}4` }),
    });
    expect(res.status).toBe(408);
    expect(await res.json()).toEqual({
      detail: `Command timed out after ${TIMEOUT_MS / 1000}s.`,
      code: 'exec_timeout',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(survivors(m)).toEqual([]);
  });

  it('cannot write outside workspace/ (only a private /tmp and HOME, which vanish)', async () => {
    const targets = ['/usr/x', '/etc/x', '/x', '/home/x', '/var/x', '/etc/passwd', `${server.dataDir}/x`];
    const r = await exec(
      targets.map((t) => `(echo x > ${t}) 2>/dev/null && echo "wrote ${t}" || echo "refused ${t}"`).join('; ') +
        '; echo t > /tmp/t && echo h > ~/h && echo "wrote tmp and home"',
    );
    expect(r.stdout).toBe(targets.map((t) => `refused ${t}\n`).join('') + 'wrote tmp and home\n');
    expect((await exec('ls -A /tmp; ls -A ~')).stdout).toBe('workspace\n');
    expect(existsSync(`${server.dataDir}/x`)).toBe(false);
  });

  it('cannot become root', async () => {
    const r = await exec(
      'id -u; su -c id root </dev/null >/dev/null 2>&1; echo "su=$?"; sudo -n id >/dev/null 2>&1; echo "sudo=$?"; unshare -r id -u 2>&1; echo "unshare=$?"',
    );
    const [uid, su, sudo, unshare, unshareRc] = r.stdout.trim().split('\n');
    expect(uid).not.toBe('0');
    expect(Number(uid)).toBeGreaterThan(0);
    expect(su).toMatch(/^su=[1-9]/);
    expect(sudo).toMatch(/^sudo=[1-9]/);
    expect(unshare).toBe('unshare: unshare failed: Operation not permitted');
    expect(unshareRc).toBe('unshare=1');
  });

  it('the server process is still alive after everything above', async () => {
    expect({ exitCode: server.proc.exitCode, signal: server.proc.signalCode }, server.output().slice(-4000)).toEqual({
      exitCode: null,
      signal: null,
    });
    expect((await api(server, server.runtimeKey, 'alive')('/v1/me')).status).toBe(200);
  });
});
