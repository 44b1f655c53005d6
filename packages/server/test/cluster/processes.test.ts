/**
 * Background processes on two real nodes sharing one PostgreSQL database and one data dir: a process started
 * on one node is listed, read and streamed on the other; a signal sent to the other node reaches it (through
 * LISTEN/NOTIFY), so do stdin writes and closes (their bytes through a file on the shared data volume, answered
 * as the owning node answers), and a restore on the other node stops it first.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomKey, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { pgAvailable, useSharedState } from './support.js';
import { json, ok } from '../../../../test/helpers/http.js';

const pgState = await pgAvailable();
const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const skip = !pgState.ok
  ? ` — SKIPPED: ${pgState.reason}`
  : !hasBwrap
    ? ' — SKIPPED: bubblewrap (bwrap) is not installed'
    : '';

interface Proc {
  process_id: string;
  state: string;
  exit_code: number | null;
  exit_reason: string | null;
  signal: string | null;
  stdout_bytes: number;
}

describe.skipIf(skip !== '')(`background processes on two nodes${skip}`, () => {
  const shared = useSharedState('trove-cluster-procs');
  let a: StartedServer;
  let b: StartedServer;
  const runtimeKey = randomKey();
  const adminKey = randomKey();

  const call = (node: StartedServer, path: string, init: RequestInit = {}, ns = 'shared') => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${runtimeKey}`);
    headers.set('x-namespace', ns);
    return fetch(node.baseUrl + path, { ...init, headers });
  };
  async function waitExit(node: StartedServer, id: string, ns = 'shared'): Promise<Proc> {
    for (;;) {
      const p = await ok<Proc>(call(node, `/v1/processes/${id}/wait?timeout=20`, {}, ns));
      if (p.state === 'exited') return p;
    }
  }

  let dataDir: string;

  beforeAll(async () => {
    const created = await shared.create();
    dataDir = created.dataDir;
    const env = { TROVE_DATABASE_URL: created.db.url };
    a = await startServer({ dataDir, adminKey, runtimeKey, env });
    shared.nodes.push(a);
    b = await startServer({ dataDir, adminKey, runtimeKey, env });
    shared.nodes.push(b);
  });

  it('the other node lists it, reads and streams its output to the exit', async () => {
    const p = await ok<Proc>(
      call(
        a,
        '/v1/processes',
        json('POST', { command: 'echo from-a; while [ ! -f workspace/go ]; do sleep 0.05; done; echo done' }),
      ),
      201,
    );
    const seen = await ok<{ processes: Proc[] }>(call(b, '/v1/processes?state=running'));
    expect(seen.processes.map((x) => x.process_id)).toContain(p.process_id);
    // B streams it: it must poll the shared files, and see the exit A records.
    const stream = await call(b, `/v1/processes/${p.process_id}/stream`, {
      headers: { accept: 'application/x-ndjson' },
    });
    const reader = stream.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('from-a')) text += decoder.decode((await reader.read()).value, { stream: true });
    await ok(call(b, '/write', json('POST', { path: 'go', content: '' })));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const lines = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; data?: string; process?: Proc });
    expect(
      lines
        .filter((l) => l.type === 'stdout')
        .map((l) => l.data)
        .join(''),
    ).toBe('from-a\ndone\n');
    expect(lines.at(-1)).toMatchObject({
      type: 'exit',
      process: { process_id: p.process_id, exit_code: 0, exit_reason: 'exited' },
    });
    const out = await ok<{ data: string; eof: boolean }>(call(b, `/v1/processes/${p.process_id}/output`));
    expect(out).toMatchObject({ data: 'from-a\ndone\n', eof: true });
  });

  /** What is left in a process's output directory besides its output segments (stdin files must not stay). */
  function strayFiles(id: string): string[] {
    const root = join(dataDir, 'processes');
    for (const ws of readdirSync(root)) {
      const names = readdirSync(join(root, ws)).includes(id) ? readdirSync(join(root, ws, id)) : null;
      if (names) return names.filter((n) => !/^(stdout|stderr)\.\d{16}$/.test(n));
    }
    throw new Error(`no output directory for ${id}`);
  }

  async function outputOf(node: StartedServer, id: string, want: string): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const o = await ok<{ data: string }>(call(node, `/v1/processes/${id}/output`));
      if (o.data.length >= want.length || Date.now() > deadline) return o.data;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('stdin written on the other node reaches the process; closing it there ends the process', async () => {
    const p = await ok<Proc>(call(a, '/v1/processes', json('POST', { command: 'cat' })), 201);
    expect(await ok(call(b, `/v1/processes/${p.process_id}/stdin`, json('POST', { data: 'hello from b\n' })))).toEqual({
      process_id: p.process_id,
      written: 13,
      stdin_open: true,
    });
    // More than a NOTIFY payload holds, as raw bytes: the file on the shared volume carries it.
    const big = Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join('');
    expect(big.length).toBeGreaterThan(100_000);
    expect(
      await ok(
        call(b, `/v1/processes/${p.process_id}/stdin`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body: big,
        }),
      ),
    ).toEqual({ process_id: p.process_id, written: big.length, stdin_open: true });
    const want = 'hello from b\n' + big;
    expect(await outputOf(b, p.process_id, want)).toBe(want);
    expect(strayFiles(p.process_id)).toEqual([]);

    expect(await ok(call(b, `/v1/processes/${p.process_id}/stdin/close`, { method: 'POST' }))).toEqual({
      process_id: p.process_id,
      stdin_open: false,
    });
    expect(await waitExit(b, p.process_id)).toMatchObject({
      exit_code: 0,
      exit_reason: 'exited',
      stdout_bytes: want.length,
    });
    expect(strayFiles(p.process_id)).toEqual([]);
  });

  it('a write and a close with data on the other node; a write to a closed stdin there is the 409 the owning node gives', async () => {
    const p = await ok<Proc>(call(a, '/v1/processes', json('POST', { command: 'cat; sleep 600' })), 201);
    expect(
      await ok(call(b, `/v1/processes/${p.process_id}/stdin`, json('POST', { data: 'last\n', close: true }))),
    ).toEqual({
      process_id: p.process_id,
      written: 5,
      stdin_open: false,
    });
    expect(await outputOf(b, p.process_id, 'last\n')).toBe('last\n');
    expect(await ok<Proc & { stdin_open: boolean }>(call(b, `/v1/processes/${p.process_id}`))).toMatchObject({
      state: 'running',
      stdin_open: false,
    });
    const there = await call(b, `/v1/processes/${p.process_id}/stdin`, json('POST', { data: 'more' }));
    const here = await call(a, `/v1/processes/${p.process_id}/stdin`, json('POST', { data: 'more' }));
    const [bodyThere, bodyHere] = [
      (await there.json()) as { code: string; detail: string },
      (await here.json()) as { code: string; detail: string },
    ];
    expect([there.status, bodyThere.code, bodyThere.detail]).toEqual([
      409,
      'conflict',
      `The stdin of process ${p.process_id} is closed.`,
    ]);
    expect([here.status, bodyHere.code, bodyHere.detail]).toEqual([there.status, bodyThere.code, bodyThere.detail]);
    // Closing a closed stdin is done already, on either node.
    expect(await ok(call(b, `/v1/processes/${p.process_id}/stdin/close`, { method: 'POST' }))).toEqual({
      process_id: p.process_id,
      stdin_open: false,
    });
    expect(strayFiles(p.process_id)).toEqual([]);
    await ok(call(b, `/v1/processes/${p.process_id}/signal`, json('POST', { signal: 'SIGKILL' })));
    await waitExit(b, p.process_id);
  });

  it('a signal sent to the other node reaches the owning node', async () => {
    const p = await ok<Proc>(call(a, '/v1/processes', json('POST', { command: 'sleep 600' })), 201);
    expect(await ok(call(b, `/v1/processes/${p.process_id}/signal`, json('POST', { signal: 'SIGTERM' })))).toEqual({
      process_id: p.process_id,
      signal: 'SIGTERM',
      delivered: true,
    });
    expect(await waitExit(b, p.process_id)).toMatchObject({ exit_reason: 'killed', signal: 'SIGTERM', exit_code: 143 });
  });

  it('a restore on the other node stops the process first', async () => {
    const snap = await ok<{ snapshot_id: string }>(call(b, '/v1/snapshots', json('POST', {}), 'restored'));
    const p = await ok<Proc>(call(a, '/v1/processes', json('POST', { command: 'sleep 600' }), 'restored'), 201);
    await ok(call(b, `/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }, 'restored'));
    expect(await ok<Proc>(call(b, `/v1/processes/${p.process_id}`, {}, 'restored'))).toMatchObject({
      state: 'exited',
      exit_reason: 'killed',
      signal: 'SIGKILL',
    });
  });

  it('a node that shuts down records its processes as server_restart; the other node still serves their output', async () => {
    const p = await ok<Proc>(call(a, '/v1/processes', json('POST', { command: 'echo kept; sleep 600' })), 201);
    for (;;) {
      const o = await ok<{ data: string }>(call(b, `/v1/processes/${p.process_id}/output`));
      if (o.data === 'kept\n') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await a.stop();
    expect(await ok<Proc>(call(b, `/v1/processes/${p.process_id}`))).toMatchObject({
      state: 'exited',
      exit_reason: 'server_restart',
      stdout_bytes: 5,
    });
    expect(await ok<{ data: string; eof: boolean }>(call(b, `/v1/processes/${p.process_id}/output`))).toMatchObject({
      data: 'kept\n',
      eof: true,
    });
  });
});

describe.skipIf(skip !== '')(`a node that dies${skip}`, () => {
  const shared = useSharedState('trove-cluster-lost');
  const runtimeKey = randomKey();
  const adminKey = randomKey();

  it('has its running processes marked node_lost by another node once it stops vouching for them; their output stays', async () => {
    const { db, dataDir } = await shared.create();
    // A short window, so the test does not wait the default 45 s; what is tested is the same path.
    const env = { TROVE_DATABASE_URL: db.url, TROVE_PROCESS_NODE_LOST_MS: '2000' };
    const a = await startServer({ dataDir, adminKey, runtimeKey, env });
    shared.nodes.push(a);
    const b = await startServer({ dataDir, adminKey, runtimeKey, env });
    shared.nodes.push(b);
    const call = (node: StartedServer, path: string, init: RequestInit = {}) => {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${runtimeKey}`);
      headers.set('x-namespace', 'lost');
      return fetch(node.baseUrl + path, { ...init, headers });
    };
    const res = await call(a, '/v1/processes', json('POST', { command: 'echo before; sleep 600' }));
    expect(res.status).toBe(201);
    const p = (await res.json()) as Proc;
    for (;;) {
      const o = (await (await call(b, `/v1/processes/${p.process_id}/output`)).json()) as { data: string };
      if (o.data === 'before\n') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Node a vouches for it while it lives: still running on b after twice the window.
    await new Promise((r) => setTimeout(r, 4000));
    expect(((await (await call(b, `/v1/processes/${p.process_id}`)).json()) as Proc).state).toBe('running');
    await a.kill('SIGKILL');
    const deadline = Date.now() + 15_000;
    let seen: Proc;
    for (;;) {
      seen = (await (await call(b, `/v1/processes/${p.process_id}`)).json()) as Proc;
      if (seen.state === 'exited' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toMatchObject({ state: 'exited', exit_reason: 'node_lost', exit_code: null, stdout_bytes: 7 });
    expect(await (await call(b, `/v1/processes/${p.process_id}/output`)).json()).toMatchObject({
      data: 'before\n',
      eof: true,
    });
  }, 60_000);
});
