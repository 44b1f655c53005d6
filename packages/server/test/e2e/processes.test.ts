/**
 * Background processes over real HTTP with real bwrap, where a socket or a process matters: a live stream its
 * client leaves and rejoins with Last-Event-ID, live one-shot exec, a slow reader and a server restart.
 * The API itself (start, stdin, signals, wait, output, limits, refusals): test/routes/processes.test.ts.
 *
 * Ordering, never timing: a command that must still be running when something is observed waits for a
 * file the test writes through the files API after observing it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import {
  decodeOutput,
  errorOf,
  json,
  ok,
  readProcessOutput,
  type ProcessOutput as Output,
} from '../../../../test/helpers/http.js';
import type { ProcessView as Proc } from '../../src/processes/service.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const SKIP = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

interface SseEvent {
  event: string;
  id?: string;
  data: unknown;
}

type Rt = ReturnType<typeof api>;

/** Reads Server-Sent Events from a response body as they arrive. */
async function* sse(res: Response): AsyncGenerator<SseEvent> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev: { event: string; id?: string; data: string } = { event: 'message', data: '' };
      let comment = true;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        comment = false;
        const [k, ...rest] = line.split(':');
        const v = rest.join(':').replace(/^ /, '');
        if (k === 'event') ev.event = v;
        else if (k === 'id') ev.id = v;
        else if (k === 'data') ev.data += v;
      }
      if (!comment) yield { ...ev, data: JSON.parse(ev.data) };
    }
  }
}

async function start(rt: Rt, body: Record<string, unknown>): Promise<Proc> {
  return ok<Proc>(rt('/v1/processes', json('POST', body)), 201);
}

async function events(s: StartedServer, types: string) {
  const r = await ok<{ events: Array<{ type: string; namespace: string; data: Record<string, unknown> }> }>(
    api(s, s.adminKey)(`/v1/workspaces/${s.workspaceId}/events?types=${types}&limit=200`),
  );
  return r.events;
}

