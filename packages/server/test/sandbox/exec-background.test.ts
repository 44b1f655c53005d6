/**
 * Background processes and live output at the runner level (SandboxRunner with
 * real bwrap): output written by the launcher into ring files as it comes,
 * stdin kept open, signals to every process of the sandbox, the exit reasons,
 * and live exec handing output over before the command ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../src/errors.js';
import type { ProcessRequest } from '../../src/sandbox/runner.js';
import { parseSegmentName, type StreamName } from '../../src/sandbox/ring-writer.js';
import {
  SKIP_REASON,
  bwrapPath,
  createFixture,
  marker,
  processesMentioning,
  waitFor,
  type Fixture,
} from './exec-fixture.js';

/** Three processes that each trap SIGTERM and say so (once trapping): a signal must reach every one of them. */
const TREE_SCRIPT =
  "trap 'echo main-term' TERM; " +
  "( trap 'echo child-term; exit 0' TERM; echo child-ready; while :; do sleep 0.05; done ) & " +
  'setsid sh -c \'trap "echo daemon-term; exit 0" TERM; echo daemon-ready; while :; do sleep 0.05; done\' & ' +
  'wait; wait; echo end';
const treeReady = (out: string) => out.includes('child-ready\n') && out.includes('daemon-ready\n');

/** The retained bytes of one stream, read straight from its segment files, and where they start. */
function ring(dir: string, stream: StreamName): { start: number; data: Buffer } {
  const starts = existsSync(dir)
    ? readdirSync(dir)
        .map((n) => parseSegmentName(stream, n))
        .filter((n): n is number => n !== null)
        .sort((a, b) => a - b)
    : [];
  const parts = starts.map((s) => readFileSync(join(dir, `${stream}.${String(s).padStart(16, '0')}`)));
  return { start: starts[0] ?? 0, data: Buffer.concat(parts) };
}

