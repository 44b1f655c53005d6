/**
 * processes.* and exec.stream() against the real server and sandbox: live output, stdin,
 * signals, leaving a process and coming back to it (from offset 0 and with Last-Event-ID).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';
import {
  ConflictError,
  NotFoundError,
  TroveClient,
  type ExecStreamEvent,
  type OutputChunk,
  type ProcessStreamEvent,
} from '../src/index.js';

let server: StartedServer;
let trove: TroveClient;

beforeAll(async () => {
  server = await startServer({ env: { TROVE_EXEC_TIMEOUT_MS: '3000' } });
  trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'proc-sdk' });
});
afterAll(async () => {
  await server?.close();
});

const joined = (events: (ProcessStreamEvent | ExecStreamEvent)[], type: 'stdout' | 'stderr') =>
  events
    .filter((e): e is OutputChunk => e.type === type)
    .map((e) => e.text)
    .join('');

/** Every retained byte of a stream, read page by page from offset 0. */
async function readAll(id: string, stream: 'stdout' | 'stderr'): Promise<string> {
  let offset = 0;
  let out = '';
  for (;;) {
    const page = await trove.processes.output(id, { stream, offset, limit: 7 });
    expect(page.offset).toBe(offset);
    out += page.text;
    offset = page.nextOffset;
    if (page.eof) return out;
    if (page.data.length === 0) throw new Error('no progress before eof: the process is still running');
  }
}

describe('exec.stream (POST /v1/exec, text/event-stream)', () => {
  it('delivers each line when it is written, not when the command ends', async () => {
    const arrived: { text: string; at: number }[] = [];
    let exit: ExecStreamEvent | undefined;
    for await (const e of trove.exec.stream('echo a; sleep 1; echo b >&2; echo c; exit 5')) {
      if (e.type === 'exit') exit = e;
      else arrived.push({ text: `${e.type}:${e.text}`, at: Date.now() });
    }
    expect(arrived[0]!.text).toBe('stdout:a\n');
    expect(
      arrived
        .slice(1)
        .map((a) => a.text)
        .sort()
        .join(''),
    ).toBe('stderr:b\nstdout:c\n');
    // "a" came a second before what followed the sleep: it was sent as it was written.
    expect(arrived[1]!.at - arrived[0]!.at).toBeGreaterThanOrEqual(800);
    expect(exit).toEqual({
      type: 'exit',
      exitCode: 5,
      exitReason: 'exited',
      durationMs: expect.any(Number),
      stdoutTruncated: false,
      stderrTruncated: false,
    });
  });

  it('feeds stdin, keeps binary output exact, and ends a timeout with the exit event', async () => {
    const events: ExecStreamEvent[] = [];
    for await (const e of trove.exec.stream('cat; printf "\\377\\000\\376"', { stdin: 'piped\n' })) events.push(e);
    const bytes = Buffer.concat(
      events.filter((e): e is OutputChunk => e.type === 'stdout').map((e) => Buffer.from(e.data)),
    );
    expect([...bytes]).toEqual([...Buffer.from('piped\n'), 0xff, 0x00, 0xfe]);

    const timed: ExecStreamEvent[] = [];
    for await (const e of trove.exec.stream('echo started; sleep 30')) timed.push(e);
    expect(joined(timed, 'stdout')).toBe('started\n');
    expect(timed.at(-1)).toMatchObject({
      type: 'exit',
      exitCode: 124,
      exitReason: 'timeout',
      error: { code: 'exec_timeout', detail: expect.stringMatching(/timed out/) },
    });
  });

  it('leaves the JSON exec as it was, now with exitReason', async () => {
    expect(await trove.execDetailed('echo hi; exit 2')).toEqual({
      exitCode: 2,
      stdout: 'hi\n',
      stderr: '',
      durationMs: expect.any(Number),
      exitReason: 'exited',
    });
  });
});