function vmRssBytes(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

describe.skipIf(!hasBwrap)(`background processes over HTTP${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let server: StartedServer;
  let rt: Rt;

  beforeAll(async () => {
    server = await startServer({
      env: {
        TROVE_PROCESS_MAX_PER_NAMESPACE: '3',
        TROVE_PROCESS_OUTPUT_BYTES: String(64 * 1024),
        TROVE_EXEC_TIMEOUT_MS: '5000',
      },
    });
    rt = api(server, server.runtimeKey, 'procs');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('survives its client: the stream left and rejoined with Last-Event-ID, and output from offset 0, are complete', async () => {
    // 400 lines, each released only when the test writes the next "go" file: nothing depends on timing.
    const p = await start(rt, {
      command:
        'i=0; while [ $i -lt 40 ]; do printf "line-%04d %s\\n" $i "$(head -c 50 /dev/zero | tr "\\0" x)"; [ $i = 9 ] && echo half >&2; i=$((i+1)); done; ' +
        'while [ ! -f workspace/go-rejoin ]; do sleep 0.02; done; ' +
        'i=40; while [ $i -lt 80 ]; do printf "line-%04d %s\\n" $i "$(head -c 50 /dev/zero | tr "\\0" x)"; i=$((i+1)); done; echo bye >&2',
    });
    const first = new AbortController();
    const res = await rt(`/v1/processes/${p.process_id}/stream`, { signal: first.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    let got = '';
    let lastId = '';
    for await (const e of sse(res)) {
      expect(['stdout', 'stderr']).toContain(e.event);
      if (e.event === 'stdout') got += decodeOutput(e.data as Output).toString();
      lastId = e.id!;
      // Leave in the middle of the first half.
      if (got.split('\n').length > 20) break;
    }
    first.abort();
    const [o, e] = lastId.split(':').map(Number);
    expect(o).toBe(Buffer.byteLength(got));
    // The process runs on without its client.
    expect((await ok<Proc>(rt(`/v1/processes/${p.process_id}`))).state).toBe('running');
    await ok(rt('/write', json('POST', { path: 'go-rejoin', content: '' })));
    const rejoin = await rt(`/v1/processes/${p.process_id}/stream?stdout_offset=999999`, {
      headers: { 'last-event-id': lastId },
    });
    let rest = '';
    let err = '';
    let exit: Proc | null = null;
    for await (const ev of sse(rejoin)) {
      if (ev.event === 'stdout') {
        expect((ev.data as Output).offset).toBe(o! + Buffer.byteLength(rest));
        rest += decodeOutput(ev.data as Output).toString();
      } else if (ev.event === 'stderr') {
        expect((ev.data as Output).offset).toBe(e! + Buffer.byteLength(err));
        err += decodeOutput(ev.data as Output).toString();
      } else if (ev.event === 'exit') exit = ev.data as Proc;
    }
    expect(exit).toMatchObject({ process_id: p.process_id, state: 'exited', exit_code: 0 });
    const all = got + rest;
    const lines = all.trimEnd().split('\n');
    expect(lines).toHaveLength(80);
    lines.forEach((l, i) => expect(l).toBe(`line-${String(i).padStart(4, '0')} ${'x'.repeat(50)}`));
    // Offset 0 later: the same bytes (the ring of 64 KiB holds them all).
    expect((await readProcessOutput(rt, p.process_id, 'stdout', 0, 1000)).data.toString()).toBe(all);
    expect((await readProcessOutput(rt, p.process_id, 'stderr')).data.toString()).toBe('half\nbye\n');
  });
});

describe.skipIf(!hasBwrap)(`live one-shot exec${hasBwrap ? '' : ` (${SKIP})`}`, () => {
  let server: StartedServer;
  let rt: Rt;
  beforeAll(async () => {
    server = await startServer({
      env: { TROVE_EXEC_TIMEOUT_MS: '3000', TROVE_EXEC_MAX_OUTPUT_BYTES: String(100 * 1024) },
    });
    rt = api(server, server.runtimeKey, 'live');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('the first output arrives while the command still runs (Accept: text/event-stream)', async () => {
    const res = await rt(
      '/v1/exec',
      json(
        'POST',
        { command: 'echo a; while [ ! -f workspace/go-live ]; do sleep 0.02; done; touch workspace/after; echo b' },
        { accept: 'text/event-stream' },
      ),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const seen: SseEvent[] = [];
    for await (const e of sse(res)) {
      seen.push(e);
      if (seen.length === 1) {
        expect(e).toEqual({ event: 'stdout', data: { offset: 0, data: 'a\n', encoding: 'utf-8' } });
        // The command has not got past its wait: the file it makes afterwards does not exist.
        expect((await rt('/files/after')).status).toBe(404);
        await ok(rt('/write', json('POST', { path: 'go-live', content: '' })));
      }
    }
    expect(seen.slice(1)).toEqual([
      { event: 'stdout', data: { offset: 2, data: 'b\n', encoding: 'utf-8' } },
      {
        event: 'exit',
        data: {
          exit_code: 0,
          exit_reason: 'exited',
          duration_ms: expect.any(Number),
          stdout_truncated: false,
          stderr_truncated: false,
        },
      },
    ]);
    const ev = await events(server, 'exec.completed');
    expect(ev[0]!.data).toMatchObject({ exit_code: 0, stdout: 'a\nb\n' });
  });

  it('"stream": true does the same; a timeout sends error exec_timeout, then exit 124 / timeout', async () => {
    const res = await rt('/v1/exec', json('POST', { command: 'echo x >&2; sleep 30', stream: true }));
    const seen: SseEvent[] = [];
    for await (const e of sse(res)) seen.push(e);
    expect(seen).toEqual([
      { event: 'stderr', data: { offset: 0, data: 'x\n', encoding: 'utf-8' } },
      { event: 'error', data: { detail: 'Command timed out after 3s.', code: 'exec_timeout' } },
      {
        event: 'exit',
        data: {
          exit_code: 124,
          exit_reason: 'timeout',
          duration_ms: expect.any(Number),
          stdout_truncated: false,
          stderr_truncated: false,
        },
      },
    ]);
  });

  it('caps live output as JSON exec does, and without streaming the answer is as before', async () => {
    const res = await rt('/v1/exec', json('POST', { command: 'head -c 300000 /dev/zero | tr "\\0" a', stream: true }));
    let bytes = 0;
    let exit: Record<string, unknown> | null = null;
    for await (const e of sse(res)) {
      if (e.event === 'stdout') bytes += decodeOutput(e.data as Output).length;
      if (e.event === 'exit') exit = e.data as Record<string, unknown>;
    }
    expect(bytes).toBe(100 * 1024);
    expect(exit).toMatchObject({ exit_code: 0, stdout_truncated: true, stderr_truncated: false });
    const plain = await ok<Record<string, unknown>>(rt('/v1/exec', json('POST', { command: 'echo plain' })));
    expect(plain).toEqual({
      exit_code: 0,
      stdout: 'plain\n',
      stderr: '',
      duration_ms: expect.any(Number),
      exit_reason: 'exited',
    });
  });

  it('a refusal before the sandbox is up is an ordinary JSON error', async () => {
    const e = await errorOf(
      rt(
        '/v1/exec',
        json('POST', { command: 'true', stdin: 'x'.repeat(1024 * 1024 + 1) }, { accept: 'text/event-stream' }),
      ),
    );
    expect([e.status, e.code]).toEqual([422, 'validation_failed']);
  });
});

describe.skipIf(!hasBwrap)(
  `background processes across a restart and with a slow reader${hasBwrap ? '' : ` (${SKIP})`}`,
  () => {
    let server: StartedServer;
    afterAll(async () => {
      await server?.close();
    });

    /** Reads an NDJSON or SSE response slowly (a pause after every ~4 MiB), noting the server's peak RSS. */
    async function slowRead(
      s: StartedServer,
      path: string,
      init: { method?: string; body?: string; headers: Record<string, string> },
    ) {
      const before = vmRssBytes(s.proc.pid!);
      let peak = before;
      let received = 0;
      let sinceSample = 0;
      await new Promise<void>((resolve, reject) => {
        const req = request(
          new URL(s.baseUrl + path),
          { method: init.method ?? 'GET', headers: { authorization: `Bearer ${s.runtimeKey}`, ...init.headers } },
          (res) => {
            let pending = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              pending += chunk;
              // NDJSON lines, or SSE "data: " lines: either way one JSON object per line.
              let i: number;
              while ((i = pending.indexOf('\n')) !== -1) {
                let line = pending.slice(0, i);
                pending = pending.slice(i + 1);
                if (line.startsWith('data: ')) line = line.slice(6);
                if (!line.startsWith('{')) continue;
                const m = JSON.parse(line) as { type?: string; data?: string; encoding?: string; offset?: number };
                if (typeof m.data === 'string' && m.offset !== undefined) {
                  const n = decodeOutput(m as Output).length;
                  received += n;
                  sinceSample += n;
                }
              }
              if (sinceSample >= 4 * 1024 * 1024) {
                sinceSample = 0;
                res.pause();
                peak = Math.max(peak, vmRssBytes(s.proc.pid!));
                setTimeout(() => res.resume(), 100);
              }
            });
            res.on('end', () => resolve());
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(init.body);
      });
      return { received, growth: peak - before };
    }

    it('100 MiB streamed to a slow reader: the server RSS grows by less than 32 MiB (process stream and live exec)', async () => {
      const total = 100 * 1024 * 1024;
      server = await startServer({
        env: {
          TROVE_PROCESS_OUTPUT_BYTES: String(128 * 1024 * 1024),
          TROVE_EXEC_MAX_OUTPUT_BYTES: String(128 * 1024 * 1024),
          TROVE_EXEC_TIMEOUT_MS: '300000',
        },
      });
      const command = `yes 0123456789abcdef0123456789abcdef | head -c ${total}`;
      const rt = api(server, server.runtimeKey, 'big');
      const p = await start(rt, { command });
      const proc = await slowRead(server, `/v1/processes/${p.process_id}/stream`, {
        headers: { 'x-namespace': 'big', accept: 'application/x-ndjson' },
      });
      expect(proc.received).toBe(total);
      expect(proc.growth, `RSS growth ${proc.growth} bytes`).toBeLessThan(32 * 1024 * 1024);
      // Live exec: the command waits for the slow client (the launcher's window), nothing piles up in the server.
      const live = await slowRead(server, '/v1/exec', {
        method: 'POST',
        body: JSON.stringify({ command }),
        headers: { 'x-namespace': 'big', 'content-type': 'application/json', accept: 'text/event-stream' },
      });
      expect(live.received).toBe(total);
      expect(live.growth, `RSS growth ${live.growth} bytes`).toBeLessThan(32 * 1024 * 1024);
    }, 180_000);

    it('after a restart the process is gone, its record says server_restart and its output is kept', async () => {
      const rt = api(server, server.runtimeKey, 'restart');
      const p = await start(rt, { command: 'echo before; while :; do sleep 1; done' });
      const s = await rt(`/v1/processes/${p.process_id}/stream`);
      for await (const e of sse(s)) if (e.event === 'stdout') break;
      await server.kill('SIGKILL');
      server = await server.restart();
      const rt2 = api(server, server.runtimeKey, 'restart');
      const after = await ok<Proc>(rt2(`/v1/processes/${p.process_id}`));
      expect(after).toMatchObject({ state: 'exited', exit_reason: 'server_restart', exit_code: null, stdout_bytes: 7 });
      expect((await readProcessOutput(rt2, p.process_id, 'stdout')).data.toString()).toBe('before\n');
      // A graceful stop records it at shutdown.
      const q = await start(rt2, { command: 'sleep 600' });
      await server.stop();
      server = await server.restart();
      expect(await ok<Proc>(api(server, server.runtimeKey, 'restart')(`/v1/processes/${q.process_id}`))).toMatchObject({
        state: 'exited',
        exit_reason: 'server_restart',
      });
    }, 120_000);
  },
);
