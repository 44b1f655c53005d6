/** `execute`: commands in the namespace, exit codes, stderr, time limits, output limits. */
import { describe, expect, it } from 'vitest';
import { TroveSandbox } from '../src/index.js';
import { freshNamespace, useTrove } from '../../../test/helpers/trove-session.js';

// The server's own exec limit is short here, to show that execute's limit is not bound by it.
const t = useTrove({ TROVE_EXEC_TIMEOUT_MS: '2000' });

async function sandbox(options: { timeoutMs?: number; maxOutputChars?: number } = {}): Promise<TroveSandbox> {
  return TroveSandbox.create({ client: t.client, namespace: freshNamespace('exec'), ...options });
}

describe('TroveSandbox.execute', () => {
  it('returns stdout and exit code 0', async () => {
    const sb = await sandbox();
    expect(await sb.execute('echo hello; echo world')).toEqual({
      output: 'hello\nworld',
      exitCode: 0,
      truncated: false,
    });
  });

  it('reports a non-zero exit code with stderr lines marked', async () => {
    const sb = await sandbox();
    const r = await sb.execute('echo out; printf "e1\\ne2\\n" >&2; exit 7');
    expect(r).toEqual({ output: 'out\n[stderr] e1\n[stderr] e2', exitCode: 7, truncated: false });
  });

  it('says when there was no output', async () => {
    const sb = await sandbox();
    expect(await sb.execute('true')).toEqual({ output: '<no output>', exitCode: 0, truncated: false });
    expect((await sb.execute('false')).exitCode).toBe(1);
  });

  it('runs in the namespace directory, so commands and file tools agree', async () => {
    const sb = await sandbox();
    await sb.write('/src/app.py', 'print(6 * 7)\n');
    expect((await sb.execute('pwd')).output).toBe('/home/agent/workspace');
    expect((await sb.execute('python3 src/app.py')).output).toBe('42');
    await sb.execute('mkdir -p out && echo made > out/r.txt');
    expect((await sb.read('/out/r.txt')).content).toBe('made\n');
  });

  it('keeps the namespace between commands, not shell state or /tmp', async () => {
    const sb = await sandbox();
    await sb.execute('export X=1; echo kept > kept.txt; echo gone > /tmp/gone.txt; cd /tmp');
    const r = await sb.execute('echo "[$X]"; pwd; cat kept.txt; cat /tmp/gone.txt');
    expect(r.output).toBe('[]\n/home/agent/workspace\nkept\n[stderr] cat: /tmp/gone.txt: No such file or directory');
    expect(r.exitCode).toBe(1);
  });

  it('kills a command past its time limit and reports exit 124 with what it printed', async () => {
    const sb = await sandbox({ timeoutMs: 1500 });
    const started = Date.now();
    const r = await sb.execute('echo before; sleep 30; echo after');
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.exitCode).toBe(124);
    expect(r.output).toBe('before\nError: Command timed out after 1.5 seconds.');
  });

  it("takes a per-call time limit, which may pass the server's exec limit", async () => {
    const sb = await sandbox({ timeoutMs: 500 });
    const r = await sb.execute('sleep 3; echo slow but fine', { timeoutMs: 20_000 });
    expect(r).toEqual({ output: 'slow but fine', exitCode: 0, truncated: false });
    await expect(sb.client.exec('sleep 3')).rejects.toThrow(/timed out/);
  });

  it('stops waiting and kills the command when the signal aborts', async () => {
    const sb = await sandbox();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 500);
    await expect(sb.execute('sleep 30', { signal: controller.signal })).rejects.toThrow();
    const [proc] = await sb.client.processes.list();
    expect(proc!.command).toContain('sleep 30');
    const ended = await sb.client.processes.wait(proc!.processId, { maxWaitMs: 10_000 });
    expect(ended).toMatchObject({ state: 'exited', exitReason: 'killed', signal: 'SIGKILL' });
  });

  it('cuts output past maxOutputChars and says so', async () => {
    const sb = await sandbox({ maxOutputChars: 1000 });
    const r = await sb.execute('seq 1 5000');
    expect(r.truncated).toBe(true);
    expect(r.exitCode).toBe(0);
    expect(r.output.startsWith('1\n2\n3\n')).toBe(true);
    expect(r.output).toMatch(/\n\n\.\.\. Output truncated at 1000 characters\.$/);
    expect(r.output.length).toBeLessThan(1100);
  });

  it('passes unicode and binary-ish output through as text', async () => {
    const sb = await sandbox();
    expect((await sb.execute("printf 'héllo ✓ 日本\\n'")).output).toBe('héllo ✓ 日本');
  });

  it('refuses an empty command', async () => {
    const sb = await sandbox();
    expect(await sb.execute('  ')).toEqual({
      output: 'Error: Command must be a non-empty string.',
      exitCode: 1,
      truncated: false,
    });
  });

  it('sources the namespace init script first', async () => {
    const sb = await sandbox();
    await sb.client.setInit('export GREETING=hi\n');
    expect((await sb.execute('echo "$GREETING"')).output).toBe('hi');
  });
});
