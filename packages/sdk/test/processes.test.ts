/**
 * processes.* and exec.stream() against a scripted fake of the wire API (helpers/fake-processes.ts):
 * request shapes, decoding, and the cases a real sandbox cannot produce on cue (a stream cut
 * mid-way, a character split across chunks, a server without live exec). processes-e2e.test.ts
 * runs the same calls against the real server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  APIConnectionError,
  APIUserAbortError,
  ConflictError,
  NotFoundError,
  RateLimitError,
  TroveClient,
  type ExecStreamEvent,
  type OutputChunk,
  type ProcessStreamEvent,
} from '../src/index.js';
import { startFakeServer, type FakeServer } from './helpers/fake-processes.js';

/** Conditions are waited for, never slept on; the limit only bounds a failure. */
const POLL = { timeout: 20_000, interval: 10 };
let fake: FakeServer;
let trove: TroveClient;

beforeAll(async () => {
  fake = await startFakeServer();
  trove = new TroveClient({ apiKey: 'trove-sk-test', baseUrl: fake.url, namespace: 'ns', maxRetries: 0 });
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  fake.cutStreamsAfter = null;
  fake.execScript = null;
  fake.busy = false;
});

async function collect<T>(iter: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iter) out.push(x);
  return out;
}

const text = (events: ProcessStreamEvent[] | ExecStreamEvent[], type: 'stdout' | 'stderr') =>
  (events as { type: string; text?: string }[])
    .filter((e) => e.type === type)
    .map((e) => e.text)
    .join('');

describe('processes.start / list / get', () => {
  it('sends the wire body and returns the camelCased process', async () => {
    const p = await trove.processes.start('sleep 100', {
      stdin: 'hello',
      closeStdin: true,
      processTimeoutMs: 60_000,
      env: { MY_VAR: 'x', lower_case: 'y' },
    });
    const req = fake.requests('/v1/processes').at(-1)!;
    expect(req.method).toBe('POST');
    expect(req.headers['x-namespace']).toBe('ns');
    expect(JSON.parse(req.body.toString())).toEqual({
      command: 'sleep 100',
      stdin: 'hello',
      close_stdin: true,
      timeout_ms: 60_000,
      env: { MY_VAR: 'x', lower_case: 'y' },
    });
    expect(p).toEqual({
      processId: expect.stringMatching(/^proc-/),
      namespace: 'ns',
      command: 'sleep 100',
      commandBytes: 9,
      commandTruncated: false,
      state: 'running',
      exitCode: null,
      exitReason: null,
      signal: null,
      startedAt: expect.any(String),
      endedAt: null,
      timeoutMs: 60_000,
      stdinOpen: false,
      stdoutBytes: 0,
      stderrBytes: 0,
      stdoutDroppedBytes: 0,
      stderrDroppedBytes: 0,
    });
    expect(fake.processes.get(p.processId)!.stdin.toString()).toBe('hello');
    // Only what was given is sent.
    await trove.processes.start('true');
    expect(JSON.parse(fake.requests('/v1/processes').at(-1)!.body.toString())).toEqual({ command: 'true' });
  });

  it('refuses an empty command before sending anything, and surfaces 429 exec_busy', async () => {
    const before = fake.peer.requests.length;
    await expect(trove.processes.start('  ')).rejects.toThrow(TypeError);
    await expect(trove.processes.get('')).rejects.toThrow(TypeError);
    expect(fake.peer.requests.length).toBe(before);
    fake.busy = true;
    const err = await trove.processes.start('true').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err).toMatchObject({ status: 429, code: 'exec_busy' });
  });

  it('lists newest first with the filters as query, gets one, and maps 404', async () => {
    const a = await trove.processes.start('a');
    const b = await trove.processes.start('b');
    fake.exit(a.processId, 0);
    const running = await trove.processes.list({ state: 'running', limit: 50 });
    expect(fake.requests('/v1/processes?').at(-1)!.url).toBe('/v1/processes?state=running&limit=50');
    expect(running.map((p) => p.processId)).toContain(b.processId);
    expect(running.map((p) => p.processId)).not.toContain(a.processId);
    const all = await trove.processes.list();
    expect(all.findIndex((p) => p.processId === b.processId)).toBeLessThan(
      all.findIndex((p) => p.processId === a.processId),
    );
    expect(await trove.processes.get(a.processId)).toMatchObject({
      processId: a.processId,
      state: 'exited',
      exitCode: 0,
      exitReason: 'exited',
    });
    const err = await trove.processes.get('proc-nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ status: 404, code: 'process_not_found' });
  });
});

