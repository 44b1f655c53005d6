/**
 * snapshots/routes.ts in-process against docs/protocol.md: create, list, restore, delete, events, isolation,
 * fidelity, and the refusals (404, 409, 413, 422, keys and namespaces). Kill -9 during a restore and a
 * restart with a smaller quota are in test/e2e/snapshots.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { buildFixtureTree, manifest } from './support.js';
import { errorOf, json, ok } from '../../../../test/helpers/http.js';
import type { SnapshotView as Snapshot } from '../../src/snapshots/service.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));

let server: TestApp;
type Api = (path: string, init?: RequestInit) => Promise<Response>;
const api = (s: TestApp, key: string, ns?: string): Api => s.fetcher(key, ns);
function rtFor(s: TestApp, ns: string, key = s.runtimeKey) {
  return api(s, key, ns);
}

async function fill(rt: Api) {
  await ok(rt('/write', json('POST', { path: 'a.txt', content: 'alpha' })));
  await ok(rt('/write', json('POST', { path: 'dir/nested/b.txt', content: 'beta' })));
  await ok(rt('/files/bin/blob.bin', { method: 'PUT', body: randomBytes(200_000) }));
}

async function read(rt: Api, path: string): Promise<number | string> {
  const r = await rt(`/files/${path}`);
  return r.status === 200 ? await r.text() : r.status;
}

async function events(s: TestApp, types: string) {
  const r = await ok<{ events: Array<{ type: string; namespace: string; data: Record<string, unknown> }> }>(
    api(s, s.adminKey)(`/v1/workspaces/${s.workspaceId}/events?types=${types}&limit=200`),
  );
  return r.events;
}

beforeAll(async () => {
  server = await startTestApp({ exec: true, env: { TROVE_SNAPSHOT_MAX_PER_NAMESPACE: '3' } });
});
afterAll(() => server?.close());

describe('create, list, restore, delete', () => {
  it('restores the namespace exactly and reports events', async () => {
    const rt = rtFor(server, 'snap-main');
    await fill(rt);
    const blob = Buffer.from(await (await rt('/files/bin/blob.bin')).arrayBuffer());
    const snap = await ok<Snapshot>(rt('/v1/snapshots', json('POST', { label: 'before refactor' })));
    expect(snap).toEqual({
      snapshot_id: expect.stringMatching(/^snap-[0-9a-f]{24}$/),
      namespace: 'snap-main',
      label: 'before refactor',
      size_bytes: expect.any(Number),
      file_count: 3,
      created_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
    });
    expect(snap.size_bytes).toBeGreaterThan(200_000); // random bytes do not compress

    // Change everything: overwrite, delete, add.
    await ok(rt('/write', json('POST', { path: 'a.txt', content: 'changed' })));
    await ok(rt('/delete', json('POST', { path: 'dir' })));
    await ok(rt('/write', json('POST', { path: 'new/c.txt', content: 'gamma' })));

    const restored = await ok<{ files_restored: number }>(
      rt(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }),
    );
    expect(restored).toEqual({ files_restored: 3 });
    expect(await read(rt, 'a.txt')).toBe('alpha');
    expect(await read(rt, 'dir/nested/b.txt')).toBe('beta');
    expect(await read(rt, 'new/c.txt')).toBe(404);
    expect(Buffer.from(await (await rt('/files/bin/blob.bin')).arrayBuffer()).equals(blob)).toBe(true);
    // Writes work normally afterwards (same path, new tree).
    await ok(rt('/write', json('POST', { path: 'after.txt', content: 'after' })));
    expect(await read(rt, 'after.txt')).toBe('after');

    const second = await ok<Snapshot>(rt('/v1/snapshots', json('POST', { label: null })));
    const list = await ok<{ snapshots: Snapshot[] }>(rt('/v1/snapshots'));
    expect(list.snapshots.map((s) => s.snapshot_id)).toEqual([second.snapshot_id, snap.snapshot_id]);
    expect(list.snapshots[1]).toEqual(snap);

    expect(await ok(rt(`/v1/snapshots/${snap.snapshot_id}`, { method: 'DELETE' }))).toEqual({
      snapshot_id: snap.snapshot_id,
      deleted: true,
    });
    expect((await ok<{ snapshots: Snapshot[] }>(rt('/v1/snapshots'))).snapshots.map((s) => s.snapshot_id)).toEqual([
      second.snapshot_id,
    ]);
    expect(await errorOf(rt(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }))).toEqual({
      status: 404,
      code: 'snapshot_not_found',
      detail: `Snapshot not found: ${snap.snapshot_id}`,
    });
    expect((await errorOf(rt(`/v1/snapshots/${snap.snapshot_id}`, { method: 'DELETE' }))).status).toBe(404);
    // The blob went with it.
    expect(
      existsSync(join(server.dataDir, 'blobs', 'snapshots', server.workspaceId, `${snap.snapshot_id}.tar.gz`)),
    ).toBe(false);

    const evs = (await events(server, 'snapshot.created,snapshot.restored,snapshot.deleted')).filter(
      (e) => e.namespace === 'snap-main',
    );
    expect(evs.map((e) => [e.type, e.data])).toEqual([
      ['snapshot.deleted', { snapshot_id: snap.snapshot_id }],
      ['snapshot.created', { snapshot_id: second.snapshot_id, label: null }],
      ['snapshot.restored', { snapshot_id: snap.snapshot_id, files_restored: 3 }],
      ['snapshot.created', { snapshot_id: snap.snapshot_id, label: 'before refactor' }],
    ]);
  });

  it('accepts every body form clients send, and validates the label', async () => {
    const rt = rtFor(server, 'snap-bodies');
    await ok(rt('/write', json('POST', { path: 'x.txt', content: 'x' })));
    const noBody = await ok<Snapshot>(rt('/v1/snapshots', { method: 'POST' }));
    expect(noBody.label).toBeNull();
    const emptyJson = await ok<Snapshot>(
      rt('/v1/snapshots', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' }),
    );
    expect(emptyJson.label).toBeNull();
    expect((await ok<Snapshot>(rt('/v1/snapshots', json('POST', {})))).label).toBeNull();
    const long = await errorOf(rt('/v1/snapshots', json('POST', { label: 'x'.repeat(129) })));
    expect([long.status, long.code]).toEqual([422, 'validation_failed']);
    expect(long.detail).toContain('label');
    const longest = await ok<Snapshot>(rt('/v1/snapshots', json('POST', { label: 'y'.repeat(128) })));
    expect(longest.label).toBe('y'.repeat(128));
    expect((await errorOf(rt('/v1/snapshots', json('POST', { label: 5 })))).status).toBe(422);

    // Restore: no body at all, and a JSON content type with an empty body (what the Python client may send).
    const id = longest.snapshot_id;
    expect(await ok(rt(`/v1/snapshots/${id}/restore`, { method: 'POST' }))).toEqual({ files_restored: 1 });
    expect(
      await ok(
        rt(`/v1/snapshots/${id}/restore`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '',
        }),
      ),
    ).toEqual({ files_restored: 1 });
    expect(await ok(rt(`/v1/snapshots/${id}/restore`, json('POST', {})))).toEqual({ files_restored: 1 });
  });

  it('keeps at most TROVE_SNAPSHOT_MAX_PER_NAMESPACE snapshots, dropping the oldest', async () => {
    const rt = rtFor(server, 'snap-limit');
    await ok(rt('/write', json('POST', { path: 'x.txt', content: 'x' })));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await ok<Snapshot>(rt('/v1/snapshots', json('POST', { label: `n${i}` })))).snapshot_id);
    const list = await ok<{ snapshots: Snapshot[] }>(rt('/v1/snapshots'));
    expect(list.snapshots.map((s) => s.snapshot_id)).toEqual(ids.slice(2).reverse());
    const deleted = (await events(server, 'snapshot.deleted')).filter((e) => e.namespace === 'snap-limit');
    expect(deleted.map((e) => e.data).reverse()).toEqual([
      { snapshot_id: ids[0], reason: 'limit' },
      { snapshot_id: ids[1], reason: 'limit' },
    ]);
  });
});

describe('fidelity and consistency', () => {
  it('restores a tree with every kind of entry exactly (manifest: path, type, mode, size, sha256, link target, mtime)', async () => {
    const rt = rtFor(server, 'manifest');
    await ok(rt('/write', json('POST', { path: 'seed.txt', content: 'seed' })));
    const nsRoot = join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', 'manifest');
    // Nested and empty dirs, binary/empty/large files, symlinks (inside, dangling, absolute, relative out),
    // unicode and non-UTF-8 names, long paths, modes 0600/0755/0444/1644 and a 0555 dir, sub-second mtimes.
    await buildFixtureTree(nsRoot);
    const before = await manifest(nsRoot);
    const snap = await ok<Snapshot>(rt('/v1/snapshots', json('POST', { label: 'fixture' })));
    expect(snap.file_count).toBe(before.filter((e) => e.type !== 'dir').length);

    await ok(rt('/write', json('POST', { path: 'README.md', content: 'changed' })));
    await ok(rt('/delete', json('POST', { path: 'src' })));
    await ok(rt('/write', json('POST', { path: 'added/new.txt', content: 'new' })));
    expect(await manifest(nsRoot)).not.toEqual(before);

    const res = await ok<{ files_restored: number }>(
      rt(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }),
    );
    expect(res.files_restored).toBe(snap.file_count);
    expect(await manifest(nsRoot)).toEqual(before);
  });

  it.skipIf(!hasBwrap)(
    'a snapshot requested while an exec runs waits for it: it holds all of the exec’s writes, never half',
    async () => {
      const rt = rtFor(server, 'consistent');
      const running = rt(
        '/v1/exec',
        json('POST', { command: 'echo 1 > workspace/first; sleep 1; echo 2 > workspace/second' }),
      );
      const deadline = Date.now() + 10_000;
      while ((await read(rt, 'first')) !== '1\n' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // The exec is now between its two writes: a snapshot taken at this instant would hold `first` only.
      const snap = await ok<Snapshot>(rt('/v1/snapshots', json('POST', {})));
      expect(await ok<{ exit_code: number }>(running)).toMatchObject({ exit_code: 0 });
      await ok(rt('/delete', json('POST', { path: 'first' })));
      await ok(rt('/delete', json('POST', { path: 'second' })));
      expect(await ok(rt(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }))).toEqual({
        files_restored: 2,
      });
      expect([await read(rt, 'first'), await read(rt, 'second')]).toEqual(['1\n', '2\n']);
    },
  );
});

describe('isolation', () => {
  it('a snapshot of namespace A cannot be listed, restored or deleted through namespace B', async () => {
    const a = rtFor(server, 'iso-a');
    const b = rtFor(server, 'iso-b');
    await ok(a('/write', json('POST', { path: 'secret.txt', content: 'A only' })));
    await ok(b('/write', json('POST', { path: 'mine.txt', content: 'B' })));
    const snap = await ok<Snapshot>(a('/v1/snapshots', json('POST', { label: 'a' })));
    expect((await ok<{ snapshots: Snapshot[] }>(b('/v1/snapshots'))).snapshots).toEqual([]);
    const notFound = { status: 404, code: 'snapshot_not_found', detail: `Snapshot not found: ${snap.snapshot_id}` };
    expect(await errorOf(b(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }))).toEqual(notFound);
    expect(await errorOf(b(`/v1/snapshots/${snap.snapshot_id}`, { method: 'DELETE' }))).toEqual(notFound);
    expect(await read(b, 'secret.txt')).toBe(404);

    // A key locked to B, even naming A's id, gets "not found" (and A's header → 403).
    const admin = api(server, server.adminKey);
    const locked = await ok<{ api_key: string }>(
      admin(`/v1/workspaces/${server.workspaceId}/keys`, json('POST', { name: 'only-b', namespace: 'iso-b' })),
      201,
    );
    const lb = api(server, locked.api_key);
    expect(await errorOf(lb(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }))).toEqual(notFound);
    expect((await errorOf(api(server, locked.api_key, 'iso-a')('/v1/snapshots'))).status).toBe(403);
    // Admin keys cannot use runtime endpoints.
    expect((await errorOf(api(server, server.adminKey, 'iso-a')('/v1/snapshots'))).status).toBe(403);
    // Malformed and unknown ids are plain 404s.
    for (const id of ['nope', 'snap-', `snap-${'0'.repeat(24)}`, '..%2F..%2Fetc']) {
      expect((await errorOf(a(`/v1/snapshots/${id}/restore`, { method: 'POST' }))).status).toBe(404);
    }
    // A still has it.
    expect((await ok<{ snapshots: Snapshot[] }>(a('/v1/snapshots'))).snapshots.map((s) => s.snapshot_id)).toEqual([
      snap.snapshot_id,
    ]);
  });

  it('deleting a namespace deletes its snapshots and their blobs', async () => {
    const rt = rtFor(server, 'doomed');
    await ok(rt('/write', json('POST', { path: 'x.txt', content: 'x' })));
    const s1 = await ok<Snapshot>(rt('/v1/snapshots', json('POST', {})));
    const s2 = await ok<Snapshot>(rt('/v1/snapshots', json('POST', {})));
    const blobDir = join(server.dataDir, 'blobs', 'snapshots', server.workspaceId);
    expect(readdirSync(blobDir)).toEqual(
      expect.arrayContaining([`${s1.snapshot_id}.tar.gz`, `${s2.snapshot_id}.tar.gz`]),
    );
    await ok(
      api(server, server.adminKey)(`/v1/workspaces/${server.workspaceId}/namespaces/doomed`, { method: 'DELETE' }),
    );
    expect(readdirSync(blobDir)).not.toContain(`${s1.snapshot_id}.tar.gz`);
    expect(readdirSync(blobDir)).not.toContain(`${s2.snapshot_id}.tar.gz`);
    expect((await ok<{ snapshots: Snapshot[] }>(rt('/v1/snapshots'))).snapshots).toEqual([]);
    const deleted = (await events(server, 'snapshot.deleted')).filter((e) => e.namespace === 'doomed');
    expect(deleted.map((e) => e.data.reason)).toEqual(['namespace_deleted', 'namespace_deleted']);
    const gone = (await events(server, 'namespace.deleted')).filter((e) => e.namespace === 'doomed');
    expect(gone.map((e) => e.data)).toEqual([{ namespace: 'doomed' }]);
    // The tree went too, with nothing left on the side.
    const wsDir = join(server.dataDir, 'workspaces', server.workspaceId);
    expect(existsSync(join(wsDir, 'namespaces', 'doomed'))).toBe(false);
    expect(readdirSync(join(wsDir, '.trees'))).toEqual([]);
    // Deleting it again: it no longer exists.
    expect(
      await errorOf(
        api(server, server.adminKey)(`/v1/workspaces/${server.workspaceId}/namespaces/doomed`, { method: 'DELETE' }),
      ),
    ).toEqual({
      status: 404,
      code: 'namespace_not_found',
      detail: 'Namespace not found: doomed',
    });
    // Used again, it starts empty.
    expect(await read(rt, 'x.txt')).toBe(404);
  });
});

describe('restore safety', () => {
  it('rejects a malicious archive planted in the blob store and leaves the namespace untouched', async () => {
    const rt = rtFor(server, 'planted');
    await ok(rt('/write', json('POST', { path: 'keep.txt', content: 'keep' })));
    const snap = await ok<Snapshot>(rt('/v1/snapshots', json('POST', {})));
    // A tar whose only entry climbs out of the namespace.
    const header = Buffer.alloc(512);
    header.write('../../../../../../tmp/trove-planted.txt', 0);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write('00000000005\0', 124);
    header.write('14000000000\0', 136);
    header.write('0', 156);
    header.write('ustar\u000000', 257, 'latin1');
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    const tar = Buffer.concat([header, Buffer.from('pwned'), Buffer.alloc(507), Buffer.alloc(1024)]);
    writeFileSync(
      join(server.dataDir, 'blobs', 'snapshots', server.workspaceId, `${snap.snapshot_id}.tar.gz`),
      gzipSync(tar),
    );
    await ok(rt('/write', json('POST', { path: 'later.txt', content: 'later' })));

    const err = await errorOf(rt(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }));
    expect(err).toEqual({
      status: 422,
      code: 'snapshot_invalid',
      detail:
        'Snapshot cannot be restored: entry "../../../../../../tmp/trove-planted.txt" contains ".." (path traversal)',
    });
    expect(existsSync('/tmp/trove-planted.txt')).toBe(false);
    expect(await read(rt, 'keep.txt')).toBe('keep');
    expect(await read(rt, 'later.txt')).toBe('later');
  });
});

describe('archive and import', () => {
  it('downloads a snapshot as .tar.gz and imports it back as a new snapshot', async () => {
    const rt = rtFor(server, 'archive');
    await ok(rt('/write', json('POST', { path: 'a.txt', content: 'alpha' })));
    const snap = await ok<Snapshot>(rt('/v1/snapshots', json('POST', { label: 'to export' })));
    const res = await rt(`/v1/snapshots/${snap.snapshot_id}/archive`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${snap.snapshot_id}.tar.gz"`);
    const archive = Buffer.from(await res.arrayBuffer());
    expect(archive.length).toBe(snap.size_bytes);

    const other = rtFor(server, 'archive-copy');
    const imported = await ok<Snapshot>(
      other('/v1/snapshots/import?label=imported', {
        method: 'POST',
        headers: { 'content-type': 'application/gzip' },
        body: archive,
      }),
      201,
    );
    expect(imported).toMatchObject({ namespace: 'archive-copy', label: 'imported', file_count: 1 });
    expect(await ok(other(`/v1/snapshots/${imported.snapshot_id}/restore`, { method: 'POST' }))).toEqual({
      files_restored: 1,
    });
    expect(await read(other, 'a.txt')).toBe('alpha');
  });

  it('refuses what is not an archive with exact errors', async () => {
    const rt = rtFor(server, 'archive');
    const unsupported = (type: string) =>
      `Unsupported Content-Type ${type}: send the archive as the raw body with Content-Type: application/gzip (a .tar.gz) or application/x-tar (a plain .tar)`;
    const cases: Array<[RequestInit, number, string, string]> = [
      [{ method: 'POST', body: 'abc' }, 415, 'unsupported_media_type', unsupported('(none)')],
      [
        { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'abc' },
        415,
        'unsupported_media_type',
        unsupported('"text/plain"'),
      ],
      [
        { method: 'POST', headers: { 'content-type': 'application/gzip' }, body: 'abc' },
        422,
        'snapshot_invalid',
        'Archive cannot be imported: the compressed data is corrupt or truncated (not gzip data; send a plain tar as application/x-tar)',
      ],
      [
        { method: 'POST', headers: { 'content-type': 'application/x-tar' }, body: 'abc' },
        422,
        'snapshot_invalid',
        'Archive cannot be imported: the archive has no end-of-archive marker (truncated)',
      ],
    ];
    for (const [init, status, code, detail] of cases) {
      expect(await errorOf(rt('/v1/snapshots/import', init))).toEqual({ status, code, detail });
    }
    expect(await errorOf(rt('/v1/snapshots/snap-nope/archive'))).toEqual({
      status: 404,
      code: 'snapshot_not_found',
      detail: 'Snapshot not found: snap-nope',
    });
  });
});

describe('who may use snapshots', () => {
  it('refuses missing keys (401), admin keys (403) and requests without a namespace (400)', async () => {
    const cases: Array<[string | null, string | undefined, { status: number; code: string; detail: string }]> = [
      [null, 'snap-main', { status: 401, code: 'unauthorized', detail: 'Invalid API key' }],
      [
        server.adminKey,
        'snap-main',
        {
          status: 403,
          code: 'scope_forbidden',
          detail: 'Admin keys cannot use runtime endpoints; use a workspace key',
        },
      ],
      [
        server.runtimeKey,
        undefined,
        { status: 400, code: 'namespace_required', detail: 'X-Namespace header required' },
      ],
    ];
    for (const [key, ns, error] of cases) {
      const c = server.fetcher(key, ns);
      for (const [path, init] of [
        ['/v1/snapshots', {}],
        ['/v1/snapshots', json('POST', {})],
        ['/v1/snapshots/snap-x/restore', { method: 'POST' }],
        ['/v1/snapshots/snap-x', { method: 'DELETE' }],
        ['/v1/snapshots/snap-x/archive', {}],
      ] as Array<[string, RequestInit]>) {
        expect(await errorOf(c(path, init)), `${init.method ?? 'GET'} ${path}`).toEqual(error);
      }
    }
  });
});
