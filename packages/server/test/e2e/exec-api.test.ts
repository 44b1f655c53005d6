/**
 * Exec through the real server: the JSON and legacy text forms, stdin,
 * timeouts, and that exec and the files API see the same tree both ways.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { isRoot } from '../../../../test/helpers/root.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

describe.skipIf(!hasBwrap)(`exec over HTTP${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let server: StartedServer;
  let ns: ReturnType<typeof api>;

  const post = (path: string, body: unknown) =>
    ns(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  beforeAll(async () => {
    server = await startServer({ env: { TROVE_EXEC_TIMEOUT_MS: '2500' } });
    ns = api(server, server.runtimeKey, 'exec-api');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('POST /v1/exec returns exit_code, stdout, stderr and duration_ms (and exit_reason); a non-zero exit is still 200', async () => {
    const res = await post('/v1/exec', { command: 'echo out; echo err >&2; exit 3' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    // docs/protocol.md's four fields, plus exit_reason (ours).
    expect(Object.keys(body).sort()).toEqual(['duration_ms', 'exit_code', 'exit_reason', 'stderr', 'stdout']);
    expect(body).toMatchObject({ exit_code: 3, stdout: 'out\n', stderr: 'err\n', exit_reason: 'exited' });
    expect(Number.isInteger(body.duration_ms)).toBe(true);
  });

  it('exit_reason says signaled for 128+N (a process ended by signal N), exited otherwise', async () => {
    const killed = (await (await post('/v1/exec', { command: 'kill -9 $$' })).json()) as Record<string, unknown>;
    expect(killed).toMatchObject({ exit_code: 137, exit_reason: 'signaled' });
    const ok = (await (await post('/v1/exec', { command: 'true' })).json()) as Record<string, unknown>;
    expect(ok).toMatchObject({ exit_code: 0, exit_reason: 'exited' });
    // The legacy form keeps its format: no reason in it.
    expect(await (await post('/exec', { command: 'kill -9 $$' })).text()).toBe('[exit 137]\n\n');
  });

  it('forwards stdin, and without it stdin is empty', async () => {
    const withStdin = (await (await post('/v1/exec', { command: 'wc -c', stdin: 'héllo' })).json()) as {
      stdout: string;
    };
    expect(withStdin.stdout.trim()).toBe('6');
    const without = (await (await post('/v1/exec', { command: 'cat; echo "[end]"' })).json()) as { stdout: string };
    expect(without.stdout).toBe('[end]\n');
  });

  it('caps large output at 10 MiB per stream and marks the truncation (JSON and legacy forms)', async () => {
    const cap = 10 * 1024 * 1024;
    const command = `head -c ${cap + 4096} /dev/zero | tr '\\0' a; echo tail-on-stderr >&2`;
    const res = await post('/v1/exec', { command });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { exit_code: number; stdout: string; stderr: string };
    expect(body.exit_code).toBe(0);
    expect(body.stdout.length).toBe(
      cap + `\n[trove: stdout truncated: showing the first ${cap} of ${cap + 4096} bytes]\n`.length,
    );
    expect(body.stdout.startsWith('a'.repeat(cap))).toBe(true);
    expect(body.stdout.slice(cap)).toBe(
      `\n[trove: stdout truncated: showing the first ${cap} of ${cap + 4096} bytes]\n`,
    );
    expect(body.stderr).toBe('tail-on-stderr\n');
    const legacy = await post('/exec', { command: `head -c ${cap + 1} /dev/zero | tr '\\0' b` });
    const text = await legacy.text();
    expect(text.endsWith(`\n[trove: stdout truncated: showing the first ${cap} of ${cap + 1} bytes]\n`)).toBe(true);
  });

  it('returns binary output as UTF-8 text with U+FFFD for invalid bytes', async () => {
    const r = (await (
      await post('/v1/exec', { command: "printf 'a\\377\\376b\\000c'; printf '\\351t\\351' >&2" })
    ).json()) as {
      stdout: string;
      stderr: string;
    };
    expect(r.stdout).toBe('a\uFFFD\uFFFDb\u0000c');
    expect(r.stderr).toBe('\uFFFDt\uFFFD');
  });

  it('round-trips unicode in the command, stdin, output, stderr and file names', async () => {
    const r = (await (
      await post('/v1/exec', {
        command: 'printf "%s|" "héllo 日本語 🎉"; cat; echo "ünï ✓" >&2; echo "contenu" > "workspace/résumé-📄.txt"',
        stdin: 'ß→∑',
      })
    ).json()) as { exit_code: number; stdout: string; stderr: string };
    expect(r).toMatchObject({ exit_code: 0, stdout: 'héllo 日本語 🎉|ß→∑', stderr: 'ünï ✓\n' });
    const list = (await (await ns('/v1/files?path=workspace/')).json()) as { entries: Array<{ path: string }> };
    expect(list.entries.map((e) => e.path)).toContain('workspace/résumé-📄.txt');
    expect(await (await ns(`/files/${encodeURIComponent('résumé-📄.txt')}`)).text()).toBe('contenu\n');
    const legacy = await post('/exec', { command: 'echo "ok ✓"' });
    expect(legacy.headers.get('content-type')).toMatch(/charset=utf-8/);
    expect(await legacy.text()).toBe('ok ✓\n');
  });

  it('POST /exec (legacy) answers text/plain: stdout on success', async () => {
    const res = await post('/exec', { command: 'printf "a\\nb"' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('a\nb');
  });

  it('POST /exec (legacy) answers "[exit N]\\n<stderr>\\n<stdout>" on failure', async () => {
    const res = await post('/exec', { command: 'echo out; echo err >&2; exit 7' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('[exit 7]\nerr\n\nout\n');
  });

  it('answers 408 with the protocol wording on timeout, on both forms', async () => {
    for (const path of ['/v1/exec', '/exec']) {
      const res = await post(path, { command: 'sleep 20' });
      expect(res.status).toBe(408);
      expect(await res.json()).toEqual({ detail: 'Command timed out after 2.5s.', code: 'exec_timeout' });
    }
    // A timed-out command completed nothing: no exec.completed event.
    const admin = api(server, server.adminKey);
    const evs = (await (
      await admin(`/v1/workspaces/${server.workspaceId}/events?types=exec.completed&namespace=exec-api&limit=200`)
    ).json()) as { events: Array<{ data: { command: string } }> };
    expect(evs.events.filter((e) => e.data.command === 'sleep 20')).toEqual([]);
  });

  it('accepts a command far larger than one argv entry (an agent writing a file with a heredoc)', async () => {
    const body = 'line of text\n'.repeat(30_000); // ~390 KB
    const res = await post('/v1/exec', {
      command: `cat > workspace/doc.txt <<'EOF'\n${body}EOF\nwc -l < workspace/doc.txt`,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ exit_code: 0, stdout: '30000\n', stderr: '' });
    expect(await (await ns('/files/doc.txt')).text()).toBe(body);
  });

  it('rejects stdin over 1 MiB with 422', async () => {
    const res = await post('/v1/exec', { command: 'wc -c', stdin: 'x'.repeat(1024 * 1024 + 1) });
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({ detail: 'stdin is larger than 1 MiB', code: 'validation_failed' });
    // Exactly 1 MiB is fine.
    const max = await post('/v1/exec', { command: 'wc -c', stdin: 'x'.repeat(1024 * 1024) });
    expect(((await max.json()) as { stdout: string }).stdout.trim()).toBe(String(1024 * 1024));
  });

  it('files created by exec are visible through GET /v1/files and /files', async () => {
    const r = (await (
      await post('/v1/exec', { command: 'mkdir -p workspace/made && printf "from exec" > workspace/made/e.txt' })
    ).json()) as {
      exit_code: number;
    };
    expect(r.exit_code).toBe(0);
    const list = (await (await ns('/v1/files?path=workspace/made')).json()) as {
      entries: Array<{ path: string; size_bytes: number }>;
    };
    expect(list.entries).toEqual([expect.objectContaining({ path: 'workspace/made/e.txt', size_bytes: 9 })]);
    const raw = await ns('/files/made/e.txt');
    expect(await raw.text()).toBe('from exec');
    const content = (await (await ns('/v1/files/content?path=workspace/made/e.txt')).json()) as {
      content: string;
      encoding: string;
    };
    expect(content).toMatchObject({ encoding: 'utf-8', content: 'from exec' });
  });

  it('files written through the API are visible to exec, and exec can change and delete them', async () => {
    expect((await post('/write', { path: 'api/w.txt', content: 'from api' })).status).toBe(200);
    expect((await ns('/files/api/up.bin', { method: 'PUT', body: new Uint8Array([1, 2, 3]) })).status).toBe(200);
    const r = (await (
      await post('/v1/exec', {
        command:
          'cat workspace/api/w.txt; echo; xxd -p workspace/api/up.bin; echo " more" >> workspace/api/w.txt; echo new > workspace/api/new.txt; rm workspace/api/up.bin',
      })
    ).json()) as { exit_code: number; stdout: string; stderr: string };
    expect(r).toMatchObject({ exit_code: 0, stdout: 'from api\n010203\n', stderr: '' });
    expect(await (await ns('/files/api/w.txt')).text()).toBe('from api more\n');
    expect((await ns('/files/api/up.bin')).status).toBe(404);
    // The API can overwrite and delete what exec created (root server: exec files belong to the exec uid).
    expect((await post('/write', { path: 'api/new.txt', content: 'overwritten' })).status).toBe(200);
    expect((await post('/delete', { path: 'api' })).status).toBe(200);
    const gone = (await (await post('/v1/exec', { command: 'ls workspace/api 2>&1; true' })).json()) as {
      stdout: string;
    };
    expect(gone.stdout).toMatch(/No such file or directory/);
  });

  it('the namespace tree belongs to the exec uid when the server runs as root', async () => {
    await post('/v1/exec', { command: 'touch workspace/owned' });
    const dir = join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', 'exec-api');
    const uid = (await (await post('/v1/exec', { command: 'id -u' })).json()) as { stdout: string };
    expect(String(statSync(join(dir, 'owned')).uid)).toBe(uid.stdout.trim());
    if (isRoot) expect(statSync(dir).uid).not.toBe(0);
  });

  it('sources workspace/.trove/init.sh before each /v1/exec command', async () => {
    await post('/write', { path: '.trove/init.sh', content: 'export GREETING=hello\nalias greet="echo $GREETING"\n' });
    const r = (await (await post('/v1/exec', { command: 'greet; echo "$GREETING"' })).json()) as { stdout: string };
    expect(r.stdout).toBe('hello\nhello\n');
    await post('/delete', { path: '.trove' });
  });

  it('emits exec.completed with the command, exit code, duration and the first KiB of stdout', async () => {
    const command = `head -c 3000 /dev/zero | tr '\\0' z; exit 4`;
    await post('/v1/exec', { command });
    const admin = api(server, server.adminKey);
    const events = (await (
      await admin(`/v1/workspaces/${server.workspaceId}/events?types=exec.completed&namespace=exec-api&limit=1`)
    ).json()) as {
      events: Array<{ data: { command: string; exit_code: number; duration_ms: number; stdout: string } }>;
    };
    expect(events.events[0]!.data).toMatchObject({
      command,
      exit_code: 4,
      exit_reason: 'exited',
      stdout: 'z'.repeat(1024),
    });
    expect(Number.isInteger(events.events[0]!.data.duration_ms)).toBe(true);
  });

  it('the server process is still alive after everything above', async () => {
    expect({ exitCode: server.proc.exitCode, signal: server.proc.signalCode }, server.output().slice(-4000)).toEqual({
      exitCode: null,
      signal: null,
    });
    expect((await api(server, server.runtimeKey, 'alive')('/v1/me')).status).toBe(200);
  });
});
