/**
 * files/routes.ts, conditional requests, in-process: every file answer carries an ETag (the file's
 * version); writes honour If-Match / If-None-Match: * (412), reads If-None-Match (304).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

let server: TestApp;
let rt: (path: string, init?: RequestInit) => Promise<Response>;
const NS = 'cond';

async function put(path: string, body: string, extra: Record<string, string> = {}) {
  const res = await rt(`/files/${path}`, { method: 'PUT', headers: extra, body });
  return { status: res.status, etag: res.headers.get('etag'), body: (await res.json()) as any };
}

async function write(path: string, content: string, extra: Record<string, string> = {}) {
  const res = await rt('/write', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...extra },
    body: JSON.stringify({ path, content }),
  });
  return { status: res.status, etag: res.headers.get('etag'), body: (await res.json()) as any };
}

async function get(path: string, extra: Record<string, string> = {}) {
  const res = await rt(`/files/${path}`, { headers: extra });
  return { status: res.status, etag: res.headers.get('etag'), text: await res.text() };
}

beforeAll(async () => {
  server = await startTestApp({ exec: true });
  rt = server.fetcher(server.runtimeKey, NS);
});

afterAll(() => server?.close());

describe('ETag and conditional requests', () => {
  it('gives every write and read the same ETag for the same version, a new one for a new version', async () => {
    const first = await put('a.txt', 'one');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ path: 'workspace/a.txt', size_bytes: 3 });
    expect(first.etag).toMatch(/^"[0-9a-f]+-3-[0-9a-f]+\.[0-9a-f]+"$/);
    const read = await get('a.txt');
    expect(read).toEqual({ status: 200, etag: first.etag, text: 'one' });
    const content = await rt('/v1/files/content?path=a.txt');
    expect(content.headers.get('etag')).toBe(first.etag);
    expect(Object.keys((await content.json()) as object).sort()).toEqual([
      'content',
      'encoding',
      'modified_at',
      'path',
      'size_bytes',
      'truncated',
    ]);
    const second = await write('a.txt', 'two');
    expect(second.status).toBe(200);
    expect(second.etag).not.toBe(first.etag);
    expect((await get('a.txt')).etag).toBe(second.etag);
  });

  it('answers 304 with no body when If-None-Match names the current version', async () => {
    const { etag } = await put('b.bin', 'bytes');
    expect(await get('b.bin', { 'if-none-match': etag! })).toEqual({ status: 304, etag, text: '' });
    expect(await get('b.bin', { 'if-none-match': `"nope", W/${etag}` })).toEqual({ status: 304, etag, text: '' });
    expect(await get('b.bin', { 'if-none-match': '"nope"' })).toEqual({ status: 200, etag, text: 'bytes' });
  });

  it('refuses a write whose If-Match is stale or whose If-None-Match: * finds the file, and leaves the file as it was', async () => {
    const v1 = await write('c.txt', 'v1');
    const stale = await write('c.txt', 'lost', { 'if-match': '"0-0-0.0"' });
    expect(stale.status).toBe(412);
    expect(stale.body).toEqual({
      detail: `Precondition failed for workspace/c.txt: If-Match does not match its ETag ${v1.etag}`,
      code: 'precondition_failed',
    });
    const exists = await put('c.txt', 'lost', { 'if-none-match': '*' });
    expect(exists.status).toBe(412);
    expect(exists.body).toEqual({
      detail: 'Precondition failed for workspace/c.txt: If-None-Match: *, but the file exists',
      code: 'precondition_failed',
    });
    expect((await get('c.txt')).text).toBe('v1');
    const ok = await put('c.txt', 'v2', { 'if-match': v1.etag! });
    expect(ok.status).toBe(200);
    expect((await get('c.txt')).text).toBe('v2');
    // If-Match on a file that does not exist; If-None-Match: * on one that does not.
    expect((await write('new.txt', 'x', { 'if-match': '*' })).status).toBe(412);
    expect((await write('new.txt', 'x', { 'if-none-match': '*' })).status).toBe(200);
  });

  it('lets exactly one of two writers racing with the same If-Match win', async () => {
    for (let round = 0; round < 25; round++) {
      const base = await write('race.txt', `base ${round}`);
      const [a, b] = await Promise.all([
        put('race.txt', `a ${round}`, { 'if-match': base.etag! }),
        write('race.txt', `b ${round}`, { 'if-match': base.etag! }),
      ]);
      expect([a.status, b.status].sort()).toEqual([200, 412]);
      const winner = a.status === 200 ? a : b;
      const now = await get('race.txt');
      expect(now.etag).toBe(winner.etag);
      expect(now.text).toBe(a.status === 200 ? `a ${round}` : `b ${round}`);
    }
    // Two creators with If-None-Match: *: one creates, one is refused.
    const [x, y] = await Promise.all([
      put('created-once.txt', 'x', { 'if-none-match': '*' }),
      put('created-once.txt', 'y', { 'if-none-match': '*' }),
    ]);
    expect([x.status, y.status].sort()).toEqual([200, 412]);
  });

  it('sees a change a command makes in place as a new version', async () => {
    const { etag } = await write('edited.txt', 'before');
    const res = await rt('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'printf after >> workspace/edited.txt' }),
    });
    expect(res.status).toBe(200);
    const now = await get('edited.txt', { 'if-none-match': etag! });
    expect(now.status).toBe(200);
    expect(now.text).toBe('beforeafter');
    expect(now.etag).not.toBe(etag);
    expect((await write('edited.txt', 'mine', { 'if-match': etag! })).status).toBe(412);
  });
});
