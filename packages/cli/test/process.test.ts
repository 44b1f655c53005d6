/**
 * `trove run` (live, --stream, --background), `ps`, `logs`, `kill` and `attach` in-process with a
 * test IO against the SDK's scripted fake of the processes API: exact output on terminals and
 * pipes, --json lines, exit codes, stdin forwarding, and a followed stream that loses its
 * connection. process-e2e.test.ts runs the built binary against the real server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/bin.js';
import { parseSignal } from '../src/commands/process/kill.js';
import { startFakeServer, type FakeServer } from '../../sdk/test/helpers/fake-processes.js';
import { makeHome } from './helpers/cli.js';
import { testIO } from './helpers/test-io.js';

/** Conditions are waited for, never slept on; the limit only bounds a failure. */
const POLL = { timeout: 20_000, interval: 10 };
let fake: FakeServer;
let env: Record<string, string>;

beforeAll(async () => {
  fake = await startFakeServer();
  // Colour off: terminal tests compare text (colour rules are io.test.ts's).
  env = { TROVE_API_KEY: 'trove-sk-test', TROVE_BASE_URL: fake.url, TROVE_NAMESPACE: 'ns', NO_COLOR: '1' };
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  fake.execScript = null;
  fake.cutStreamsAfter = null;
  fake.busy = false;
});

const io = (opts: { tty?: boolean; stdin?: string; stdinTTY?: boolean } = {}) =>
  testIO({ home: makeHome(), env, ...opts });
const lines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('trove run', () => {
  it('on a terminal, streams output live to stdout and stderr and exits with the command’s code', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fake.execScript = [
      { stream: 'stdout', data: 'first\n' },
      { waitFor: gate },
      { stream: 'stderr', data: 'warn\n' },
      { stream: 'stdout', data: 'second\n' },
      { exit: 3 },
    ];
    const t = io({ tty: true });
    const code = main(['run', 'echo first; sleep 1; echo second; exit 3'], t.io);
    // The first line is on the terminal while the command is still running.
    await expect.poll(() => t.stdout.text, POLL).toBe('first\n');
    release();
    expect(await code).toBe(3);
    expect(t.stdout.text).toBe('first\nsecond\n');
    expect(t.stderr.text).toBe('warn\n');
    expect(fake.requests('/v1/exec').at(-1)!.headers.accept).toBe('text/event-stream');
  });

  it('on a pipe, waits and prints as before; --stream makes it live, --no-stream buffered', async () => {
    fake.execJson = { exit_code: 0, stdout: 'out\n', stderr: '', duration_ms: 2, exit_reason: 'exited' };
    const pipe = io();
    expect(await main(['run', 'echo out'], pipe.io)).toBe(0);
    expect(pipe.stdout.text).toBe('out\n');
    expect(fake.requests('/v1/exec').at(-1)!.headers.accept).toBe('application/json');

    fake.execScript = [{ stream: 'stdout', data: 'live\n' }, { exit: 0 }];
    const streamed = io();
    expect(await main(['run', '--stream', 'echo live'], streamed.io)).toBe(0);
    expect(streamed.stdout.text).toBe('live\n');

    const buffered = io({ tty: true });
    expect(await main(['run', '--no-stream', 'echo out'], buffered.io)).toBe(0);
    expect(buffered.stdout.text).toBe('out\n');
    expect(fake.requests('/v1/exec').at(-1)!.headers.accept).toBe('application/json');
  });

  it('--stream --json prints one line per chunk (binary as base64), then the exit', async () => {
    fake.execScript = [
      { stream: 'stdout', data: 'text' },
      { stream: 'stderr', data: Buffer.from([0xff, 0x00]) },
      { exit: 2, durationMs: 9 },
    ];
    const t = io();
    expect(await main(['run', '--stream', '--json', 'x'], t.io)).toBe(2);
    expect(lines(t.stdout.text)).toEqual([
      { type: 'stdout', offset: 0, data: 'text', encoding: 'utf-8' },
      { type: 'stderr', offset: 0, data: '/wA=', encoding: 'base64' },
      { type: 'exit', exit_code: 2, exit_reason: 'exited', duration_ms: 9 },
    ]);
    expect(t.stderr.text).toBe('');
  });

  it('a live command past the server’s limit fails like the buffered one: exit 1 with the server’s message', async () => {
    fake.execScript = [
      { stream: 'stdout', data: 'partial\n' },
      { exit: 124, reason: 'timeout' },
      { error: { detail: 'Command timed out after 30s.', code: 'exec_timeout' } },
    ];
    const t = io({ tty: true });
    expect(await main(['run', 'sleep 100'], t.io)).toBe(1);
    expect(t.stdout.text).toBe('partial\n');
    expect(t.stderr.text).toContain('error: Command timed out after 30s.');
    expect(t.stderr.text).toContain('TROVE_EXEC_TIMEOUT_MS');
  });

  it('--background starts a process and prints its id; piped stdin is sent and closed', async () => {
    const t = io({ stdin: 'input data' });
    expect(
      await main(
        ['run', '--background', '--timeout', '1h30m', '-e', 'PORT=3000', '-e', 'LIST=a,b', 'python3 -m http.server'],
        t.io,
      ),
    ).toBe(0);
    const body = JSON.parse(fake.requests('/v1/processes').at(-1)!.body.toString());
    expect(body).toEqual({
      command: 'python3 -m http.server',
      stdin: 'input data',
      close_stdin: true,
      timeout_ms: 5_400_000,
      env: { PORT: '3000', LIST: 'a,b' },
    });
    expect(t.stdout.text).toMatch(/^proc-[0-9a-f]+\n$/);
    expect(t.stderr.text).toBe('');

    // From a terminal, stdin is left open for `trove attach`.
    const tty = io({ tty: true });
    expect(await main(['run', '-b', '--json', 'cat'], tty.io)).toBe(0);
    expect(JSON.parse(fake.requests('/v1/processes').at(-1)!.body.toString())).toEqual({ command: 'cat' });
    const printed = JSON.parse(tty.stdout.text);
    expect(printed).toMatchObject({
      process_id: expect.stringMatching(/^proc-/),
      state: 'running',
      stdin_open: true,
      exit_code: null,
    });
  });

  it('refuses --timeout and --env without --background, bad values, and reports 429', async () => {
    for (const [args, message] of [
      [['run', '--timeout', '10m', 'x'], '--timeout needs --background'],
      [['run', '-e', 'A=1', 'x'], '--env needs --background'],
      [['run', '-b', '--timeout', 'soon', 'x'], '--timeout: cannot read "soon"'],
      [['run', '-b', '-e', 'no-equals', 'x'], '--env: "no-equals" is not NAME=VALUE'],
      [['run', '-b', '--stream', 'x'], '--stream and --background do not go together'],
    ] as const) {
      const t = io();
      expect(await main([...args], t.io), args.join(' ')).toBe(1);
      expect(t.stderr.text).toContain(`error: ${message}`);
    }
    fake.busy = true;
    const busy = io();
    expect(await main(['run', '-b', 'x'], busy.io)).toBe(1);
    expect(busy.stderr.text).toContain('error: Too many processes running in this namespace');
  });
});

