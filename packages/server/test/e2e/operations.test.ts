/**
 * What an operator relies on: structured logs with request ids that never
 * carry a key or a secret, and a SIGTERM that lets in-flight requests finish
 * before the process exits cleanly.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';

const started: StartedServer[] = [];
afterAll(async () => {
  for (const s of started) await s.close().catch(() => {});
});

async function json(s: StartedServer, key: string, method: string, path: string, body?: unknown, ns?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (ns) headers['x-namespace'] = ns;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(s.baseUrl + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('logs', () => {
  it('are JSON lines with request ids and never contain a key or a webhook secret, even at debug level', async () => {
    const s = await startServer({ env: { TROVE_LOG_LEVEL: 'debug' } });
    started.push(s);
    const ws = s.workspaceId;
    const created = await json(s, s.adminKey, 'POST', `/v1/workspaces/${ws}/keys`, { name: 'ci', namespace: null });
    expect(created.status).toBe(201);
    const newKey = created.body.api_key as string;
    const hook = await json(s, s.adminKey, 'POST', `/v1/workspaces/${ws}/webhooks`, {
      url: 'http://127.0.0.1:9/h',
      events: ['*'],
    });
    expect(hook.status).toBe(201);
    const secret = hook.body.signing_secret as string;
    expect(secret).toMatch(/^trove-whsec-/);
    expect((await json(s, newKey, 'POST', '/write', { path: 'a.txt', content: 'x' }, 'logs')).status).toBe(200);
    expect((await json(s, s.runtimeKey, 'GET', '/v1/me')).status).toBe(200);
    const bogus = 'trove-sk-' + 'b'.repeat(48);
    expect((await json(s, bogus, 'GET', '/v1/me')).status).toBe(401);
    // A key sent in a body field is dropped (unknown fields are ignored) and never echoed into the log.
    expect(
      (await json(s, s.adminKey, 'POST', `/v1/workspaces/${ws}/keys`, { name: 'x', namespace: null, api_key: bogus }))
        .status,
    ).toBe(201);
    await json(s, s.adminKey, 'DELETE', `/v1/workspaces/${ws}/keys/${created.body.key_id as string}`);
    await s.stop();

    // The first start prints the bootstrap keys once, by design; nothing after that may.
    const all = s.output();
    const out = all.slice(all.indexOf('Trove listening on'));
    expect(out.length).toBeGreaterThan(100);
    for (const [what, secretValue] of [
      ['admin key', s.adminKey],
      ['workspace key', s.runtimeKey],
      ['created key', newKey],
      ['bogus key', bogus],
      ['webhook secret', secret],
    ] as const) {
      expect(out.includes(secretValue), `${what} appears in the server output`).toBe(false);
    }
    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { reqId?: string; msg?: string; level: number });
    const withIds = lines.filter((l) => typeof l.reqId === 'string' && l.reqId.length > 0);
    expect(withIds.length).toBeGreaterThanOrEqual(7);
  });
});

describe('SIGTERM', () => {
  it('finishes an upload in flight, then exits 0; the file is complete on disk', async () => {
    const s = await startServer();
    started.push(s);
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    // 2 MiB, held after a little more than 1 MiB: the temp file is made with the body's first full batch (1 MiB).
    const chunks = 32;
    const held = 17;
    let sent = 0;
    let release!: () => void;
    const firstSent = new Promise<void>((r) => (release = r));
    let proceed!: () => void;
    const signalled = new Promise<void>((r) => (proceed = r));
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        if (sent === chunks) return ctl.close();
        if (sent === held) {
          release();
          // Hold the rest until the server has been told to stop.
          await signalled;
        }
        ctl.enqueue(chunk);
        sent++;
      },
    });
    const upload = fetch(s.baseUrl + '/files/slow.bin', {
      method: 'PUT',
      headers: { authorization: `Bearer ${s.runtimeKey}`, 'x-namespace': 'term' },
      body,
      duplex: 'half',
    } as RequestInit);
    await firstSent;
    // The handler is running once its temp file exists (in the server's private scratch directory, data/tmp/<host>.<pid>).
    const uploads = () => {
      const base = join(s.dataDir, 'tmp');
      if (!existsSync(base)) return 0;
      return readdirSync(base).reduce(
        (n, d) => n + readdirSync(join(base, d)).filter((f) => f.startsWith('upload-')).length,
        0,
      );
    };
    for (let i = 0; i < 500 && uploads() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(uploads()).toBeGreaterThan(0);
    const exited = new Promise<number | null>((r) => s.proc.once('exit', (code) => r(code)));
    s.proc.kill('SIGTERM');
    // Let the signal land before the rest of the body goes out.
    await new Promise((r) => setTimeout(r, 200));
    proceed();
    const res = await upload;
    const text = await res.clone().text();
    expect(res.status, text + s.output().slice(-3000)).toBe(200);
    expect(await res.json()).toMatchObject({ path: 'workspace/slow.bin', size_bytes: chunks * chunk.length });
    expect(await exited).toBe(0);
    const onDisk = readFileSync(join(s.dataDir, 'workspaces', s.workspaceId, 'namespaces', 'term', 'slow.bin'));
    expect(onDisk.length).toBe(chunks * chunk.length);
    // New connections are refused once it is gone.
    await expect(fetch(s.baseUrl + '/healthz')).rejects.toThrow();
  });

  it('answers a waiting long-poll at once (an empty page) instead of waiting out its 30 s', async () => {
    const s = await startServer({ env: { TROVE_LOG_LEVEL: 'debug' } });
    started.push(s);
    // Nothing newer than the bootstrap events: the poll waits.
    const latest = await json(s, s.adminKey, 'GET', `/v1/workspaces/${s.workspaceId}/events?limit=1`);
    const since = (latest.body.events as Array<{ created_at: string }>)[0]!.created_at;
    const t0 = Date.now();
    const poll = fetch(
      `${s.baseUrl}/v1/workspaces/${s.workspaceId}/events?wait=30&since=${encodeURIComponent(since)}&types=file.deleted`,
      {
        headers: { authorization: `Bearer ${s.adminKey}` },
      },
    );
    // The request is in the server once it is logged ("incoming request", debug level).
    for (let i = 0; i < 500 && !s.output().includes('wait=30'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.output()).toContain('wait=30');
    const exited = new Promise<number | null>((r) => s.proc.once('exit', (code) => r(code)));
    s.proc.kill('SIGTERM');
    const res = await poll;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ events: [] });
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});

describe('thread pool', () => {
  /** Threads of the server process after an upload has started libuv's pool. */
  async function threadsAfterUpload(env: Record<string, string | undefined>): Promise<number> {
    const s = await startServer({ env });
    started.push(s);
    const res = await fetch(`${s.baseUrl}/files/pool.bin`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${s.runtimeKey}`, 'x-namespace': 'pool' },
      body: 'x'.repeat(100_000),
    });
    expect(res.status).toBe(200);
    const n = readdirSync(`/proc/${s.proc.pid}/task`).length;
    await s.close();
    return n;
  }

  it.runIf(process.platform === 'linux')(
    'has 16 threads for file I/O by default (sized before the ES module loader starts it) and honours UV_THREADPOOL_SIZE',
    async () => {
      const byDefault = await threadsAfterUpload({ UV_THREADPOOL_SIZE: undefined });
      const two = await threadsAfterUpload({ UV_THREADPOOL_SIZE: '2' });
      // The main thread plus 16 pool threads at least; the same server with a pool of 2 has 14 fewer.
      expect(byDefault).toBeGreaterThanOrEqual(17);
      expect(byDefault - two).toBe(14);
    },
  );
});
