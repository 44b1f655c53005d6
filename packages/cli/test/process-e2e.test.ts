/**
 * The built `trove` binary against the real server: live `run --stream`, and a background process
 * through `run --background`, `ps`, `logs [-f]`, `attach` and `kill`, with their exit codes.
 */
import { describe, expect, it } from 'vitest';
import { useLoggedInCli } from './helpers/session.js';

const session = useLoggedInCli({ namespace: 'cli-proc' });

describe('trove run --stream', () => {
  it('prints the first line while the command is still running, then exits with its code', async () => {
    // The command waits for a file the test writes once the first line has been seen.
    const live = session.start([
      'run',
      '--stream',
      '--no-stdin',
      'echo first; while [ ! -e workspace/go ]; do sleep 0.05; done; echo second; exit 6',
    ]);
    await live.waitFor((out) => out === 'first\n');
    expect(live.proc.exitCode).toBeNull();
    await session.ok(['write', 'go', 'now']);
    const result = await live.exited;
    expect(result.stdout).toBe('first\nsecond\n');
    expect(result.code).toBe(6);
  });

  it('--stream --json: one line per chunk, then the exit', async () => {
    const r = await session.run(['run', '--stream', '--json', 'printf out; printf err >&2']);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.type !== 'exit').sort((a, b) => String(a.type).localeCompare(String(b.type)))).toEqual(
      [
        { type: 'stderr', offset: 0, data: 'err', encoding: 'utf-8' },
        { type: 'stdout', offset: 0, data: 'out', encoding: 'utf-8' },
      ],
    );
    expect(lines.at(-1)).toEqual({
      type: 'exit',
      exit_code: 0,
      exit_reason: 'exited',
      duration_ms: expect.any(Number),
      stdout_truncated: false,
      stderr_truncated: false,
    });
  });
});

describe('background processes', () => {
  it('run --background, ps, logs, logs -f, kill', async () => {
    const started = await session.run([
      'run',
      '--background',
      'echo hello; echo oops >&2; while [ ! -e workspace/stop ]; do sleep 0.05; done; echo bye; exit 3',
    ]);
    expect(started.code).toBe(0);
    const id = started.stdout.trim();
    expect(id).toMatch(/^proc-[0-9a-f]+$/);

    const ps = await session.ok(['ps']);
    expect(
      ps
        .split('\n')
        .find((l) => l.startsWith(id))!
        .split('\t')
        .slice(0, 2),
    ).toEqual([id, 'running']);
    const psJson = JSON.parse(await session.ok(['ps', '--json'])) as { processes: Record<string, unknown>[] };
    expect(psJson.processes.find((p) => p.process_id === id)).toMatchObject({
      state: 'running',
      namespace: 'cli-proc',
      exit_code: null,
    });

    // Output so far, each stream to its own descriptor (waiting until both lines exist).
    for (;;) {
      const r = await session.run(['logs', id]);
      expect(r.code).toBe(0);
      if (r.stdout === 'hello\n' && r.stderr === 'oops\n') break;
    }

    const following = session.start(['logs', '-f', id]);
    await following.waitFor((out) => out === 'hello\n');
    await session.ok(['write', 'stop', '']);
    const followed = await following.exited;
    expect(followed.code).toBe(0);
    expect(followed.stdout).toBe('hello\nbye\n');
    expect(followed.stderr).toBe('oops\n');

    const all = JSON.parse(await session.ok(['ps', '-a', '--json'])) as { processes: Record<string, unknown>[] };
    expect(all.processes.find((p) => p.process_id === id)).toMatchObject({
      state: 'exited',
      exit_code: 3,
      exit_reason: 'exited',
    });
    expect(await session.ok(['ps'])).not.toContain(id);

    const late = await session.run(['kill', id]);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain(`${id} has already exited`);
  });

  it('kill ends a process and everything it started', async () => {
    const id = (await session.ok(['run', '-b', 'sleep 300 & sleep 300'])).trim();
    const killed = await session.run(['kill', '-s', 'KILL', '--json', id]);
    expect(killed.code).toBe(0);
    expect(JSON.parse(killed.stdout)).toEqual({ process_id: id, signal: 'SIGKILL', delivered: true });
    const followed = await session.run(['logs', '-f', '--json', id]);
    const exit = JSON.parse(followed.stdout.trim().split('\n').at(-1)!) as {
      type: string;
      process: Record<string, unknown>;
    };
    expect(exit).toMatchObject({ type: 'exit', process: { process_id: id, state: 'exited', signal: 'SIGKILL' } });
  });

  it('attach forwards piped stdin, closes it at its end, and exits with the process’s code', async () => {
    // --no-stdin: the (empty) pipe this runs under is not forwarded, so the process's stdin stays open.
    const id = (
      await session.ok(['run', '-b', '--no-stdin', 'while read line; do echo "got $line"; done; echo closed; exit 9'])
    ).trim();
    const attached = await session.run(['attach', id], { input: 'one\ntwo\n' });
    expect(attached.stderr).toBe('');
    expect(attached.stdout).toBe('got one\ngot two\nclosed\n');
    expect(attached.code).toBe(9);
    const again = await session.run(['attach', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${id} has ended (exited 9)`);
  });

  it('unknown ids are exit 1 with the server’s message', async () => {
    for (const args of [
      ['logs', 'proc-0000'],
      ['kill', 'proc-0000'],
      ['attach', 'proc-0000'],
      ['logs', '-f', 'proc-0000'],
    ]) {
      const r = await session.run(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(/^error: .*proc-0000/m);
    }
  });
});
