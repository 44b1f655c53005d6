/**
 * An in-memory stand-in for the server's background-process routes and streaming exec
 * (docs: the processes wire API), driven by the test: it decides when a process writes, exits,
 * or when a stream's connection drops, which a real sandbox cannot be made to do on cue.
 * The end-to-end tests hold the clients to the real server; this one holds them to the edges.
 */
import type { ServerResponse } from 'node:http';
import { json, startPeer, type Peer, type RecordedRequest } from './peer.js';

type StreamName = 'stdout' | 'stderr';

export interface FakeProcess {
  process_id: string;
  namespace: string;
  command: string;
  state: 'running' | 'exited';
  exit_code: number | null;
  exit_reason: string | null;
  signal: string | null;
  started_at: string;
  ended_at: string | null;
  timeout_ms: number | null;
  stdin_open: boolean;
  env: Record<string, string> | undefined;
  /** Every byte written to stdin, in order. */
  stdin: Buffer;
  /** Every byte of each stream (the fake never forgets; `dropped` says where retention starts). */
  out: Record<StreamName, Buffer>;
  dropped: Record<StreamName, number>;
}

/** One scripted event of a streaming exec. */
export type ExecStep =
  | { stream: StreamName; data: string | Buffer }
  | { exit: number; reason?: string; durationMs?: number }
  | { error: { detail: string; code: string } }
  | { raw: string }
  | { waitFor: Promise<unknown> };

export interface FakeServer {
  url: string;
  peer: Peer;
  processes: Map<string, FakeProcess>;
  /** Requests whose path starts with this, for assertions. */
  requests(pathPrefix: string): RecordedRequest[];
  /** Adds a running process directly (as if another client had started it). */
  add(command: string, init?: Partial<FakeProcess>): FakeProcess;
  /** The process writes `data` to a stream: one SSE event to every open stream of it. */
  write(id: string, stream: StreamName, data: string | Buffer): void;
  /** The oldest `n` bytes of a stream are no longer retained. */
  drop(id: string, stream: StreamName, n: number): void;
  /** The process ends. */
  exit(id: string, code: number, reason?: string, signal?: string | null): void;
  /** Open `/stream` connections cut (socket destroyed) after this many more data events each; `null` never. */
  cutStreamsAfter: number | null;
  /** Cuts every open `/stream` connection now. */
  cutStreams(): void;
  /** Resolves once exactly `n` `/stream` connections to process `id` are open. */
  streamsOpen(n: number, id: string): Promise<void>;
  /** The steps of the next `POST /v1/exec` stream; `null` answers JSON like a server without live exec. */
  execScript: ExecStep[] | null;
  /** The JSON answer of `POST /v1/exec` when `execScript` is null. */
  execJson: Record<string, unknown>;
  /** Answer `POST /v1/processes` with 429 exec_busy. */
  busy: boolean;
  close(): Promise<void>;
}

