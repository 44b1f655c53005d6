/**
 * The dashboard's stream readers without a browser: SSE parsing with event names and ids, output
 * decoding, live exec (and the JSON fallback) and following a process across a dropped connection,
 * against the SDK's scripted fake of the processes API (only the origin differs from the app's).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TroveApi } from '../src/api/client.js';
import { OutputDecoder, segments, type ExecStreamEvent, type ProcessStreamEvent } from '../src/api/output.js';
import { readSse, type SseMessage } from '../src/api/sse.js';
import { startFakeServer, type FakeServer } from '../../sdk/test/helpers/fake-processes.js';

let fake: FakeServer;
let realFetch: typeof fetch;

beforeAll(async () => {
  fake = await startFakeServer();
  realFetch = globalThis.fetch;
  // The app fetches same-origin paths; send them to the fake.
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) =>
    realFetch(typeof input === 'string' && input.startsWith('/') ? fake.url + input : input, init)) as typeof fetch;
});
afterAll(async () => {
  globalThis.fetch = realFetch;
  await fake?.close();
});

function bodyOf(chunks: string[]): ReadableStream<Uint8Array<ArrayBuffer>> {
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(new TextEncoder().encode(ch));
      c.close();
    },
  });
}

describe('readSse', () => {
  it('reads event names, data and ids split anywhere, with any line ending, skipping comments', async () => {
    const got: SseMessage[] = [];
    await readSse(
      bodyOf([': heartbeat\r', '\n\r\nevent: std', 'out\ndata: {"a":', '1}\nid: 5:0\r', '\n\r\ndata: plain\rdata: two\r\r', 'event: exit\ndata: {}\n\n']),
      (m) => got.push(m),
    );
    expect(got).toEqual([
      { event: 'stdout', data: '{"a":1}', id: '5:0' },
      { event: 'message', data: 'plain\ntwo', id: undefined },
      { event: 'exit', data: '{}', id: undefined },
    ]);
  });
});

describe('OutputDecoder and segments', () => {
  it('completes a split character in the next chunk and decodes base64', () => {
    const d = new OutputDecoder();
    const euro = new TextEncoder().encode('€');
    const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
    const a = d.chunk('stdout', { offset: 0, data: b64(new Uint8Array([0x61, euro[0]!, euro[1]!])), encoding: 'base64' });
    const b = d.chunk('stdout', { offset: 3, data: b64(new Uint8Array([euro[2]!, 0x62])), encoding: 'base64' });
    const e = d.chunk('stderr', { offset: 0, data: 'err', encoding: 'utf-8' });
    expect([a.text, b.text, e.text]).toEqual(['a', '€b', 'err']);
    expect([a.bytes, b.bytes]).toEqual([3, 2]);
    expect(segments([a, b, e, { type: 'stdout', offset: 5, bytes: 0, text: '' }])).toEqual([
      { type: 'stdout', text: 'a€b' },
      { type: 'stderr', text: 'err' },
    ]);
  });
});

describe('TroveApi.execStream', () => {
  const api = new TroveApi('trove-sk-x');

  it('reports chunks as they come and the exit with a timeout error attached', async () => {
    fake.execScript = [
      { stream: 'stdout', data: 'partial\n' },
      { exit: 124, reason: 'timeout', durationMs: 30_000 },
      { error: { detail: 'Command timed out after 30s.', code: 'exec_timeout' } },
    ];
    const events: ExecStreamEvent[] = [];
    await api.execStream('ns', 'sleep 100', 'in', new AbortController().signal, (e) => events.push(e));
    expect(events).toEqual([
      { type: 'stdout', offset: 0, bytes: 8, text: 'partial\n' },
      {
        type: 'exit',
        exit_code: 124,
        exit_reason: 'timeout',
        duration_ms: 30_000,
        error: { detail: 'Command timed out after 30s.', code: 'exec_timeout' },
      },
    ]);
    const req = fake.requests('/v1/exec').at(-1)!;
    expect(req.headers.accept).toBe('text/event-stream');
    expect(req.headers['x-namespace']).toBe('ns');
    expect(JSON.parse(req.body.toString())).toEqual({ command: 'sleep 100', stdin: 'in', stream: true });
  });

  it('turns a JSON answer into the same events, and a cut stream into an error', async () => {
    fake.execScript = null;
    fake.execJson = { exit_code: 2, stdout: 'o', stderr: 'e', duration_ms: 3, exit_reason: 'exited' };
    const events: ExecStreamEvent[] = [];
    await api.execStream('ns', 'x', undefined, new AbortController().signal, (e) => events.push(e));
    expect(events.map((e) => (e.type === 'exit' ? `exit ${e.exit_code}` : `${e.type}:${e.text}`))).toEqual(['stdout:o', 'stderr:e', 'exit 2']);

    fake.execScript = [{ stream: 'stdout', data: 'half' }];
    await expect(api.execStream('ns', 'x', undefined, new AbortController().signal, () => {})).rejects.toThrow(/lost before the command ended/);
  });
});

describe('TroveApi.followProcess', () => {
  it('resumes with Last-Event-ID after a dropped connection, every byte once', async () => {
    const api = new TroveApi('trove-sk-x');
    const p = fake.add('x');
    fake.write(p.process_id, 'stdout', 'a\n');
    fake.write(p.process_id, 'stderr', 'b\n');
    fake.cutStreamsAfter = 1;
    const events: ProcessStreamEvent[] = [];
    const done = api.followProcess('ns', p.process_id, new AbortController().signal, (e) => {
      events.push(e);
      if (events.length === 2) {
        fake.write(p.process_id, 'stdout', 'c\n');
        fake.exit(p.process_id, 0);
      }
    });
    await done;
    fake.cutStreamsAfter = null;
    expect(events.map((e) => (e.type === 'exit' ? `exit ${e.process.exit_code}` : `${e.type}@${e.offset}:${e.text}`))).toEqual([
      'stdout@0:a\n',
      'stderr@0:b\n',
      'stdout@2:c\n',
      'exit 0',
    ]);
    const ids = fake.requests(`/v1/processes/${p.process_id}/stream`).map((r) => r.headers['last-event-id']);
    expect(ids.slice(0, 3)).toEqual([undefined, '2:0', '2:2']);
  });

  it('a 404 is final', async () => {
    const api = new TroveApi('trove-sk-x');
    await expect(api.followProcess('ns', 'proc-nope', new AbortController().signal, () => {})).rejects.toMatchObject({
      status: 404,
      code: 'process_not_found',
    });
    expect(fake.requests('/v1/processes/proc-nope/stream')).toHaveLength(1);
  });
});