describe.skipIf(!bwrapPath)(`background processes in the runner${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  let out: string;
  let n = 0;
  beforeAll(async () => {
    f = await createFixture();
    out = mkdtempSync(join(tmpdir(), 'trove-proc-out-'));
  });
  afterAll(async () => {
    await f?.cleanup();
    rmSync(out, { recursive: true, force: true });
  });

  const start = (command: string, extra: Partial<ProcessRequest> = {}) => {
    const dir = join(out, `p${++n}`);
    const p = f.svc.startProcess({
      workspaceId: 'ws-test',
      namespace: 'a',
      nsRoot: f.nsA,
      command,
      sourceInit: false,
      timeoutMs: null,
      keepStdinOpen: true,
      output: { dir, capBytes: 1024 * 1024 },
      cpuSeconds: 0,
      ...extra,
    });
    return { dir, p };
  };

  it('writes stdout and stderr to the ring files as they come, and reports the exit with totals', async () => {
    const { dir, p } = start('echo one; echo err >&2; read line; echo "got $line"; exit 3');
    const proc = await p;
    expect(await waitFor(() => ring(dir, 'stdout').data.toString() === 'one\n')).toBe(true);
    expect(await waitFor(() => ring(dir, 'stderr').data.toString() === 'err\n')).toBe(true);
    expect(await proc.stdin(Buffer.from('hello\n'), false)).toEqual({ ok: true, written: 6, stdinOpen: true });
    const o = await proc.done;
    expect(o).toMatchObject({ exitCode: 3, exitReason: 'exited', timedOut: false, stopped: false, shutdown: false });
    expect(o.ring).toEqual({ stdoutBytes: 14, stderrBytes: 4, stdoutDropped: 0, stderrDropped: 0 });
    expect(ring(dir, 'stdout').data.toString()).toBe('one\ngot hello\n');
    expect(await proc.stdin(Buffer.from('late'), false)).toEqual({ ok: false, error: 'gone' });
  });

  it('closing stdin gives the command EOF', async () => {
    const { dir, p } = start('wc -c', { stdin: 'abc' });
    const proc = await p;
    expect(await proc.stdin(Buffer.from('de'), true)).toEqual({ ok: true, written: 2, stdinOpen: false });
    expect((await proc.done).exitCode).toBe(0);
    expect(ring(dir, 'stdout').data.toString().trim()).toBe('5');
  });

  it('keeps only the last cap bytes (in 1/16 steps), offsets never reused', async () => {
    const cap = 16 * 1024;
    const { dir, p } = start(`i=0; while [ $i -lt 2000 ]; do printf '%07d\\n' $i; i=$((i+1)); done`, {
      output: { dir: join(out, 'ring-cap'), capBytes: cap },
    });
    void dir;
    const o = await (await p).done;
    expect([o.exitCode, o.ring!.stdoutBytes, o.outputError]).toEqual([0, 16000, undefined]);
    const r = ring(join(out, 'ring-cap'), 'stdout');
    expect(r.start).toBe(o.ring!.stdoutDropped);
    expect(r.start + r.data.length).toBe(16000);
    expect(r.data.length).toBeLessThanOrEqual(cap);
    expect(r.data.length).toBeGreaterThan(cap - cap / 16);
    // Each 8-byte record sits at its own absolute offset.
    const firstRecord = Math.ceil(r.start / 8);
    const at = firstRecord * 8 - r.start;
    expect(r.data.subarray(at, at + 8).toString()).toBe(`${String(firstRecord).padStart(7, '0')}\n`);
  });

  it('a signal reaches every process of the sandbox (background jobs too); the exit says which', async () => {
    const m = marker();
    const { p } = start(`sleep ${m} & sleep ${m}1 & wait`);
    const proc = await p;
    expect(await waitFor(() => processesMentioning(`sleep ${m}`).length >= 2)).toBe(true);
    expect(await proc.signal('SIGTERM')).toEqual({ ok: true, delivered: true });
    const o = await proc.done;
    expect(o.exitCode).toBe(143);
    expect(o.exitReason).toBe('signaled');
    expect(processesMentioning(`sleep ${m}`)).toEqual([]);
  });

  it('a signal reaches each process: a background subshell and a setsid daemon trap it too', async () => {
    const { dir, p } = start(TREE_SCRIPT);
    const proc = await p;
    expect(await waitFor(() => treeReady(ring(dir, 'stdout').data.toString()))).toBe(true);
    expect((await proc.signal('SIGTERM')).delivered).toBe(true);
    const o = await proc.done;
    expect([o.exitCode, o.exitReason]).toEqual([0, 'exited']);
    const lines = ring(dir, 'stdout').data.toString().trim().split('\n');
    expect(lines.slice().sort()).toEqual([
      'child-ready',
      'child-term',
      'daemon-ready',
      'daemon-term',
      'end',
      'main-term',
    ]);
  });

  it('SIGSTOP and SIGCONT pause and resume; SIGKILL stops the whole tree', async () => {
    const { dir, p } = start('i=0; while :; do echo $i; i=$((i+1)); sleep 0.05; done');
    const proc = await p;
    expect(await waitFor(() => ring(dir, 'stdout').data.length > 0)).toBe(true);
    expect((await proc.signal('SIGSTOP')).delivered).toBe(true);
    // Stopped: once a write in flight has landed, nothing more arrives.
    await new Promise((r) => setTimeout(r, 200));
    const frozen = ring(dir, 'stdout').data.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(ring(dir, 'stdout').data.length).toBe(frozen);
    expect((await proc.signal('SIGCONT')).delivered).toBe(true);
    expect(await waitFor(() => ring(dir, 'stdout').data.length > frozen)).toBe(true);
    expect((await proc.signal('SIGKILL')).delivered).toBe(true);
    const o = await proc.done;
    expect(o).toMatchObject({ stopped: true, exitCode: 137 });
    expect(await proc.signal('SIGTERM')).toEqual({ ok: false, error: 'gone' });
  });

  it('a wall clock, when given, ends it with exit 124 (timeout)', async () => {
    const { p } = start('sleep 30', { timeoutMs: 300 });
    const o = await (await p).done;
    expect(o).toMatchObject({ exitCode: 124, exitReason: 'timeout', timedOut: true });
  });

  it('stop() kills it at once', async () => {
    const m = marker();
    const { p } = start(`sleep ${m}`);
    const proc = await p;
    proc.stop();
    expect((await proc.done).stopped).toBe(true);
    expect(processesMentioning(`sleep ${m}`)).toEqual([]);
  });

  it('a process that never reads stdin is refused more than 1 MiB of queued input, not buffered without end', async () => {
    const { p } = start('sleep 30');
    const proc = await p;
    const chunk = Buffer.alloc(512 * 1024, 0x61);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await proc.stdin(chunk, false));
    expect(results.at(-1)).toEqual({ ok: false, error: 'full', stdinOpen: true });
    proc.stop();
    await proc.done;
  });

  it('environment variables are added; the sandbox identity cannot be overridden', async () => {
    const { dir, p } = start('echo "$FOO $TROVE_NAMESPACE"', { env: { FOO: 'bar baz', TROVE_NAMESPACE: 'other' } });
    await (
      await p
    ).done;
    expect(ring(dir, 'stdout').data.toString()).toBe('bar baz a\n');
  });

  it('variables are exported by the sandbox shell, quoted: nothing in a value runs, and nothing privileged sees them', async () => {
    const tricky = 'it\'s $(echo no) `echo no` "q"\nline2';
    const { dir, p } = start('printf "%s|%s" "$TRICKY" "$PATH"; true', {
      env: { TRICKY: tricky, PATH: '/bin:/usr/bin', LD_PRELOAD: '/nonexistent-trove-test.so' },
    });
    const o = await (await p).done;
    expect(o.exitCode).toBe(0);
    expect(ring(dir, 'stdout').data.toString()).toBe(`${tricky}|/bin:/usr/bin`);
    // Given to bwrap or trove-enter, LD_PRELOAD would reach a root process or the shell at its start: the loader would complain.
    expect(ring(dir, 'stderr').data.toString()).toBe('');
  });

  it('server shutdown kills running processes (shutdown outcome)', async () => {
    const m = marker();
    const { p } = start(`sleep ${m}`);
    const proc = await p;
    await f.svc.close();
    const o = await proc.done;
    expect(o.shutdown).toBe(true);
    expect(processesMentioning(`sleep ${m}`)).toEqual([]);
    const err = await start('true').p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('sandbox_unavailable');
    f = await createFixture();
  });
});

describe.skipIf(!bwrapPath)(`live exec in the runner${bwrapPath ? '' : ` (${SKIP_REASON})`}`, () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await createFixture({ maxOutputBytes: 64 * 1024 });
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it('hands output over while the command still runs', async () => {
    const got: string[] = [];
    let firstSeenBeforeFile: boolean | null = null;
    const flag = join(f.nsA, `flag-${marker()}`);
    const name = flag.slice(f.nsA.length + 1);
    const result = await f.svc.run(
      {
        workspaceId: 'ws-test',
        namespace: 'a',
        nsRoot: f.nsA,
        command: `echo a; sleep 1; touch workspace/${name}; echo b`,
        sourceInit: false,
      },
      {
        ready: () => {},
        output: (stream, data) => {
          if (got.length === 0) firstSeenBeforeFile = !existsSync(flag);
          got.push(`${stream}:${data.toString()}`);
        },
      },
    );
    expect(firstSeenBeforeFile).toBe(true);
    expect(got.join('')).toBe('stdout:a\nstdout:b\n');
    expect(result).toMatchObject({ exitCode: 0, exitReason: 'exited', stdoutTruncated: false });
  });

  it('passes on at most maxOutputBytes per stream and says it truncated; a slow consumer holds the command', async () => {
    let bytes = 0;
    let slow = 0;
    const result = await f.svc.run(
      { workspaceId: 'ws-test', namespace: 'a', nsRoot: f.nsA, command: 'head -c 300000 /dev/zero', sourceInit: false },
      {
        ready: () => {},
        output: async (_s, data) => {
          bytes += data.length;
          if (slow++ < 3) await new Promise((r) => setTimeout(r, 50));
        },
      },
    );
    expect(bytes).toBe(64 * 1024);
    expect(result.stdoutTruncated).toBe(true);
  });

  it('a consumer that stops reading does not keep a timed-out command alive', async () => {
    const result = await f.svc.run(
      {
        workspaceId: 'ws-test',
        namespace: 'a',
        nsRoot: f.nsA,
        command: 'while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxx; done',
        sourceInit: false,
        timeoutMs: 500,
      },
      { ready: () => {}, output: () => new Promise<void>(() => {}) },
    );
    expect(result).toMatchObject({ exitCode: 124, timedOut: true, exitReason: 'timeout' });
  });
});
