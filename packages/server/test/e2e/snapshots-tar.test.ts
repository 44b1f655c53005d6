/**
 * Tar in and out over real HTTP: GET /v1/snapshots/{id}/archive streams the stored .tar.gz, and
 * POST /v1/snapshots/import makes a snapshot of an uploaded tar, validated like a restore and stored in
 * our own format. Round trip byte for byte, bounded memory on a 1 GiB archive, the hostile archives of the
 * restore tests, auth and scope.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fsp, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { HOSTILE_LIMITS, hostileArchives } from '../snapshots/hostile-archives.js';
import { buildFixtureTree, manifest, pseudoRandom, rawEntry, rmTree } from '../snapshots/support.js';
import { errorOf, json, ok } from '../../../../test/helpers/http.js';
import type { SnapshotView as Snapshot } from '../../src/snapshots/service.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const hasGnuTar = spawnSync('tar', ['--version']).stdout?.toString().includes('GNU tar') ?? false;

let server: StartedServer;
let limited: StartedServer;
const work = mkdtempSync(join(tmpdir(), 'trove-tar-e2e-'));

beforeAll(async () => {
  [server, limited] = await Promise.all([
    startServer(),
    startServer({
      env: {
        TROVE_QUOTA_BYTES: String(HOSTILE_LIMITS.maxBytes),
        TROVE_QUOTA_FILES: String(HOSTILE_LIMITS.maxFiles),
        TROVE_MAX_UPLOAD_BYTES: String(HOSTILE_LIMITS.maxEntryBytes),
      },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.close(), limited?.close()]);
  await rmTree(work);
});

function importInit(body: Uint8Array, type = 'application/gzip'): RequestInit {
  return { method: 'POST', headers: { 'content-type': type }, body: new Uint8Array(body) };
}

async function download(rt: ReturnType<typeof api>, id: string): Promise<Buffer> {
  const res = await rt(`/v1/snapshots/${id}/archive`);
  expect(res.status).toBe(200);
  const body = Buffer.from(await res.arrayBuffer());
  expect(res.headers.get('content-type')).toBe('application/gzip');
  expect(res.headers.get('content-length')).toBe(String(body.length));
  expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${id}.tar.gz"`);
  return body;
}

const nsRootOf = (s: StartedServer, ns: string) => join(s.dataDir, 'workspaces', s.workspaceId, 'namespaces', ns);
const blobsOf = (s: StartedServer) => join(s.dataDir, 'blobs', 'snapshots', s.workspaceId);

async function events(s: StartedServer, ns: string) {
  const r = await ok<{ events: Array<{ type: string; data: Record<string, unknown> }> }>(
    api(s, s.adminKey)(`/v1/workspaces/${s.workspaceId}/events?types=snapshot.created&namespace=${ns}&limit=200`),
  );
  return r.events;
}

describe('export → import round trip', () => {
  it('an exported snapshot imports into another namespace as the same archive and restores the same tree, byte for byte', async () => {
    const src = api(server, server.runtimeKey, 'tar-src');
    const dst = api(server, server.runtimeKey, 'tar-dst');
    await ok(src('/write', json('POST', { path: 'seed.txt', content: 'seed' })));
    const root = nsRootOf(server, 'tar-src');
    // Modes, symlinks (inside, dangling, absolute, relative out), empty directories, unicode and non-UTF-8
    // names, long paths, sub-second mtimes; plus hard links and a sparse file.
    await buildFixtureTree(root);
    await fsp.writeFile(join(root, 'linked.txt'), 'one inode, three names\n');
    await fsp.link(join(root, 'linked.txt'), join(root, 'src/hard-1'));
    await fsp.link(join(root, 'linked.txt'), join(root, 'hard-2'));
    const fh = await fsp.open(join(root, 'sparse.bin'), 'w');
    await fh.truncate(256 * MiB);
    await fh.write(pseudoRandom(8192, 5), 0, 8192, 128 * MiB);
    await fh.close();
    const before = await manifest(root);

    const snap = await ok<Snapshot>(src('/v1/snapshots', json('POST', { label: 'to export' })));
    const archive = await download(src, snap.snapshot_id);
    expect(archive.length).toBe(snap.size_bytes);
    if (hasGnuTar) {
      const listing = execFileSync('tar', ['-tvzf', '-'], { input: archive, maxBuffer: 64 * MiB }).toString();
      expect(listing).toMatch(/^lrwxrwxrwx .* link-outside-absolute -> \/etc\/passwd$/m);
      expect(listing).toMatch(/^hrw-r--r-- .* src\/hard-1 link to hard-2$/m);
      expect(listing).toMatch(/^drwxr-xr-x .* empty-dir\/$/m);
      expect(listing).toMatch(/^-rw-r--r-- .* 268435456 .* sparse\.bin$/m);
    }

    const imported = await ok<Snapshot>(
      dst(`/v1/snapshots/import?label=${encodeURIComponent('from tar-src')}`, importInit(archive)),
      201,
    );
    expect(imported).toEqual({
      snapshot_id: expect.stringMatching(/^snap-[0-9a-f]{24}$/),
      namespace: 'tar-dst',
      label: 'from tar-src',
      size_bytes: snap.size_bytes,
      file_count: snap.file_count,
      created_at: expect.any(String),
    });
    // Normalised into our own format, which is deterministic: the very same bytes.
    expect((await download(dst, imported.snapshot_id)).equals(archive)).toBe(true);
    // A plain tar is accepted too, and stored the same way.
    const fromTar = await ok<Snapshot>(
      dst('/v1/snapshots/import', importInit(gunzipSync(archive), 'application/x-tar')),
      201,
    );
    expect(fromTar.label).toBeNull();
    expect((await download(dst, fromTar.snapshot_id)).equals(archive)).toBe(true);

    expect(await ok(dst(`/v1/snapshots/${imported.snapshot_id}/restore`, { method: 'POST' }))).toEqual({
      files_restored: snap.file_count,
    });
    const dstRoot = nsRootOf(server, 'tar-dst');
    expect(await manifest(dstRoot)).toEqual(before);
    const [a, b, c] = await Promise.all(['linked.txt', 'src/hard-1', 'hard-2'].map((p) => fsp.stat(join(dstRoot, p))));
    expect([b!.ino, c!.ino, a!.nlink]).toEqual([a!.ino, a!.ino, 3]);
    expect((await fsp.stat(join(dstRoot, 'sparse.bin'))).blocks * 512).toBeLessThan(MiB);
    expect(await fsp.readlink(join(dstRoot, 'link-outside-absolute'))).toBe('/etc/passwd');

    // Listed like any snapshot; the event says where it came from.
    const listed = await ok<{ snapshots: Snapshot[] }>(dst('/v1/snapshots'));
    expect(listed.snapshots).toEqual([fromTar, imported]);
    expect((await events(server, 'tar-dst')).map((e) => e.data)).toEqual([
      { snapshot_id: fromTar.snapshot_id, label: null, imported: true },
      { snapshot_id: imported.snapshot_id, label: 'from tar-src', imported: true },
    ]);
    expect(readdirSync(join(server.dataDir, 'workspaces', server.workspaceId, '.trees'))).toEqual([]);
  });

  it.skipIf(!hasGnuTar)(
    'imports a tree archived by GNU tar (sparse, hard links, pax) and restores it exactly',
    async () => {
      const tree = join(work, 'gnu-tree');
      await buildFixtureTree(tree);
      await fsp.link(join(tree, 'README.md'), join(tree, 'readme-link'));
      const fh = await fsp.open(join(tree, 'holes.bin'), 'w');
      await fh.truncate(32 * MiB);
      await fh.write(pseudoRandom(4096, 6), 0, 4096, 16 * MiB);
      await fh.close();
      const gnu = execFileSync('tar', ['--sparse', '--format=pax', '-czf', '-', '-C', tree, '.'], {
        maxBuffer: 64 * MiB,
      });
      const rt = api(server, server.runtimeKey, 'tar-gnu');
      const snap = await ok<Snapshot>(rt('/v1/snapshots/import', importInit(gnu)), 201);
      expect(snap.size_bytes).not.toBe(gnu.length); // stored in our format, not as uploaded
      await ok(rt(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }));
      const root = nsRootOf(server, 'tar-gnu');
      expect(await manifest(root)).toEqual(await manifest(tree));
      expect((await fsp.stat(join(root, 'readme-link'))).ino).toBe((await fsp.stat(join(root, 'README.md'))).ino);
      expect((await fsp.stat(join(root, 'holes.bin'))).blocks * 512).toBeLessThan(MiB);
    },
  );
});

describe('export streams', () => {
  it('a 1 GiB archive downloads whole, in order, with the server’s peak memory growing by less than 64 MiB', async () => {
    const s = await startServer();
    try {
      const rt = api(s, s.runtimeKey, 'big');
      await ok(rt('/write', json('POST', { path: 'x.txt', content: 'x' })));
      const snap = await ok<Snapshot>(rt('/v1/snapshots', json('POST', {})));
      await download(rt, snap.snapshot_id); // warm-up: JIT, pools
      // The stored blob becomes 1 GiB (sparse, so cheap to make), marked at three places to check order.
      const marks = [
        { offset: 0, data: pseudoRandom(4096, 1) },
        { offset: 512 * MiB + 123, data: pseudoRandom(65536, 2) },
        { offset: GiB - 8192, data: pseudoRandom(8192, 3) },
      ];
      const blob = join(blobsOf(s), `${snap.snapshot_id}.tar.gz`);
      const fh = await fsp.open(blob, 'r+');
      await fh.truncate(GiB);
      for (const m of marks) await fh.write(m.data, 0, m.data.length, m.offset);
      await fh.close();

      const pid = s.proc.pid!;
      const status = () => readFileSync(`/proc/${pid}/status`, 'utf8');
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status())![1]) * 1024;
      const before = kib('VmRSS');
      // Resets the peak (VmHWM) to the current RSS, so the peak read afterwards is this download's.
      writeFileSync(`/proc/${pid}/clear_refs`, '5');

      let received = 0;
      const seen = marks.map(() => Buffer.alloc(0));
      const head = await new Promise<{ status: number; length: string | undefined }>((resolve, reject) => {
        const req = request(
          `${s.baseUrl}/v1/snapshots/${snap.snapshot_id}/archive`,
          { headers: { authorization: `Bearer ${s.runtimeKey}`, 'x-namespace': 'big' } },
          (res) => {
            res.on('data', (d: Buffer) => {
              // Keep only the bytes that fall on a mark.
              marks.forEach((m, i) => {
                const from = Math.max(m.offset, received);
                const to = Math.min(m.offset + m.data.length, received + d.length);
                if (from < to) seen[i] = Buffer.concat([seen[i]!, d.subarray(from - received, to - received)]);
              });
              received += d.length;
            });
            res.on('end', () => resolve({ status: res.statusCode!, length: res.headers['content-length'] }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
      const peak = kib('VmHWM');
      expect(head).toEqual({ status: 200, length: String(GiB) });
      expect(received).toBe(GiB);
      marks.forEach((m, i) => expect(seen[i]!.equals(m.data), `mark ${i}`).toBe(true));
      expect(peak - before).toBeLessThan(64 * MiB);
    } finally {
      await s.close();
    }
  }, 300_000);
});

describe('import refuses hostile archives', () => {
  it('every hostile archive of the restore tests is refused like a restore, leaving nothing behind', async () => {
    const outside = join(work, 'outside');
    await fsp.mkdir(outside, { recursive: true });
    await fsp.writeFile(join(outside, 'victim.txt'), 'precious');
    const rt = api(limited, limited.runtimeKey, 'victim');
    await ok(rt('/write', json('POST', { path: 'data/keep.txt', content: 'keep me' })));
    const nsBefore = await manifest(nsRootOf(limited, 'victim'));
    const outsideBefore = await manifest(outside);
    const allBlobs = () => readdirSync(join(limited.dataDir, 'blobs', 'snapshots'), { recursive: true }).sort();
    const blobsBefore = allBlobs();

    for (const h of hostileArchives(outside)) {
      const err = await errorOf(rt('/v1/snapshots/import', importInit(h.archive)));
      expect([err.status, err.code], h.name).toEqual([h.status, h.code]);
      expect(err.detail.startsWith('Archive cannot be imported: '), err.detail).toBe(true);
      if (h.detail !== undefined) expect(err.detail, h.name).toBe(`Archive cannot be imported: ${h.detail}`);
      if (h.contains !== undefined) expect(err.detail, h.name).toContain(h.contains);
    }
    // Into a namespace never used: it is not created by a refused import.
    const fresh = api(limited, limited.runtimeKey, 'never-used');
    const first = hostileArchives(outside)[0]!;
    expect((await errorOf(fresh('/v1/snapshots/import', importInit(first.archive)))).status).toBe(422);

    expect((await ok<{ snapshots: Snapshot[] }>(rt('/v1/snapshots'))).snapshots).toEqual([]);
    expect(await events(limited, 'victim')).toEqual([]);
    expect(await manifest(nsRootOf(limited, 'victim'))).toEqual(nsBefore);
    expect(await manifest(outside)).toEqual(outsideBefore);
    expect(allBlobs()).toEqual(blobsBefore);
    expect(blobsBefore).toEqual(['.tmp']);
    expect(readdirSync(join(limited.dataDir, 'workspaces', limited.workspaceId, '.trees'))).toEqual([]);
    expect(existsSync(nsRootOf(limited, 'never-used'))).toBe(false);
    const namespaces = await ok<{ namespaces: Array<{ name: string }> }>(
      api(limited, limited.adminKey)(`/v1/workspaces/${limited.workspaceId}/namespaces`),
    );
    expect(namespaces.namespaces.map((n) => n.name)).not.toContain('never-used');
  });

  it('refuses at the first bad entry, without waiting for the rest of the body', async () => {
    // A traversal first, then 4 MiB, and a body that never ends: the answer cannot wait for its end.
    const head = Buffer.concat([rawEntry({ name: '../../escape.txt', content: 'pwned' }), Buffer.alloc(4 * MiB, 1)]);
    const answer = await new Promise<{ status: number; connection: string | undefined; body: string }>(
      (resolve, reject) => {
        const req = request(`${limited.baseUrl}/v1/snapshots/import`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${limited.runtimeKey}`,
            'x-namespace': 'victim',
            'content-type': 'application/x-tar',
            'content-length': String(1024 * MiB),
          },
        });
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => {
            resolve({ status: res.statusCode!, connection: res.headers.connection, body });
            req.destroy();
          });
        });
        req.on('error', reject);
        req.write(head);
      },
    );
    expect(answer).toEqual({
      status: 422,
      connection: 'close',
      body: JSON.stringify({
        detail: 'Archive cannot be imported: entry "../../escape.txt" contains ".." (path traversal)',
        code: 'snapshot_invalid',
      }),
    });
  });

  it('a body that stalls is cut with 408, and its staging tree is gone by the time the answer arrives', async () => {
    const s = await startServer({ env: { TROVE_BODY_IDLE_TIMEOUT_MS: '1000' } });
    try {
      // A valid entry of 1 MiB of which 64 KiB arrive; then nothing.
      const head = Buffer.concat([
        rawEntry({ name: 'a.txt', content: 'x' }),
        rawEntry({ name: 'big.bin', content: Buffer.alloc(MiB, 2) }),
      ]);
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${s.baseUrl}/v1/snapshots/import`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${s.runtimeKey}`,
            'x-namespace': 'stalled',
            'content-type': 'application/x-tar',
            'content-length': String(head.length + 1024),
          },
        });
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.write(head.subarray(0, 64 * 1024 + 1024));
      });
      expect(answer.status).toBe(408);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'request_timeout' });
      expect(readdirSync(join(s.dataDir, 'workspaces', s.workspaceId, '.trees'))).toEqual([]);
      expect(readdirSync(join(s.dataDir, 'blobs', 'snapshots'), { recursive: true })).toEqual(['.tmp']);
      expect((await ok<{ snapshots: Snapshot[] }>(api(s, s.runtimeKey, 'stalled')('/v1/snapshots'))).snapshots).toEqual(
        [],
      );
    } finally {
      await s.close();
    }
  });

  it('answers a body that is not gzip with a hint, and an unsupported or missing content type with 415', async () => {
    const rt = api(server, server.runtimeKey, 'tar-types');
    const plain = Buffer.concat([rawEntry({ name: 'a.txt', content: 'a' }), Buffer.alloc(1024)]);
    expect(await errorOf(rt('/v1/snapshots/import', importInit(plain)))).toEqual({
      status: 422,
      code: 'snapshot_invalid',
      detail:
        'Archive cannot be imported: the compressed data is corrupt or truncated (not gzip data; send a plain tar as application/x-tar)',
    });
    const hint =
      ': send the archive as the raw body with Content-Type: application/gzip (a .tar.gz) or application/x-tar (a plain .tar)';
    expect(await errorOf(rt('/v1/snapshots/import', importInit(plain, 'text/plain')))).toEqual({
      status: 415,
      code: 'unsupported_media_type',
      detail: `Unsupported Content-Type "text/plain"${hint}`,
    });
    expect(await errorOf(rt('/v1/snapshots/import', { method: 'POST', body: plain }))).toMatchObject({ status: 415 });
    expect(await errorOf(rt('/v1/snapshots/import', { method: 'POST' }))).toEqual({
      status: 415,
      code: 'unsupported_media_type',
      detail: `Unsupported Content-Type (none)${hint}`,
    });
    const long = await errorOf(
      rt(`/v1/snapshots/import?label=${'x'.repeat(129)}`, importInit(plain, 'application/x-tar')),
    );
    expect([long.status, long.code]).toEqual([422, 'validation_failed']);
    expect(long.detail).toContain('label');
    // Parameters of the content type are fine.
    await ok(rt('/v1/snapshots/import', importInit(plain, 'application/x-tar; charset=binary')), 201);
  });
});

describe('auth and scope', () => {
  it('keys, namespaces and ids are checked like every snapshot call', async () => {
    const admin = api(server, server.adminKey);
    const a = api(server, server.runtimeKey, 'scope-a');
    await ok(a('/write', json('POST', { path: 'a.txt', content: 'A' })));
    const snapA = await ok<Snapshot>(a('/v1/snapshots', json('POST', {})));
    const archive = await download(a, snapA.snapshot_id);

    const locked = await ok<{ api_key: string }>(
      admin(`/v1/workspaces/${server.workspaceId}/keys`, json('POST', { name: 'only-b', namespace: 'scope-b' })),
      201,
    );
    const lb = api(server, locked.api_key);
    // A namespace-locked key needs no header, imports into its namespace and exports what is there.
    const intoB = await ok<Snapshot>(lb('/v1/snapshots/import', importInit(archive)), 201);
    expect(intoB.namespace).toBe('scope-b');
    expect((await download(lb, intoB.snapshot_id)).equals(archive)).toBe(true);
    // Another namespace's snapshot is "not found", exactly like an id that never existed.
    const notFound = { status: 404, code: 'snapshot_not_found', detail: `Snapshot not found: ${snapA.snapshot_id}` };
    expect(await errorOf(lb(`/v1/snapshots/${snapA.snapshot_id}/archive`))).toEqual(notFound);
    expect(
      await errorOf(api(server, server.runtimeKey, 'scope-b')(`/v1/snapshots/${snapA.snapshot_id}/archive`)),
    ).toEqual(notFound);
    const other = await errorOf(api(server, locked.api_key, 'scope-a')('/v1/snapshots/import', importInit(archive)));
    expect([other.status, other.code]).toEqual([403, 'namespace_forbidden']);
    expect(
      await errorOf(api(server, locked.api_key, 'scope-a')(`/v1/snapshots/${snapA.snapshot_id}/archive`)),
    ).toMatchObject({
      status: 403,
      code: 'namespace_forbidden',
    });

    // Admin keys cannot use runtime endpoints; no key is 401.
    const adminA = api(server, server.adminKey, 'scope-a');
    expect(await errorOf(adminA(`/v1/snapshots/${snapA.snapshot_id}/archive`))).toEqual({
      status: 403,
      code: 'scope_forbidden',
      detail: 'Admin keys cannot use runtime endpoints; use a workspace key',
    });
    expect(await errorOf(adminA('/v1/snapshots/import', importInit(archive)))).toMatchObject({
      status: 403,
      code: 'scope_forbidden',
    });
    const anon = api(server, null, 'scope-a');
    expect((await errorOf(anon(`/v1/snapshots/${snapA.snapshot_id}/archive`))).status).toBe(401);
    expect((await errorOf(anon('/v1/snapshots/import', importInit(archive)))).status).toBe(401);
    // Only the two namespaces' own snapshots exist: nothing was imported by a refused call.
    expect((await ok<{ snapshots: Snapshot[] }>(a('/v1/snapshots'))).snapshots.map((s) => s.snapshot_id)).toEqual([
      snapA.snapshot_id,
    ]);
    expect((await ok<{ snapshots: Snapshot[] }>(lb('/v1/snapshots'))).snapshots.map((s) => s.snapshot_id)).toEqual([
      intoB.snapshot_id,
    ]);

    // Unknown and malformed ids; a snapshot whose blob went missing.
    for (const id of ['nope', `snap-${'0'.repeat(24)}`, '..%2F..%2Fetc']) {
      expect((await errorOf(a(`/v1/snapshots/${id}/archive`))).status).toBe(404);
    }
    await fsp.unlink(join(blobsOf(server), `${snapA.snapshot_id}.tar.gz`));
    expect(await errorOf(a(`/v1/snapshots/${snapA.snapshot_id}/archive`))).toEqual({
      status: 404,
      code: 'snapshot_not_found',
      detail: `Snapshot ${snapA.snapshot_id} has no stored data (it was removed from the blob store)`,
    });
  });

  it('HEAD gives the headers without the archive', async () => {
    const rt = api(server, server.runtimeKey, 'scope-head');
    await ok(rt('/write', json('POST', { path: 'h.txt', content: 'h' })));
    const snap = await ok<Snapshot>(rt('/v1/snapshots', json('POST', {})));
    const res = await rt(`/v1/snapshots/${snap.snapshot_id}/archive`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    expect(res.headers.get('content-length')).toBe(String(snap.size_bytes));
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it('both routes are in the OpenAPI document', async () => {
    const doc = (await (await fetch(server.baseUrl + '/openapi.json')).json()) as {
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: { content: Record<string, unknown> };
            responses: Record<string, { content?: Record<string, unknown> }>;
          }
        >
      >;
    };
    const exp = doc.paths['/v1/snapshots/{id}/archive']!.get!;
    expect(Object.keys(exp.responses['200']!.content!)).toEqual(['application/gzip']);
    expect(Object.keys(exp.responses['404']!.content!)).toEqual(['application/json']);
    const imp = doc.paths['/v1/snapshots/import']!.post!;
    expect(Object.keys(imp.requestBody!.content)).toEqual(['application/gzip', 'application/x-tar']);
    expect(Object.keys(imp.responses)).toEqual(expect.arrayContaining(['201', '413', '415', '422']));
  });
});