function isUtf8(buf: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

function wireData(buf: Buffer): { data: string; encoding: 'utf-8' | 'base64' } {
  return isUtf8(buf)
    ? { data: buf.toString('utf8'), encoding: 'utf-8' }
    : { data: buf.toString('base64'), encoding: 'base64' };
}

function view(p: FakeProcess): Record<string, unknown> {
  return {
    process_id: p.process_id,
    namespace: p.namespace,
    command: p.command.slice(0, 4096),
    command_bytes: Buffer.byteLength(p.command),
    command_truncated: Buffer.byteLength(p.command) > 4096,
    state: p.state,
    exit_code: p.exit_code,
    exit_reason: p.exit_reason,
    signal: p.signal,
    started_at: p.started_at,
    ended_at: p.ended_at,
    timeout_ms: p.timeout_ms,
    stdin_open: p.stdin_open,
    stdout_bytes: p.out.stdout.length,
    stderr_bytes: p.out.stderr.length,
    stdout_dropped_bytes: p.dropped.stdout,
    stderr_dropped_bytes: p.dropped.stderr,
  };
}

const notFound = (res: ServerResponse, id: string) =>
  json(res, 404, { detail: `Process not found: ${id}`, code: 'process_not_found' });

interface OpenStream {
  id: string;
  res: ServerResponse;
  sent: Record<StreamName, number>;
  budget: number | null;
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
};

export async function startFakeServer(): Promise<FakeServer> {
  const processes = new Map<string, FakeProcess>();
  const streams = new Set<OpenStream>();
  const waiters = new Set<() => void>();
  let seq = 0;
  const notify = () => {
    for (const w of [...waiters]) w();
  };

  const eventId = (s: OpenStream) => `${s.sent.stdout}:${s.sent.stderr}`;
  // Ends the connection once what was written is flushed: the client gets every event sent, then a truncated body.
  const cut = (s: OpenStream) => {
    streams.delete(s);
    s.res.socket?.end();
  };
  /** Sends what `s` has not seen yet, then the exit when the process has ended. */
  const pump = (s: OpenStream) => {
    const p = processes.get(s.id)!;
    for (const name of ['stdout', 'stderr'] as const) {
      const from = Math.max(s.sent[name], p.dropped[name]);
      if (from >= p.out[name].length) continue;
      if (s.budget !== null && s.budget-- <= 0) return cut(s);
      const bytes = p.out[name].subarray(from);
      s.sent[name] = p.out[name].length;
      s.res.write(
        `event: ${name}\ndata: ${JSON.stringify({ offset: from, ...wireData(bytes) })}\nid: ${eventId(s)}\n\n`,
      );
    }
    if (p.state === 'exited') {
      s.res.end(`event: exit\ndata: ${JSON.stringify(view(p))}\n\n`);
      streams.delete(s);
    }
  };
  const pumpAll = (id: string) => {
    for (const s of [...streams]) if (s.id === id) pump(s);
    notify();
  };

  const fake: FakeServer = {
    url: '',
    peer: undefined as unknown as Peer,
    processes,
    requests: (prefix) => fake.peer.requests.filter((r) => r.url.startsWith(prefix)),
    add(command, init = {}) {
      const id = `proc-${(++seq).toString(16).padStart(8, '0')}`;
      const p: FakeProcess = {
        process_id: id,
        namespace: 'ns',
        command,
        state: 'running',
        exit_code: null,
        exit_reason: null,
        signal: null,
        started_at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
        ended_at: null,
        timeout_ms: null,
        stdin_open: true,
        env: undefined,
        stdin: Buffer.alloc(0),
        out: { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) },
        dropped: { stdout: 0, stderr: 0 },
        ...init,
      };
      processes.set(id, p);
      return p;
    },
    write(id, stream, data) {
      const p = processes.get(id)!;
      p.out[stream] = Buffer.concat([p.out[stream], Buffer.from(data)]);
      pumpAll(id);
    },
    drop(id, stream, n) {
      processes.get(id)!.dropped[stream] = n;
    },
    exit(id, code, reason = 'exited', signal = null) {
      const p = processes.get(id)!;
      Object.assign(p, {
        state: 'exited',
        exit_code: code,
        exit_reason: reason,
        signal,
        stdin_open: false,
        ended_at: new Date().toISOString(),
      });
      pumpAll(id);
    },
    cutStreamsAfter: null,
    cutStreams() {
      for (const s of [...streams]) cut(s);
    },
    streamsOpen(n, id) {
      return new Promise((resolve) => {
        const check = () => {
          if ([...streams].filter((s) => s.id === id).length === n) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
      });
    },
    execScript: null,
    execJson: { exit_code: 0, stdout: '', stderr: '', duration_ms: 1, exit_reason: 'exited' },
    busy: false,
    close: () => fake.peer.close(),
  };

  fake.peer = await startPeer(async (req, res) => {
    const url = new URL(req.url, 'http://fake');
    const path = url.pathname;
    const body = (): Record<string, unknown> =>
      req.body.length ? (JSON.parse(req.body.toString('utf8')) as Record<string, unknown>) : {};

    if (req.method === 'POST' && path === '/v1/exec') {
      const streaming = (req.headers.accept ?? '').includes('text/event-stream') || body().stream === true;
      if (!streaming || fake.execScript === null) return json(res, 200, fake.execJson);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const offsets = { stdout: 0, stderr: 0 };
      for (const step of fake.execScript) {
        if ('waitFor' in step) await step.waitFor;
        else if ('raw' in step) res.write(step.raw);
        else if ('stream' in step) {
          const bytes = Buffer.from(step.data);
          res.write(
            `event: ${step.stream}\ndata: ${JSON.stringify({ offset: offsets[step.stream], ...wireData(bytes) })}\n\n`,
          );
          offsets[step.stream] += bytes.length;
        } else if ('error' in step) res.write(`event: error\ndata: ${JSON.stringify(step.error)}\n\n`);
        else
          res.write(
            `event: exit\ndata: ${JSON.stringify({ exit_code: step.exit, exit_reason: step.reason ?? 'exited', duration_ms: step.durationMs ?? 5 })}\n\n`,
          );
      }
      res.end();
      return;
    }

    if (req.method === 'POST' && path === '/v1/processes') {
      if (fake.busy)
        return json(
          res,
          429,
          { detail: 'Too many processes running in this namespace', code: 'exec_busy' },
          { 'retry-after': '120' },
        );
      const b = body();
      const p = fake.add(String(b.command), {
        namespace: String(req.headers['x-namespace'] ?? 'ns'),
        timeout_ms: (b.timeout_ms as number | null | undefined) ?? null,
        env: b.env as Record<string, string> | undefined,
      });
      if (typeof b.stdin === 'string') p.stdin = Buffer.from(b.stdin);
      if (b.close_stdin === true) p.stdin_open = false;
      return json(res, 201, view(p));
    }
    if (req.method === 'GET' && path === '/v1/processes') {
      const state = url.searchParams.get('state');
      const limit = Number(url.searchParams.get('limit') ?? 100);
      const list = [...processes.values()]
        .reverse()
        .filter((p) => !state || p.state === state)
        .slice(0, limit);
      return json(res, 200, { processes: list.map(view) });
    }

    const m = /^\/v1\/processes\/([^/]+)(\/.*)?$/.exec(path);
    if (!m) return json(res, 404, { detail: 'Not found', code: 'not_found' });
    const id = decodeURIComponent(m[1]!);
    const sub = m[2] ?? '';
    const p = processes.get(id);
    if (!p) return notFound(res, id);

    if (req.method === 'GET' && sub === '') return json(res, 200, view(p));
    if (req.method === 'POST' && sub === '/stdin') {
      if (!p.stdin_open || p.state !== 'running') {
        return json(res, 409, { detail: `stdin of ${id} is closed`, code: 'conflict' });
      }
      const raw = (req.headers['content-type'] ?? '').startsWith('application/octet-stream');
      const b = raw ? {} : body();
      const bytes = raw ? req.body : Buffer.from(String(b.data ?? ''));
      p.stdin = Buffer.concat([p.stdin, bytes]);
      if (b.close === true) p.stdin_open = false;
      return json(res, 200, { process_id: id, written: bytes.length, stdin_open: p.stdin_open });
    }
    if (req.method === 'POST' && sub === '/stdin/close') {
      p.stdin_open = false;
      return json(res, 200, { process_id: id, stdin_open: false });
    }
    if (req.method === 'POST' && sub === '/signal') {
      const signal = String(body().signal);
      const delivered = p.state === 'running';
      json(res, 200, { process_id: id, signal, delivered });
      if (delivered && signal in SIGNALS && signal !== 'SIGUSR1' && signal !== 'SIGUSR2')
        fake.exit(id, 128 + SIGNALS[signal]!, 'killed', signal);
      return;
    }
    if (req.method === 'GET' && sub === '/wait') {
      const seconds = Number(url.searchParams.get('timeout') ?? 30);
      if (p.state === 'exited' || seconds === 0) return json(res, 200, view(p));
      const done = () => {
        if (p.state !== 'exited') return;
        waiters.delete(done);
        clearTimeout(timer);
        json(res, 200, view(p));
      };
      const timer = setTimeout(() => {
        waiters.delete(done);
        json(res, 200, view(p));
      }, seconds * 1000);
      waiters.add(done);
      return;
    }
    if (req.method === 'GET' && sub === '/output') {
      const stream = (url.searchParams.get('stream') ?? 'stdout') as StreamName;
      const asked = Number(url.searchParams.get('offset') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 1024 * 1024);
      const offset = Math.max(asked, p.dropped[stream]);
      const bytes = p.out[stream].subarray(offset, offset + limit);
      const next = offset + bytes.length;
      return json(res, 200, {
        process_id: id,
        stream,
        offset,
        next_offset: next,
        ...wireData(bytes),
        dropped_bytes: p.dropped[stream],
        eof: p.state === 'exited' && next === p.out[stream].length,
      });
    }
    if (req.method === 'GET' && sub === '/stream') {
      const last = req.headers['last-event-id'];
      const sent = {
        stdout: Number(url.searchParams.get('stdout_offset') ?? 0),
        stderr: Number(url.searchParams.get('stderr_offset') ?? 0),
      };
      if (typeof last === 'string') {
        const [o, e] = last.split(':').map(Number);
        sent.stdout = o!;
        sent.stderr = e!;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(': connected\n\n');
      const s: OpenStream = { id, res, sent, budget: fake.cutStreamsAfter };
      streams.add(s);
      res.on('close', () => {
        streams.delete(s);
        notify();
      });
      pump(s);
      notify();
      return;
    }
    return json(res, 404, { detail: 'Not found', code: 'not_found' });
  });
  fake.url = fake.peer.url;
  return fake;
}