describe('processes.output', () => {
  it('decodes text and base64 slices, and reports dropped bytes', async () => {
    const p = fake.add('x');
    fake.write(p.process_id, 'stdout', 'héllo wörld');
    fake.write(p.process_id, 'stderr', Buffer.from([0xff, 0x00, 0x80, 0x41]));
    const out = await trove.processes.output(p.process_id, { offset: 1, limit: 5 });
    expect(fake.requests(`/v1/processes/${p.process_id}/output`).at(-1)!.url).toBe(
      `/v1/processes/${p.process_id}/output?stream=stdout&offset=1&limit=5`,
    );
    expect(out).toEqual({
      processId: p.process_id,
      stream: 'stdout',
      offset: 1,
      nextOffset: 6,
      data: new Uint8Array(Buffer.from('héllo wörld').subarray(1, 6)),
      text: 'éllo',
      droppedBytes: 0,
      eof: false,
    });
    const err = await trove.processes.output(p.process_id, { stream: 'stderr' });
    expect(Array.from(err.data)).toEqual([0xff, 0x00, 0x80, 0x41]);
    expect(err.text).toBe('\ufffd\u0000\ufffdA');

    fake.drop(p.process_id, 'stdout', 3);
    fake.exit(p.process_id, 0);
    const rest = await trove.processes.output(p.process_id);
    expect(rest).toMatchObject({
      offset: 3,
      droppedBytes: 3,
      eof: true,
      text: 'llo wörld',
      nextOffset: Buffer.byteLength('héllo wörld'),
    });
  });
});

describe('processes.writeStdin / closeStdin / signal', () => {
  it('sends text as JSON and bytes exactly, closes, and maps 409', async () => {
    const p = fake.add('cat');
    expect(await trove.processes.writeStdin(p.process_id, 'line 1\n')).toEqual({
      processId: p.process_id,
      written: 7,
      stdinOpen: true,
    });
    expect(fake.requests(`/v1/processes/${p.process_id}/stdin`).at(-1)!.headers['content-type']).toBe(
      'application/json',
    );
    const bytes = new Uint8Array([0, 1, 2, 0xfe, 0xff]);
    expect(await trove.processes.writeStdin(p.process_id, bytes)).toEqual({
      processId: p.process_id,
      written: 5,
      stdinOpen: true,
    });
    const raw = fake.requests(`/v1/processes/${p.process_id}/stdin`).at(-1)!;
    expect(raw.headers['content-type']).toBe('application/octet-stream');
    expect(Array.from(raw.body)).toEqual([0, 1, 2, 0xfe, 0xff]);
    // Bytes and close: two requests, the second being the close.
    expect(await trove.processes.writeStdin(p.process_id, new Uint8Array([65]), { close: true })).toEqual({
      processId: p.process_id,
      written: 1,
      stdinOpen: false,
    });
    expect(
      fake
        .requests(`/v1/processes/${p.process_id}/stdin`)
        .slice(-2)
        .map((r) => r.url),
    ).toEqual([`/v1/processes/${p.process_id}/stdin`, `/v1/processes/${p.process_id}/stdin/close`]);
    expect(Array.from(fake.processes.get(p.process_id)!.stdin)).toEqual([
      ...Buffer.from('line 1\n'),
      0,
      1,
      2,
      0xfe,
      0xff,
      65,
    ]);
    const err = await trove.processes.writeStdin(p.process_id, 'late').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ status: 409, code: 'conflict' });

    const q = fake.add('cat');
    expect(await trove.processes.writeStdin(q.process_id, 'bye', { close: true })).toEqual({
      processId: q.process_id,
      written: 3,
      stdinOpen: false,
    });
    expect(JSON.parse(fake.requests(`/v1/processes/${q.process_id}/stdin`).at(-1)!.body.toString())).toEqual({
      data: 'bye',
      close: true,
    });
    expect(await trove.processes.closeStdin(q.process_id)).toEqual({ processId: q.process_id, stdinOpen: false });
  });

  it('signals SIGTERM by default and reports an exited process as not delivered', async () => {
    const p = fake.add('sleep 1000');
    expect(await trove.processes.signal(p.process_id)).toEqual({
      processId: p.process_id,
      signal: 'SIGTERM',
      delivered: true,
    });
    expect(JSON.parse(fake.requests(`/v1/processes/${p.process_id}/signal`).at(-1)!.body.toString())).toEqual({
      signal: 'SIGTERM',
    });
    expect(await trove.processes.signal(p.process_id, 'SIGKILL')).toEqual({
      processId: p.process_id,
      signal: 'SIGKILL',
      delivered: false,
    });
  });
});