describe('trove ps', () => {
  it('lists running processes by default, every one with -a, and --json', async () => {
    const running = fake.add('sleep 1000\n  && echo  done');
    const ended = fake.add('false');
    fake.write(ended.process_id, 'stdout', 'x'.repeat(2048));
    fake.exit(ended.process_id, 143, 'killed', 'SIGTERM');

    const t = io({ tty: true });
    expect(await main(['ps'], t.io)).toBe(0);
    expect(fake.requests('/v1/processes?').at(-1)!.url).toBe('/v1/processes?state=running');
    expect(t.stdout.text.split('\n')[0]).toMatch(/^PROCESS ID +STATUS +STARTED +OUTPUT +COMMAND$/);
    expect(t.stdout.text).toMatch(
      new RegExp(`\\n${running.process_id} +running +\\S.* +0 B +sleep 1000 && echo done\\n`),
    );
    expect(t.stdout.text).not.toContain(ended.process_id);

    // A pipe gets tab-separated rows without the header.
    const all = io();
    expect(await main(['ps', '-a', '--limit', '5'], all.io)).toBe(0);
    expect(fake.requests('/v1/processes?').at(-1)!.url).toBe('/v1/processes?limit=5');
    const row = all.stdout.text.split('\n').find((l) => l.startsWith(ended.process_id))!;
    expect(row.split('\t')).toEqual([ended.process_id, 'killed 143 (SIGTERM)', expect.any(String), '2.0 KiB', 'false']);
    expect(all.stdout.text).not.toContain('PROCESS ID');

    const json = io();
    expect(await main(['ps', '-a', '--json'], json.io)).toBe(0);
    const listed = JSON.parse(json.stdout.text).processes as Record<string, unknown>[];
    expect(listed.find((p) => p.process_id === ended.process_id)).toMatchObject({
      state: 'exited',
      exit_code: 143,
      exit_reason: 'killed',
      signal: 'SIGTERM',
      stdout_bytes: 2048,
    });
  });
});

