/** `TroveShell.run` called with the actions the SDK passes (`{ commands, timeoutMs?, maxOutputLength? }`). */
import { describe, expect, it } from 'vitest';
import { TroveShell, WORKING_DIRECTORY } from '../src/index.js';
import { freshNamespace, useTrove } from '../../../test/helpers/trove-session.js';

// The server's own exec limit is short here, to show that a command's limit is not bound by it.
const t = useTrove({ TROVE_EXEC_TIMEOUT_MS: '2000' });
const shell = (options?: ConstructorParameters<typeof TroveShell>[1]) =>
  new TroveShell(t.client.withNamespace(freshNamespace('shell')), options);

describe('TroveShell', () => {
  it('runs each command and reports stdout, stderr and the exit code', async () => {
    const r = await shell().run({ commands: ['echo hi', 'echo oops >&2; exit 3', 'printf "no newline"'] });
    expect(r.output).toEqual([
      { command: 'echo hi', stdout: 'hi\n', stderr: '', outcome: { type: 'exit', exitCode: 0 } },
      { command: 'echo oops >&2; exit 3', stdout: '', stderr: 'oops\n', outcome: { type: 'exit', exitCode: 3 } },
      { command: 'printf "no newline"', stdout: 'no newline', stderr: '', outcome: { type: 'exit', exitCode: 0 } },
    ]);
    expect(r.providerData).toEqual({ working_directory: WORKING_DIRECTORY });
    expect(r.maxOutputLength).toBe(100_000);
  });

  it('starts every command in the namespace directory; files persist, shell state does not', async () => {
    const sh = shell();
    const r = await sh.run({
      commands: ['pwd', 'echo data > f.txt; cd /tmp; export X=1', 'cat f.txt; pwd; echo "[$X]"'],
    });
    expect(r.output.map((o) => o.stdout)).toEqual([`${WORKING_DIRECTORY}\n`, '', `data\n${WORKING_DIRECTORY}\n[]\n`]);
    expect(await sh.client.readText('f.txt')).toBe('data\n');
  });

  it('kills a command past timeoutMs, reports a timeout and skips the rest', async () => {
    const started = Date.now();
    const r = await shell().run({ commands: ['echo first', 'echo partial; sleep 30', 'echo never'], timeoutMs: 1500 });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.output).toHaveLength(2);
    expect(r.output[0]!.outcome).toEqual({ type: 'exit', exitCode: 0 });
    expect(r.output[1]).toEqual({
      command: 'echo partial; sleep 30',
      stdout: 'partial\n',
      stderr: '',
      outcome: { type: 'timeout' },
    });
  });

  it("uses its own time limit when the action has none, and the action's may pass the server's exec limit", async () => {
    expect((await shell({ timeoutMs: 1000 }).run({ commands: ['sleep 5'] })).output[0]!.outcome).toEqual({
      type: 'timeout',
    });
    const slow = await shell({ timeoutMs: 1000 }).run({ commands: ['sleep 3; echo ok'], timeoutMs: 20_000 });
    expect(slow.output[0]).toMatchObject({ stdout: 'ok\n', outcome: { type: 'exit', exitCode: 0 } });
  });

  it('keeps the head and the tail of output beyond maxOutputLength, for each stream', async () => {
    const r = await shell().run({ commands: ['seq 1 20000; seq 1 20000 >&2'], maxOutputLength: 200 });
    expect(r.maxOutputLength).toBe(200);
    const { stdout, stderr } = r.output[0]!;
    for (const text of [stdout, stderr]) {
      expect(text.startsWith('1\n2\n3\n')).toBe(true);
      expect(text.endsWith('19999\n20000\n')).toBe(true);
      expect(text).toMatch(/\n…\[\d+ characters truncated\]…\n/);
      expect(text.length).toBeLessThan(300);
    }
    const dropped = Number(/\[(\d+) characters/.exec(stdout)![1]);
    const full = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('').length;
    expect(dropped).toBe(full - 200);
  });

  it('keeps unicode whole', async () => {
    const r = await shell().run({ commands: ["printf 'Grüße ✓ 日本語'"] });
    expect(r.output[0]!.stdout).toBe('Grüße ✓ 日本語');
  });

  it('reports a command that cannot start with a null exit code instead of throwing', async () => {
    const bad = new TroveShell(t.client.withNamespace('bad namespace!'));
    const r = await bad.run({ commands: ['echo hi'] });
    expect(r.output[0]!.outcome).toEqual({ type: 'exit', exitCode: null });
    expect(r.output[0]!.stderr).toMatch(/^Could not start the command: /);
  });
});