describe('processes.wait', () => {
  it('long-polls until the process exits', async () => {
    const p = fake.add('sleep 1');
    const waiting = trove.processes.wait(p.process_id);
    // Exit only once the wait request is being held.
    await expect.poll(() => fake.requests(`/v1/processes/${p.process_id}/wait`).length, POLL).toBe(1);
    fake.exit(p.process_id, 3);
    expect(await waiting).toMatchObject({ state: 'exited', exitCode: 3 });
    expect(fake.requests(`/v1/processes/${p.process_id}/wait`)[0]!.url).toBe(
      `/v1/processes/${p.process_id}/wait?timeout=60`,
    );
  });

  it('with maxWaitMs, asks the server for no more than that and returns the running process', async () => {
    const p = fake.add('sleep 1000');
    const started = Date.now();
    expect(await trove.processes.wait(p.process_id, { maxWaitMs: 1000 })).toMatchObject({
      state: 'running',
      exitCode: null,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(fake.requests(`/v1/processes/${p.process_id}/wait`).map((r) => r.url)).toEqual([
      `/v1/processes/${p.process_id}/wait?timeout=1`,
    ]);
    expect((await trove.processes.wait(p.process_id, { maxWaitMs: 0 })).state).toBe('running');
    expect(fake.requests(`/v1/processes/${p.process_id}/wait`).at(-1)!.url).toBe(
      `/v1/processes/${p.process_id}/wait?timeout=0`,
    );
  });
});

describe('processes.stream', () => {
  it('yields both streams live, then the exit with the ended process', async () => {
    const p = fake.add('x');
    fake.write(p.process_id, 'stdout', 'before\n');
    const events: ProcessStreamEvent[] = [];
    const done = (async () => {
      for await (const e of trove.processes.stream(p.process_id)) {
        events.push(e);
        if (e.type === 'stdout' && e.text === 'before\n') {
          fake.write(p.process_id, 'stderr', 'warn\n');
          fake.write(p.process_id, 'stdout', 'after\n');
          fake.exit(p.process_id, 2);
        }
      }
    })();
    await done;
    expect(
      events.map((e) => (e.type === 'exit' ? `exit ${e.process.exitCode}` : `${e.type}@${e.offset} ${e.text}`)),
    ).toEqual(['stdout@0 before\n', 'stderr@0 warn\n', 'stdout@7 after\n', 'exit 2']);
    const exit = events.at(-1)!;
    expect(exit.type === 'exit' && exit.process).toMatchObject({
      processId: p.process_id,
      state: 'exited',
      exitReason: 'exited',
      stdoutBytes: 13,
    });
    const req = fake.requests(`/v1/processes/${p.process_id}/stream`)[0]!;
    expect(req.url).toBe(`/v1/processes/${p.process_id}/stream?stdout_offset=0&stderr_offset=0`);
    expect(req.headers.accept).toBe('text/event-stream');
    expect(req.headers['last-event-id']).toBeUndefined();
  });

  it('resumes a cut connection with Last-Event-ID: every byte once, in order', async () => {
    const p = fake.add('x');
    for (let i = 0; i < 5; i++) fake.write(p.process_id, 'stdout', `line ${i}\n`);
    fake.write(p.process_id, 'stderr', 'err 0\n');
    // Each connection delivers one event and is then cut.
    fake.cutStreamsAfter = 1;
    const events: ProcessStreamEvent[] = [];
    let exited = false;
    for await (const e of trove.processes.stream(p.process_id)) {
      events.push(e);
      const chunks = events.filter((x) => x.type !== 'exit').length;
      if (chunks === 2) {
        fake.write(p.process_id, 'stdout', 'line 5\n');
        fake.write(p.process_id, 'stderr', 'err 1\n');
      }
      if (chunks === 4 && !exited) {
        exited = true;
        fake.exit(p.process_id, 0);
      }
    }
    expect(text(events, 'stdout')).toBe('line 0\nline 1\nline 2\nline 3\nline 4\nline 5\n');
    expect(text(events, 'stderr')).toBe('err 0\nerr 1\n');
    expect(events.at(-1)!.type).toBe('exit');
    const reqs = fake.requests(`/v1/processes/${p.process_id}/stream`);
    expect(reqs.length).toBeGreaterThanOrEqual(4);
    expect(reqs[0]!.headers['last-event-id']).toBeUndefined();
    // Each reconnection names exactly what was delivered before it.
    const sentIds = reqs.slice(1).map((r) => r.headers['last-event-id']);
    expect(sentIds[0]).toBe('35:0');
    expect(sentIds[1]).toBe('35:6');
    expect(sentIds.every((id) => typeof id === 'string' && /^\d+:\d+$/.test(id))).toBe(true);
  });

  it('starts at the given offsets or event id', async () => {
    const p = fake.add('x');
    fake.write(p.process_id, 'stdout', 'abcdef');
    fake.write(p.process_id, 'stderr', 'uvwxyz');
    fake.exit(p.process_id, 0);
    const fromOffsets = await collect(trove.processes.stream(p.process_id, { stdoutOffset: 4, stderrOffset: 6 }));
    expect(fromOffsets.map((e) => (e.type === 'exit' ? 'exit' : `${e.type}@${e.offset}:${e.text}`))).toEqual([
      'stdout@4:ef',
      'exit',
    ]);
    const fromId = await collect(trove.processes.stream(p.process_id, { lastEventId: '6:3' }));
    expect(fromId.map((e) => (e.type === 'exit' ? 'exit' : `${e.type}@${e.offset}:${e.text}`))).toEqual([
      'stderr@3:xyz',
      'exit',
    ]);
    const req = fake.requests(`/v1/processes/${p.process_id}/stream`).at(-1)!;
    expect(req.headers['last-event-id']).toBe('6:3');
    expect(req.url).toBe(`/v1/processes/${p.process_id}/stream`);
  });

  it('completes a character split across chunks in the chunk where it ends', async () => {
    const p = fake.add('x');
    const euro = Buffer.from('€'); // e2 82 ac
    const seen: OutputChunk[] = [];
    const reading = (async () => {
      for await (const e of trove.processes.stream(p.process_id)) {
        if (e.type === 'exit') return;
        seen.push(e);
        if (seen.length === 1) {
          fake.write(p.process_id, 'stdout', Buffer.concat([euro.subarray(2), Buffer.from('b')]));
          fake.exit(p.process_id, 0);
        }
      }
    })();
    await fake.streamsOpen(1, p.process_id);
    fake.write(p.process_id, 'stdout', Buffer.concat([Buffer.from('a'), euro.subarray(0, 2)]));
    await reading;
    expect(seen.map((c) => [c.offset, c.data.length, c.text])).toEqual([
      [0, 3, 'a'],
      [3, 2, '€b'],
    ]);
  });

  it('gives up after maxReconnects attempts that receive nothing, and does not retry answers', async () => {
    const p = fake.add('x');
    fake.write(p.process_id, 'stdout', 'data');
    fake.cutStreamsAfter = 0;
    const err = await collect(trove.processes.stream(p.process_id, { maxReconnects: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionError);
    expect(fake.requests(`/v1/processes/${p.process_id}/stream`)).toHaveLength(3);

    const before = fake.requests('/v1/processes/proc-gone/stream').length;
    const notFound = await collect(trove.processes.stream('proc-gone')).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(NotFoundError);
    expect(fake.requests('/v1/processes/proc-gone/stream').length - before).toBe(1);
  });

  it('stops on abort with APIUserAbortError, and breaking out closes the connection', async () => {
    const p = fake.add('x');
    fake.write(p.process_id, 'stdout', 'first');
    const controller = new AbortController();
    const err = await (async () => {
      for await (const e of trove.processes.stream(p.process_id, { signal: controller.signal })) {
        if (e.type === 'stdout') controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIUserAbortError);

    for await (const e of trove.processes.stream(p.process_id)) {
      expect(e).toMatchObject({ type: 'stdout', text: 'first' });
      break;
    }
    // The server sees both connections go away; the process is untouched.
    await fake.streamsOpen(0, p.process_id);
    await expect.poll(async () => (await trove.processes.get(p.process_id)).state, POLL).toBe('running');
  });
});

describe('exec.stream', () => {
  it('yields chunks as they are produced, then the exit', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fake.execScript = [
      { stream: 'stdout', data: 'a\n' },
      { waitFor: gate },
      { stream: 'stderr', data: 'oops\n' },
      { stream: 'stdout', data: 'b\n' },
      { exit: 3, durationMs: 42 },
    ];
    const events: ExecStreamEvent[] = [];
    for await (const e of trove.exec.stream('echo a; sleep 1; echo b', { stdin: 'in' })) {
      events.push(e);
      // The first chunk arrives while the command is still held: it was not buffered to the end.
      if (events.length === 1) release();
    }
    expect(events).toEqual([
      { type: 'stdout', offset: 0, data: new TextEncoder().encode('a\n'), text: 'a\n' },
      { type: 'stderr', offset: 0, data: new TextEncoder().encode('oops\n'), text: 'oops\n' },
      { type: 'stdout', offset: 2, data: new TextEncoder().encode('b\n'), text: 'b\n' },
      { type: 'exit', exitCode: 3, exitReason: 'exited', durationMs: 42 },
    ]);
    const req = fake.requests('/v1/exec').at(-1)!;
    expect(req.headers.accept).toBe('text/event-stream');
    expect(JSON.parse(req.body.toString())).toEqual({ command: 'echo a; sleep 1; echo b', stdin: 'in', stream: true });
  });

  it('reports a timeout as the exit event with the error, not as an exception', async () => {
    fake.execScript = [
      { stream: 'stdout', data: 'partial' },
      { exit: 124, reason: 'timeout', durationMs: 30_000 },
      { error: { detail: 'Command timed out after 30s.', code: 'exec_timeout' } },
    ];
    const events = await collect(trove.exec.stream('sleep 100'));
    expect(events.at(-1)).toEqual({
      type: 'exit',
      exitCode: 124,
      exitReason: 'timeout',
      durationMs: 30_000,
      error: { detail: 'Command timed out after 30s.', code: 'exec_timeout' },
    });
  });

  it('skips heartbeats and unknown events; a stream cut before the exit is a connection error', async () => {
    fake.execScript = [
      { raw: ': heartbeat\n\n' },
      { raw: 'event: progress\ndata: {"x":1}\n\n' },
      { stream: 'stdout', data: Buffer.from([0xff, 0xfe]) },
      { exit: 0 },
    ];
    const events = await collect(trove.exec.stream('x'));
    expect(events[0]).toMatchObject({
      type: 'stdout',
      offset: 0,
      data: new Uint8Array([0xff, 0xfe]),
      text: '\ufffd\ufffd',
    });
    expect(events.map((e) => e.type)).toEqual(['stdout', 'exit']);

    fake.execScript = [{ stream: 'stdout', data: 'half' }];
    const got: ExecStreamEvent[] = [];
    const err = await (async () => {
      for await (const e of trove.exec.stream('x')) got.push(e);
    })().catch((e: unknown) => e);
    expect(got.map((e) => e.type)).toEqual(['stdout']);
    expect(err).toBeInstanceOf(APIConnectionError);
    expect((err as Error).message).toMatch(/ended before the command did/);
  });

  it('turns the JSON answer of a server without live exec into the same events', async () => {
    fake.execScript = null;
    fake.execJson = { exit_code: 1, stdout: 'out', stderr: 'err', duration_ms: 7, exit_reason: 'exited' };
    expect(await collect(trove.exec.stream('x'))).toEqual([
      { type: 'stdout', offset: 0, data: new TextEncoder().encode('out'), text: 'out' },
      { type: 'stderr', offset: 0, data: new TextEncoder().encode('err'), text: 'err' },
      { type: 'exit', exitCode: 1, exitReason: 'exited', durationMs: 7 },
    ]);
  });

  it('validates the command before sending, and exec() itself is unchanged', async () => {
    const before = fake.requests('/v1/exec').length;
    await expect(collect(trove.exec.stream(''))).rejects.toThrow(TypeError);
    expect(fake.requests('/v1/exec').length).toBe(before);
    fake.execJson = { exit_code: 0, stdout: 'plain', stderr: '', duration_ms: 1, exit_reason: 'exited' };
    expect(await trove.exec('echo plain')).toBe('plain');
    const req = fake.requests('/v1/exec').at(-1)!;
    expect(req.headers.accept).toBe('application/json');
    expect(JSON.parse(req.body.toString())).toEqual({ command: 'echo plain' });
    expect(await trove.execDetailed('echo plain')).toEqual({
      exitCode: 0,
      stdout: 'plain',
      stderr: '',
      durationMs: 1,
      exitReason: 'exited',
    });
  });
});