describe('trove logs', () => {
  it('prints each stream to its own descriptor, page by page, and says what was dropped', async () => {
    const p = fake.add('x');
    const big = Buffer.alloc(3 * 1024 * 1024 + 5, 'a');
    fake.write(p.process_id, 'stdout', big);
    fake.write(p.process_id, 'stderr', 'err\n');
    const t = io();
    expect(await main(['logs', p.process_id], t.io)).toBe(0);
    expect(t.stdout.text).toBe(big.toString());
    expect(t.stderr.text).toBe('err\n');
    // 1 MiB pages (the server's default), then done: it stops at what existed when it started.
    expect(fake.requests(`/v1/processes/${p.process_id}/output?stream=stdout`)).toHaveLength(4);

    fake.drop(p.process_id, 'stdout', 3 * 1024 * 1024);
    const dropped = io();
    expect(await main(['logs', '--stdout', p.process_id], dropped.io)).toBe(0);
    expect(dropped.stdout.text).toBe('aaaaa');
    expect(dropped.stderr.text).toBe('[3145728 bytes of stdout are no longer kept by the server]\n');

    const json = io();
    expect(await main(['logs', '--stderr', '--json', p.process_id], json.io)).toBe(0);
    expect(lines(json.stdout.text)).toEqual([{ type: 'stderr', offset: 0, data: 'err\n', encoding: 'utf-8' }]);
  });

  it('-f follows live across dropped connections until the process ends', async () => {
    const p = fake.add('x');
    fake.write(p.process_id, 'stdout', 'one\n');
    fake.cutStreamsAfter = 1;
    const t = io({ tty: true });
    const code = main(['logs', '-f', p.process_id], t.io);
    await expect.poll(() => t.stdout.text, POLL).toBe('one\n');
    fake.write(p.process_id, 'stderr', 'two\n');
    await expect.poll(() => t.stderr.text, POLL).toBe('two\n');
    fake.write(p.process_id, 'stdout', 'three\n');
    await expect.poll(() => t.stdout.text, POLL).toBe('one\nthree\n');
    fake.exit(p.process_id, 5);
    // logs succeeds whatever the process's own exit code.
    expect(await code).toBe(0);
    expect(t.stderr.text).toContain(`[${p.process_id} ended: exited 5]`);
    expect(fake.requests(`/v1/processes/${p.process_id}/stream`).length).toBeGreaterThanOrEqual(3);

    const json = io();
    expect(await main(['logs', '-f', '--json', p.process_id], json.io)).toBe(0);
    const out = lines(json.stdout.text);
    expect(out.slice(0, -1)).toEqual([
      { type: 'stdout', offset: 0, data: 'one\nthree\n', encoding: 'utf-8' },
      { type: 'stderr', offset: 0, data: 'two\n', encoding: 'utf-8' },
    ]);
    expect(out.at(-1)).toMatchObject({
      type: 'exit',
      process: { process_id: p.process_id, exit_code: 5, state: 'exited' },
    });
  });

  it('an unknown id is exit 1 with the server’s message; Ctrl-C while following is 130', async () => {
    const t = io();
    expect(await main(['logs', 'proc-nope'], t.io)).toBe(1);
    expect(t.stderr.text).toContain('error: Process not found: proc-nope');

    const p = fake.add('x');
    const f = io();
    const code = main(['logs', '-f', p.process_id], f.io);
    await fake.streamsOpen(1, p.process_id);
    f.abort.abort();
    expect(await code).toBe(130);
  });
});