describe('processes', () => {
  it('starts, takes stdin, streams live and exits; output stays readable from offset 0', async () => {
    const p = await trove.processes.start('echo ready; read line; echo "got $line"; echo warn >&2; exit 4');
    expect(p).toMatchObject({
      processId: expect.stringMatching(/^proc-/),
      namespace: 'proc-sdk',
      state: 'running',
      exitCode: null,
      stdinOpen: true,
    });
    const events: ProcessStreamEvent[] = [];
    for await (const e of trove.processes.stream(p.processId)) {
      events.push(e);
      if (e.type === 'stdout' && e.text.includes('ready')) {
        expect(await trove.processes.writeStdin(p.processId, 'hello\n')).toEqual({
          processId: p.processId,
          written: 6,
          stdinOpen: true,
        });
      }
    }
    expect(joined(events, 'stdout')).toBe('ready\ngot hello\n');
    expect(joined(events, 'stderr')).toBe('warn\n');
    const exit = events.at(-1)!;
    expect(exit.type).toBe('exit');
    expect(exit.type === 'exit' && exit.process).toMatchObject({
      processId: p.processId,
      state: 'exited',
      exitCode: 4,
      exitReason: 'exited',
      signal: null,
      stdoutBytes: 16,
      stderrBytes: 5,
      endedAt: expect.any(String),
    });
    expect(await trove.processes.wait(p.processId)).toMatchObject({ state: 'exited', exitCode: 4 });
    expect(await readAll(p.processId, 'stdout')).toBe('ready\ngot hello\n');
    expect(await readAll(p.processId, 'stderr')).toBe('warn\n');
    const err = await trove.processes.writeStdin(p.processId, 'late').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(await trove.processes.signal(p.processId, 'SIGTERM')).toEqual({
      processId: p.processId,
      signal: 'SIGTERM',
      delivered: false,
    });
  });

  it('survives the client leaving; rejoining with Last-Event-ID continues exactly after what was seen', async () => {
    // Each line waits for a line on stdin, so the test decides when output exists.
    const p = await trove.processes.start('i=0; while read x; do i=$((i+1)); echo "line $i"; done; echo done');
    const seen: OutputChunk[] = [];
    await trove.processes.writeStdin(p.processId, 'go\n');
    for await (const e of trove.processes.stream(p.processId)) {
      if (e.type === 'exit') throw new Error('exited early');
      seen.push(e);
      if (seen.map((c) => c.text).join('') === 'line 1\n') break;
    }
    // The id of the last delivered event is the stdout offset after it.
    const lastEventId = `${seen.reduce((n, c) => n + c.data.length, 0)}:0`;
    // Away: more output is produced while nobody is reading.
    await trove.processes.writeStdin(p.processId, 'a\nb\n', { close: true });
    expect(await trove.processes.wait(p.processId)).toMatchObject({ state: 'exited', exitCode: 0 });

    const rejoined: ProcessStreamEvent[] = [];
    for await (const e of trove.processes.stream(p.processId, { lastEventId })) rejoined.push(e);
    expect(joined(rejoined, 'stdout')).toBe('line 2\nline 3\ndone\n');
    expect((rejoined.find((e) => e.type === 'stdout') as OutputChunk).offset).toBe(7);
    expect(await readAll(p.processId, 'stdout')).toBe('line 1\nline 2\nline 3\ndone\n');
    const fromOffset: ProcessStreamEvent[] = [];
    for await (const e of trove.processes.stream(p.processId, { stdoutOffset: 14 })) fromOffset.push(e);
    expect(joined(fromOffset, 'stdout')).toBe('line 3\ndone\n');
  });

  it('signals the process group, lists and gets, and 404s unknown ids', async () => {
    const p = await trove.processes.start('sleep 300 & sleep 300; echo never');
    expect((await trove.processes.list({ state: 'running' })).map((x) => x.processId)).toContain(p.processId);
    expect(await trove.processes.signal(p.processId, 'SIGKILL')).toEqual({
      processId: p.processId,
      signal: 'SIGKILL',
      delivered: true,
    });
    const ended = await trove.processes.wait(p.processId);
    expect(ended).toMatchObject({ state: 'exited', exitReason: 'killed', signal: 'SIGKILL', stdoutBytes: 0 });
    expect(ended.exitCode).toBe(137);
    expect(await trove.processes.get(p.processId)).toEqual(ended);
    expect((await trove.processes.list({ state: 'exited' })).map((x) => x.processId)).toContain(p.processId);
    expect((await trove.processes.list({ state: 'running' })).map((x) => x.processId)).not.toContain(p.processId);

    const err = await trove.processes.get('proc-0123456789abcdef').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ status: 404, code: 'process_not_found' });
    // Another namespace's process is not found either.
    const other = await trove
      .withNamespace('proc-sdk-other')
      .processes.get(p.processId)
      .catch((e: unknown) => e);
    expect(other).toMatchObject({ status: 404, code: 'process_not_found' });
  });

  it('wait with maxWaitMs returns the process still running', async () => {
    const p = await trove.processes.start('sleep 300');
    const held = await trove.processes.wait(p.processId, { maxWaitMs: 1000 });
    expect(held).toMatchObject({ processId: p.processId, state: 'running', exitCode: null });
    await trove.processes.signal(p.processId, 'SIGKILL');
    expect((await trove.processes.wait(p.processId)).state).toBe('exited');
  });

  it('a process started with closeStdin and a wall-clock limit ends with exit reason timeout', async () => {
    const p = await trove.processes.start('cat; echo "eof seen"; sleep 300', {
      stdin: 'given\n',
      closeStdin: true,
      processTimeoutMs: 1500,
    });
    expect(p).toMatchObject({ stdinOpen: false, timeoutMs: 1500 });
    const ended = await trove.processes.wait(p.processId);
    expect(ended).toMatchObject({ state: 'exited', exitReason: 'timeout' });
    expect(await readAll(p.processId, 'stdout')).toBe('given\neof seen\n');
  });
});
