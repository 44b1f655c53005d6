/**
 * files/routes.ts: /write, /delete, GET and PUT /files/{path}, /v1/files and /v1/files/content in-process,
 * against docs/protocol.md: happy paths, limits, and exact error bodies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { startTestApp, type Client, type TestApp } from '../helpers/app.js';

const INVALID_NS = {
  detail: 'Invalid namespace name: use 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")',
  code: 'namespace_invalid',
};

let t: TestApp;
let rt: Client;

beforeAll(async () => {
  t = await startTestApp({
    env: { TROVE_QUOTA_BYTES: String(4 * 1024 * 1024), TROVE_MAX_UPLOAD_BYTES: String(3 * 1024 * 1024) },
  });
  rt = t.as(t.runtimeKey, 'files-ns');
});
afterAll(() => t?.close());

describe('write and read', () => {
  it('POST /write creates parents, overwrites, and reports workspace/ paths', async () => {
    let res = await rt.post('/write', { path: 'workspace/a/b/c.txt', content: 'héllo' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ path: 'workspace/a/b/c.txt', size_bytes: 6 });
    res = await rt.post('/write', { path: '/a/b/c.txt', content: 'bye' });
    expect(res.json()).toEqual({ path: 'workspace/a/b/c.txt', size_bytes: 3 });
    res = await rt.get('/files/a/b/c.txt');
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.body).toBe('bye');
  });

  it('round-trips binary files of 0 B, 1 B and 1 MiB with checksums', async () => {
    for (const size of [0, 1, 1024 * 1024]) {
      const data = randomBytes(size);
      const put = await rt.put(`/files/bin/f${size}.bin`, data);
      expect(put.statusCode).toBe(200);
      expect(put.json()).toEqual({ path: `workspace/bin/f${size}.bin`, size_bytes: size });
      const got = (await rt.get(`/files/bin/f${size}.bin`)).rawPayload;
      expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('PUT accepts any content type, including application/json, as raw bytes', async () => {
    const body = '{"not": "parsed"';
    const res = await rt.put('/files/raw.json', body, { headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(200);
    expect((await rt.get('/files/raw.json')).body).toBe(body);
  });

  it('percent-decodes /files/{path} once: names with spaces, ?, # and %', async () => {
    const name = 'odd name ?#% é.txt';
    const enc = encodeURIComponent(name);
    expect((await rt.put('/files/' + enc, 'odd')).statusCode).toBe(200);
    const list = (await rt.get('/v1/files?path=workspace/')).json() as { entries: Array<{ name: string }> };
    expect(list.entries.map((e) => e.name)).toContain(name);
    expect((await rt.get('/files/' + enc)).body).toBe('odd');
    const content = (await rt.get('/v1/files/content?path=' + encodeURIComponent('workspace/' + name))).json() as {
      content: string;
    };
    expect(content.content).toBe('odd');
  });

  it('GET /files/{path}: 404 missing, 400 directory', async () => {
    let res = await rt.get('/files/nope.txt');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ detail: 'Path not found: workspace/nope.txt', code: 'path_not_found' });
    res = await rt.get('/files/a');
    expect(res.statusCode).toBe(400);
    expect(res.json<{ code: string }>().code).toBe('path_is_directory');
  });
});

describe('listing and content', () => {
  it('lists directories first, then files, alphabetical; size null for dirs', async () => {
    const ns = t.as(t.runtimeKey, 'list-ns');
    for (const p of ['b.txt', 'a.txt', 'z/1.txt', 'm/2.txt', 'm/n/3.txt'])
      await ns.post('/write', { path: p, content: p });
    const body = (await ns.get('/v1/files?path=workspace/')).json() as { entries: any[]; truncated: boolean };
    expect(body.truncated).toBe(false);
    expect(body.entries.map((e) => e.path)).toEqual([
      'workspace/m',
      'workspace/z',
      'workspace/a.txt',
      'workspace/b.txt',
    ]);
    expect(body.entries[0]).toMatchObject({ name: 'm', is_dir: true, size_bytes: null });
    expect(body.entries[2]).toMatchObject({ name: 'a.txt', is_dir: false, size_bytes: 5 });
    expect(body.entries[2].modified_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const rec = (await ns.get('/v1/files?path=workspace/&recursive=true')).json() as { entries: any[] };
    expect(rec.entries.map((e) => e.path)).toEqual([
      'workspace/m',
      'workspace/m/n',
      'workspace/m/n/3.txt',
      'workspace/m/2.txt',
      'workspace/z',
      'workspace/z/1.txt',
      'workspace/a.txt',
      'workspace/b.txt',
    ]);
    // Every path form works on every endpoint.
    for (const form of ['m', '/m', 'workspace/m', '/workspace/m/']) {
      const r = (await ns.get('/v1/files?path=' + encodeURIComponent(form))).json() as { entries: any[] };
      expect(r.entries.map((e) => e.name)).toEqual(['n', '2.txt']);
    }
    expect((await ns.get('/v1/files?path=nope')).statusCode).toBe(404);
    expect((await ns.get('/v1/files?path=a.txt')).statusCode).toBe(400);
  });

  it('caps recursive listings at 1000 entries with truncated: true', async () => {
    const ns = t.as(t.runtimeKey, 'big-list');
    await ns.post('/write', { path: 'd/first.txt', content: 'x' });
    // The files could come from an exec; creating them on disk keeps the test quick.
    const dir = join(t.dataDir, 'workspaces', t.workspaceId, 'namespaces', 'big-list', 'd');
    for (let i = 0; i < 1005; i++) writeFileSync(join(dir, `f${String(i).padStart(4, '0')}`), 'x');
    const body = (await ns.get('/v1/files?path=workspace/&recursive=true')).json() as {
      entries: any[];
      truncated: boolean;
    };
    expect(body.entries.length).toBe(1000);
    expect(body.truncated).toBe(true);
  });

  it('lists a directory of several hundred entries completely and in order (examined in slices)', async () => {
    const ns = t.as(t.runtimeKey, 'wide-list');
    await ns.post('/write', { path: 'w/first.txt', content: 'x' });
    const dir = join(t.dataDir, 'workspaces', t.workspaceId, 'namespaces', 'wide-list', 'w');
    rmSync(join(dir, 'first.txt'));
    const names: string[] = [];
    for (let i = 0; i < 600; i++) {
      const name = `f${String(i).padStart(4, '0')}`;
      writeFileSync(join(dir, name), 'y'.repeat(i % 7));
      names.push(name);
    }
    // Upload temp files live outside the tree: a user file may use their old prefix and is listed.
    for (let i = 0; i < 5; i++) writeFileSync(join(dir, `.trove-tmp-${i}`), 'user file');
    const all = [...Array.from({ length: 5 }, (_, i) => `.trove-tmp-${i}`), ...names];
    const body = (await ns.get('/v1/files?path=w')).json() as { entries: any[]; truncated: boolean };
    expect(body.truncated).toBe(false);
    expect(body.entries.map((e) => e.name)).toEqual(all);
    expect(body.entries.map((e) => e.size_bytes)).toEqual([...Array(5).fill(9), ...names.map((_, i) => i % 7)]);
  });

  it('content API: utf-8 text, binary, and truncation at 1 MiB', async () => {
    await rt.post('/write', { path: 't.txt', content: 'text ✓' });
    let c = (await rt.get('/v1/files/content?path=workspace/t.txt')).json() as any;
    expect(c).toMatchObject({
      path: 'workspace/t.txt',
      size_bytes: 8,
      encoding: 'utf-8',
      content: 'text ✓',
      truncated: false,
    });
    await rt.put('/files/b.bin', Buffer.from([0, 1, 2, 255]));
    c = (await rt.get('/v1/files/content?path=workspace/b.bin')).json();
    expect(c).toMatchObject({ encoding: 'binary', content: null, size_bytes: 4 });
    const big = 'é'.repeat(700_000); // 1.4 MB of 2-byte characters
    await rt.put('/files/big.txt', big);
    c = (await rt.get('/v1/files/content?path=workspace/big.txt')).json();
    expect(c.truncated).toBe(true);
    expect(c.size_bytes).toBe(1_400_000);
    expect(c.encoding).toBe('utf-8');
    expect(c.content.length).toBe(524_288);
    expect((await rt.get('/v1/files/content?path=workspace/missing')).statusCode).toBe(404);
  });
});

describe('delete', () => {
  it('deletes files and directories, 404 when missing, 400 for the root', async () => {
    await rt.post('/write', { path: 'gone/x/y.txt', content: 'y' });
    let res = await rt.post('/delete', { path: 'workspace/gone' });
    expect(res.json()).toEqual({ deleted: 'workspace/gone' });
    res = await rt.post('/delete', { path: 'gone' });
    expect(res.statusCode).toBe(404);
    for (const root of ['', '/', 'workspace', 'workspace/']) {
      res = await rt.post('/delete', { path: root });
      expect(res.statusCode).toBe(400);
      expect(res.json<{ code: string }>().code).toBe('path_is_root');
    }
  });
});

describe('limits and bad input', () => {
  it('413 for uploads over the size limit and over the namespace quota', async () => {
    const ns = t.as(t.runtimeKey, 'quota-ns');
    let res = await ns.put('/files/huge.bin', randomBytes(3 * 1024 * 1024 + 1));
    expect([res.statusCode, res.json()]).toEqual([
      413,
      { detail: 'File is larger than the upload limit of 3145728 bytes', code: 'payload_too_large' },
    ]);
    res = await ns.put('/files/q1.bin', randomBytes(3 * 1024 * 1024));
    expect(res.statusCode).toBe(200);
    res = await ns.put('/files/q2.bin', randomBytes(2 * 1024 * 1024));
    expect([res.statusCode, res.json()]).toEqual([
      413,
      { detail: 'Namespace quota exceeded (limits: 4194304 bytes, unlimited files)', code: 'quota_exceeded' },
    ]);
    // Nothing half-written is left behind.
    const list = (await ns.get('/v1/files?path=workspace/')).json() as { entries: any[] };
    expect(list.entries.map((e) => e.name)).toEqual(['q1.bin']);
    // Overwriting within the quota is fine (the old size is freed).
    expect((await ns.put('/files/q1.bin', randomBytes(3 * 1024 * 1024))).statusCode).toBe(200);
  });

  it('answers bad bodies, paths and namespaces with exact errors', async () => {
    await rt.post('/write', { path: 'e/a.txt', content: 'x' });
    const cases: Array<[Promise<LightMyRequestResponse>, number, object]> = [
      [
        rt.post('/write', { path: 'x.txt' }),
        422,
        { detail: 'body: missing required field "content"', code: 'validation_failed' },
      ],
      [
        rt.post('/write', { path: 'x.txt', content: 5 }),
        422,
        { detail: 'body field "content" must be string', code: 'validation_failed' },
      ],
      [rt.post('/delete', {}), 422, { detail: 'body: missing required field "path"', code: 'validation_failed' }],
      [
        rt.get('/v1/files/content'),
        422,
        { detail: 'querystring: missing required field "path"', code: 'validation_failed' },
      ],
      [
        rt.get('/v1/files?recursive=maybe'),
        422,
        { detail: 'querystring field "recursive" must be boolean', code: 'validation_failed' },
      ],
      [
        rt.post('/write', { path: '../x', content: 'x' }),
        400,
        { detail: 'Path may not contain "..": ../x', code: 'path_invalid' },
      ],
      [
        rt.post('/write', { path: 'a\u0000b', content: 'x' }),
        400,
        { detail: 'Path contains a NUL byte', code: 'path_invalid' },
      ],
      [
        rt.post('/write', { path: 'e', content: 'x' }),
        400,
        { detail: 'Path is a directory: workspace/e', code: 'path_is_directory' },
      ],
      [
        rt.post('/write', { path: 'e/a.txt/b', content: 'x' }),
        400,
        { detail: 'Not a directory: workspace/e/a.txt', code: 'not_a_directory' },
      ],
      [
        rt.put('/files/', 'x'),
        400,
        { detail: 'Cannot write to the namespace root; give a file path', code: 'path_is_root' },
      ],
      [
        rt.get('/files/%ZZ'),
        400,
        { detail: 'URL is not valid percent-encoded UTF-8: /files/%ZZ', code: 'bad_request' },
      ],
      [rt.get('/files/e'), 400, { detail: 'Path is a directory: workspace/e', code: 'path_is_directory' }],
      [
        rt.get('/v1/files?path=e/a.txt'),
        400,
        { detail: 'Not a directory: workspace/e/a.txt', code: 'not_a_directory' },
      ],
      [
        rt.get('/v1/files/content?path=e'),
        400,
        { detail: 'Path is a directory: workspace/e', code: 'path_is_directory' },
      ],
      [rt.get('/v1/files?path=nope'), 404, { detail: 'Path not found: workspace/nope', code: 'path_not_found' }],
      [
        rt.get('/v1/files/content?path=nope'),
        404,
        { detail: 'Path not found: workspace/nope', code: 'path_not_found' },
      ],
      [rt.post('/delete', { path: 'nope' }), 404, { detail: 'Path not found: workspace/nope', code: 'path_not_found' }],
      [rt.get('/nope'), 404, { detail: 'Not found: GET /nope', code: 'not_found' }],
    ];
    for (const [pending, status, error] of cases) {
      const res = await pending;
      expect([res.statusCode, res.json()], JSON.stringify(error)).toEqual([status, error]);
    }
    const malformed = await rt.post('/write', '{"path":', { headers: { 'content-type': 'application/json' } });
    expect([malformed.statusCode, malformed.json()]).toEqual([
      400,
      { detail: expect.stringMatching(/^Malformed JSON body: /), code: 'bad_request' },
    ]);
    for (const bad of ['..', '.', 'a/b', 'x'.repeat(65), 'sp ace']) {
      const res = await t.as(t.runtimeKey, encodeURIComponent(bad)).get('/v1/files');
      expect([res.statusCode, res.json()]).toEqual([400, INVALID_NS]);
    }
  });

  it('refuses a missing or wrong key (401), an admin key (403), no namespace (400), another namespace (403)', async () => {
    const locked = await t.createKey({ namespace: 'files-ns' });
    const requests = (c: Client) => [
      c.post('/write', { path: 'k.txt', content: 'k' }),
      c.put('/files/k.bin', 'k'),
      c.get('/files/k.txt'),
      c.get('/v1/files'),
      c.get('/v1/files/content?path=k.txt'),
      c.post('/delete', { path: 'k.txt' }),
    ];
    const expectAll = async (c: Client, status: number, error: object) => {
      for (const res of await Promise.all(requests(c))) expect([res.statusCode, res.json()]).toEqual([status, error]);
    };
    await expectAll(t.as(null, 'files-ns'), 401, { detail: 'Invalid API key', code: 'unauthorized' });
    await expectAll(t.as('trove-sk-wrong', 'files-ns'), 401, { detail: 'Invalid API key', code: 'unauthorized' });
    await expectAll(t.as(t.adminKey, 'files-ns'), 403, {
      detail: 'Admin keys cannot use runtime endpoints; use a workspace key',
      code: 'scope_forbidden',
    });
    await expectAll(t.as(t.runtimeKey), 400, { detail: 'X-Namespace header required', code: 'namespace_required' });
    await expectAll(t.as(locked.api_key, 'other'), 403, {
      detail: 'This key is locked to namespace "files-ns"',
      code: 'namespace_forbidden',
    });
    // A locked key without the header works in its own namespace.
    const own = await t.as(locked.api_key).post('/write', { path: 'locked.txt', content: 'mine' });
    expect([own.statusCode, own.json()]).toEqual([200, { path: 'workspace/locked.txt', size_bytes: 4 }]);
    expect((await rt.get('/files/locked.txt')).body).toBe('mine');
  });

  it('truncates downloads at the read cap with X-Trove-Truncated and X-Trove-Size', async () => {
    const small = await startTestApp({ env: { TROVE_MAX_READ_BYTES: '1000' } });
    try {
      const ns = small.as(small.runtimeKey, 'cap');
      await ns.put('/files/big.bin', randomBytes(5000));
      const res = await ns.get('/files/big.bin');
      expect(res.headers['x-trove-truncated']).toBe('1');
      expect(res.headers['x-trove-size']).toBe('5000');
      expect(res.rawPayload.byteLength).toBe(1000);
    } finally {
      await small.close();
    }
  });
});