describe('trove kill', () => {
  it('reads signal names and numbers the way kill(1) users type them', () => {
    expect(parseSignal('TERM')).toBe('SIGTERM');
    expect(parseSignal('sigkill')).toBe('SIGKILL');
    expect(parseSignal('9')).toBe('SIGKILL');
    expect(parseSignal('SIGUSR1')).toBe('SIGUSR1');
    expect(parseSignal('19')).toBe('SIGSTOP');
    expect(() => parseSignal('SEGV')).toThrow(/not a signal the server sends/);
    expect(() => parseSignal('11')).toThrow(/not a signal the server sends/);
  });

  it('sends SIGTERM by default; an ended process is exit 1', async () => {
    const p = fake.add('sleep 1000');
    const t = io();
    expect(await main(['kill', p.process_id], t.io)).toBe(0);
    expect(JSON.parse(fake.requests(`/v1/processes/${p.process_id}/signal`).at(-1)!.body.toString())).toEqual({
      signal: 'SIGTERM',
    });
    expect(t.stderr.text).toBe(`sent SIGTERM to ${p.process_id}\n`);
    expect(t.stdout.text).toBe('');

    const again = io();
    expect(await main(['kill', '-s', 'KILL', p.process_id], again.io)).toBe(1);
    expect(again.stderr.text).toContain(`error: ${p.process_id} has already exited; no signal was sent`);
    const json = io();
    expect(await main(['kill', '--signal', '9', '--json', p.process_id], json.io)).toBe(1);
    expect(JSON.parse(json.stdout.text)).toEqual({ process_id: p.process_id, signal: 'SIGKILL', delivered: false });
    expect(json.stderr.text).toBe('');

    const bad = io();
    expect(await main(['kill', '-s', 'SEGV', p.process_id], bad.io)).toBe(1);
    expect(bad.stderr.text).toContain('hint: one of HUP, INT, QUIT, KILL, USR1, USR2, TERM, CONT, STOP');
  });
});

describe('trove attach', () => {
  it('shows output from now on, forwards piped stdin then closes it, and exits with the process’s code', async () => {
    const p = fake.add('cat');
    fake.write(p.process_id, 'stdout', 'old output\n');
    const t = io({ stdin: 'hello\nworld\n' });
    const code = main(['attach', p.process_id], t.io);
    await expect.poll(() => fake.processes.get(p.process_id)!.stdin_open, POLL).toBe(false);
    expect(fake.processes.get(p.process_id)!.stdin.toString()).toBe('hello\nworld\n');
    fake.write(p.process_id, 'stdout', 'new output\n');
    fake.exit(p.process_id, 7);
    expect(await code).toBe(7);
    expect(t.stdout.text).toBe('new output\n');
    expect(fake.requests(`/v1/processes/${p.process_id}/stream`)[0]!.url).toBe(
      `/v1/processes/${p.process_id}/stream?stdout_offset=11&stderr_offset=0`,
    );
  });

  it('forwards terminal input as it is typed; Ctrl-C detaches (130) and leaves the process running', async () => {
    const p = fake.add('sh');
    const t = io({ tty: true });
    const code = main(['attach', p.process_id], t.io);
    await fake.streamsOpen(1, p.process_id);
    expect(t.stderr.text).toContain(`attached to ${p.process_id}`);
    t.stdin.write('ls\n');
    await expect.poll(() => fake.processes.get(p.process_id)!.stdin.toString(), POLL).toBe('ls\n');
    t.stdin.write('pwd\n');
    await expect.poll(() => fake.processes.get(p.process_id)!.stdin.toString(), POLL).toBe('ls\npwd\n');
    fake.write(p.process_id, 'stdout', 'answer\n');
    await expect.poll(() => t.stdout.text, POLL).toBe('answer\n');
    t.abort.abort();
    expect(await code).toBe(130);
    expect(t.stderr.text).toContain(`detached; ${p.process_id} keeps running`);
    expect(fake.processes.get(p.process_id)!.state).toBe('running');
    expect(fake.processes.get(p.process_id)!.stdin_open).toBe(true);
  });

  it('--no-stdin forwards nothing; an ended process cannot be attached to', async () => {
    const p = fake.add('sleep 1');
    const t = io({ stdin: 'ignored' });
    const code = main(['attach', '--no-stdin', '--json', p.process_id], t.io);
    await fake.streamsOpen(1, p.process_id);
    fake.write(p.process_id, 'stderr', 'e');
    fake.exit(p.process_id, 0);
    expect(await code).toBe(0);
    expect(fake.processes.get(p.process_id)!.stdin.length).toBe(0);
    expect(fake.requests(`/v1/processes/${p.process_id}/stdin`)).toHaveLength(0);
    const out = lines(t.stdout.text);
    expect(out[0]).toEqual({ type: 'stderr', offset: 0, data: 'e', encoding: 'utf-8' });
    expect(out[1]).toMatchObject({ type: 'exit', process: { exit_code: 0 } });

    const late = io();
    expect(await main(['attach', p.process_id], late.io)).toBe(1);
    expect(late.stderr.text).toContain(`error: ${p.process_id} has ended (exited 0); there is nothing to attach to`);
    expect(late.stderr.text).toContain(`hint: \`trove logs ${p.process_id}\` shows its output`);
  });
});
