/** Files API behaviour against docs/protocol.md, over real HTTP. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, api, type StartedServer } from '../../../../test/helpers/server.js';

let server: StartedServer;
let rt: ReturnType<typeof api>;
const json = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

beforeAll(async () => {
  server = await startServer({ env: { TROVE_QUOTA_BYTES: String(4 * 1024 * 1024), TROVE_MAX_UPLOAD_BYTES: String(3 * 1024 * 1024) } });
  rt = api(server, server.runtimeKey, 'files-ns');
});
afterAll(async () => {
  await server?.close();
});

describe('write and read', () => {
  it('POST /write creates parents, overwrites, and reports workspace/ paths', async () => {
    let res = await rt('/write', json({ path: 'workspace/a/b/c.txt', content: 'héllo' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ path: 'workspace/a/b/c.txt', size_bytes: 6 });
    res = await rt('/write', json({ path: '/a/b/c.txt', content: 'bye' }));
    expect(await res.json()).toEqual({ path: 'workspace/a/b/c.txt', size_bytes: 3 });
    res = await rt('/files/a/b/c.txt');
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(await res.text()).toBe('bye');
  });

  it('round-trips binary files of 0 B, 1 B and 1 MiB with checksums', async () => {
    for (const size of [0, 1, 1024 * 1024]) {
      const data = randomBytes(size);
      const put = await rt(`/files/bin/f${size}.bin`, { method: 'PUT', body: data });
      expect(put.status).toBe(200);
      expect(await put.json()).toEqual({ path: `workspace/bin/f${size}.bin`, size_bytes: size });
      const got = Buffer.from(await (await rt(`/files/bin/f${size}.bin`)).arrayBuffer());
      expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('PUT accepts any content type, including application/json, as raw bytes', async () => {
    const body = '{"not": "parsed"';
    const res = await rt('/files/raw.json', { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(200);
    expect(await (await rt('/files/raw.json')).text()).toBe(body);
  });

  it('percent-decodes /files/{path} once: names with spaces, ?, # and %', async () => {
    const name = 'odd name ?#% é.txt';
    const enc = encodeURIComponent(name);
    expect((await rt('/files/' + enc, { method: 'PUT', body: 'odd' })).status).toBe(200);
    const list = (await (await rt('/v1/files?path=workspace/')).json()) as { entries: Array<{ name: string }> };
    expect(list.entries.map((e) => e.name)).toContain(name);
    expect(await (await rt('/files/' + enc)).text()).toBe('odd');
    const content = (await (await rt('/v1/files/content?path=' + encodeURIComponent('workspace/' + name))).json()) as { content: string };
    expect(content.content).toBe('odd');
  });

  it('GET /files/{path}: 404 missing, 400 directory', async () => {
    let res = await rt('/files/nope.txt');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ detail: 'Path not found: workspace/nope.txt', code: 'path_not_found' });
    res = await rt('/files/a');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('path_is_directory');
  });
});

describe('listing and content', () => {
  it('lists directories first, then files, alphabetical; size null for dirs', async () => {
    const ns = api(server, server.runtimeKey, 'list-ns');
    for (const p of ['b.txt', 'a.txt', 'z/1.txt', 'm/2.txt', 'm/n/3.txt']) await ns('/write', json({ path: p, content: p }));
    const body = (await (await ns('/v1/files?path=workspace/')).json()) as { entries: any[]; truncated: boolean };
    expect(body.truncated).toBe(false);
    expect(body.entries.map((e) => e.path)).toEqual(['workspace/m', 'workspace/z', 'workspace/a.txt', 'workspace/b.txt']);
    expect(body.entries[0]).toMatchObject({ name: 'm', is_dir: true, size_bytes: null });
    expect(body.entries[2]).toMatchObject({ name: 'a.txt', is_dir: false, size_bytes: 5 });
    expect(body.entries[2].modified_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const rec = (await (await ns('/v1/files?path=workspace/&recursive=true')).json()) as { entries: any[] };
    expect(rec.entries.map((e) => e.path)).toEqual([
      'workspace/m', 'workspace/m/n', 'workspace/m/n/3.txt', 'workspace/m/2.txt', 'workspace/z', 'workspace/z/1.txt', 'workspace/a.txt', 'workspace/b.txt',
    ]);
    // Every path form works on every endpoint.
    for (const form of ['m', '/m', 'workspace/m', '/workspace/m/']) {
      const r = (await (await ns('/v1/files?path=' + encodeURIComponent(form))).json()) as { entries: any[] };
      expect(r.entries.map((e) => e.name)).toEqual(['n', '2.txt']);
    }
    expect((await ns('/v1/files?path=nope')).status).toBe(404);
    expect((await ns('/v1/files?path=a.txt')).status).toBe(400);
  });

  it('caps recursive listings at 1000 entries with truncated: true', async () => {
    const ns = api(server, server.runtimeKey, 'big-list');
    await ns('/write', json({ path: 'd/first.txt', content: 'x' }));
    // The files could come from an exec; creating them on disk keeps the test quick.
    const dir = join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', 'big-list', 'd');
    for (let i = 0; i < 1005; i++) writeFileSync(join(dir, `f${String(i).padStart(4, '0')}`), 'x');
    const body = (await (await ns('/v1/files?path=workspace/&recursive=true')).json()) as { entries: any[]; truncated: boolean };
    expect(body.entries.length).toBe(1000);
    expect(body.truncated).toBe(true);
  });

  it('lists a directory of several hundred entries completely and in order (examined in slices)', async () => {
    const ns = api(server, server.runtimeKey, 'wide-list');
    await ns('/write', json({ path: 'w/first.txt', content: 'x' }));
    const dir = join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', 'wide-list', 'w');
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
    const body = (await (await ns('/v1/files?path=w')).json()) as { entries: any[]; truncated: boolean };
    expect(body.truncated).toBe(false);
    expect(body.entries.map((e) => e.name)).toEqual(all);
    expect(body.entries.map((e) => e.size_bytes)).toEqual([...Array(5).fill(9), ...names.map((_, i) => i % 7)]);
  });

  it('content API: utf-8 text, binary, and truncation at 1 MiB', async () => {
    await rt('/write', json({ path: 't.txt', content: 'text ✓' }));
    let c = (await (await rt('/v1/files/content?path=workspace/t.txt')).json()) as any;
    expect(c).toMatchObject({ path: 'workspace/t.txt', size_bytes: 8, encoding: 'utf-8', content: 'text ✓', truncated: false });
    await rt('/files/b.bin', { method: 'PUT', body: Buffer.from([0, 1, 2, 255]) });
    c = await (await rt('/v1/files/content?path=workspace/b.bin')).json();
    expect(c).toMatchObject({ encoding: 'binary', content: null, size_bytes: 4 });
    const big = 'é'.repeat(700_000); // 1.4 MB of 2-byte characters
    await rt('/files/big.txt', { method: 'PUT', body: big });
    c = await (await rt('/v1/files/content?path=workspace/big.txt')).json();
    expect(c.truncated).toBe(true);
    expect(c.size_bytes).toBe(1_400_000);
    expect(c.encoding).toBe('utf-8');
    expect(c.content.length).toBe(524_288);
    expect((await rt('/v1/files/content?path=workspace/missing')).status).toBe(404);
  });
});

describe('delete', () => {
  it('deletes files and directories, 404 when missing, 400 for the root', async () => {
    await rt('/write', json({ path: 'gone/x/y.txt', content: 'y' }));
    let res = await rt('/delete', json({ path: 'workspace/gone' }));
    expect(await res.json()).toEqual({ deleted: 'workspace/gone' });
    res = await rt('/delete', json({ path: 'gone' }));
    expect(res.status).toBe(404);
    for (const root of ['', '/', 'workspace', 'workspace/']) {
      res = await rt('/delete', json({ path: root }));
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('path_is_root');
    }
  });
});

describe('limits and bad input', () => {
  it('413 for uploads over the size limit and over the namespace quota', async () => {
    const ns = api(server, server.runtimeKey, 'quota-ns');
    let res = await ns('/files/huge.bin', { method: 'PUT', body: randomBytes(3 * 1024 * 1024 + 1) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe('payload_too_large');
    res = await ns('/files/q1.bin', { method: 'PUT', body: randomBytes(3 * 1024 * 1024) });
    expect(res.status).toBe(200);
    res = await ns('/files/q2.bin', { method: 'PUT', body: randomBytes(2 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string; detail: string }).code).toBe('quota_exceeded');
    // Nothing half-written is left behind.
    const list = (await (await ns('/v1/files?path=workspace/')).json()) as { entries: any[] };
    expect(list.entries.map((e) => e.name)).toEqual(['q1.bin']);
    // Overwriting within the quota is fine (the old size is freed).
    expect((await ns('/files/q1.bin', { method: 'PUT', body: randomBytes(3 * 1024 * 1024) })).status).toBe(200);
  });

  it('422 for bodies that fail validation, 400 for malformed JSON and bad namespaces', async () => {
    let res = await rt('/write', json({ path: 'x.txt' }));
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({ detail: 'body: missing required field "content"', code: 'validation_failed' });
    res = await rt('/write', json({ path: 'x.txt', content: 5 }));
    expect(res.status).toBe(422);
    res = await rt('/write', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"path":' });
    expect(res.status).toBe(400);
    for (const bad of ['..', '.', 'a/b', 'x'.repeat(65), 'sp ace']) {
      res = await api(server, server.runtimeKey, encodeURIComponent(bad))('/v1/files');
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('namespace_invalid');
    }
    res = await rt('/nope');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { detail: string }).detail).toContain('Not found');
  });

  it('truncates downloads at the read cap with X-Trove-Truncated and X-Trove-Size', async () => {
    const small = await startServer({ env: { TROVE_MAX_READ_BYTES: '1000' } });
    try {
      const ns = api(small, small.runtimeKey, 'cap');
      await ns('/files/big.bin', { method: 'PUT', body: randomBytes(5000) });
      const res = await ns('/files/big.bin');
      expect(res.headers.get('x-trove-truncated')).toBe('1');
      expect(res.headers.get('x-trove-size')).toBe('5000');
      expect((await res.arrayBuffer()).byteLength).toBe(1000);
    } finally {
      await small.close();
    }
  });
});
