/**
 * Disk space: the free-space reserve, a full volume (ENOSPC → 507, never 500),
 * the measured namespace quota that what exec writes counts against, and
 * reads that never create a namespace.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { isRoot, needsRoot } from '../../../../test/helpers/root.js';

const started: StartedServer[] = [];
const mounts: string[] = [];

afterAll(async () => {
  for (const s of started) await s.close();
  for (const m of mounts) {
    spawnSync('umount', ['-l', m]);
    rmSync(m, { recursive: true, force: true });
  }
});

function client(s: StartedServer, namespace: string) {
  const headers = { authorization: `Bearer ${s.runtimeKey}`, 'x-namespace': namespace };
  const call = async (method: string, path: string, body?: unknown, raw?: Buffer) => {
    const res = await fetch(s.baseUrl + path, {
      method,
      headers: raw ? headers : { ...headers, 'content-type': 'application/json' },
      body: raw ? new Uint8Array(raw) : body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
  return {
    write: (path: string, content: string) => call('POST', '/write', { path, content }),
    put: (path: string, bytes: Buffer) => call('PUT', '/files/' + path, undefined, bytes),
    read: (path: string) => call('GET', '/v1/files/content?path=' + encodeURIComponent(path)),
    list: (path = '') => call('GET', '/v1/files?path=' + encodeURIComponent(path)),
    del: (path: string) => call('POST', '/delete', { path }),
    exec: (command: string) => call('POST', '/v1/exec', { command }),
  };
}

/** A data dir on its own small tmpfs, so that filling it is quick and touches nothing else. */
function smallVolume(mib: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'trove-vol-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'trove-test', dir]);
  expect(r.status, `mount tmpfs: ${r.stderr}`).toBe(0);
  mounts.push(dir);
  return join(dir, 'data');
}

describe('storage', () => {
  it('reads never create a namespace (no directory, no registry row)', async () => {
    const s = await startServer();
    started.push(s);
    const ghost = client(s, 'never-used');
    expect(await ghost.read('a.txt')).toEqual({
      status: 404,
      body: { detail: 'Path not found: workspace/a.txt', code: 'path_not_found' },
    });
    const dl = await fetch(s.baseUrl + '/files/a.txt', {
      headers: { authorization: `Bearer ${s.runtimeKey}`, 'x-namespace': 'never-used' },
    });
    expect(dl.status).toBe(404);
    expect(await dl.json()).toEqual({ detail: 'Path not found: workspace/a.txt', code: 'path_not_found' });
    expect(await ghost.list()).toEqual({ status: 200, body: { entries: [], truncated: false } });
    expect((await ghost.list('sub')).status).toBe(404);
    expect((await ghost.del('x')).status).toBe(404);
    expect(existsSync(join(s.dataDir, 'workspaces', s.workspaceId, 'namespaces', 'never-used'))).toBe(false);
    const res = await fetch(`${s.baseUrl}/v1/workspaces/${s.workspaceId}/namespaces`, {
      headers: { authorization: `Bearer ${s.runtimeKey}` },
    });
    const names = JSON.stringify(await res.json());
    expect(names).not.toContain('never-used');
  });

  it('refuses tenant writes and execs below the free-space reserve with 507, while reads and deletes work', async () => {
    const s = await startServer({ env: { TROVE_MIN_FREE_BYTES: String(2 ** 52) } });
    started.push(s);
    expect(s.output()).toMatch(
      /Storage: quota 10 GiB per namespace \(--quota-bytes\), measured \(the data volume is not btrfs\); [\d.]+ [GM]iB free, 4194304 GiB kept in reserve/,
    );
    const c = client(s, 'reserve');
    const full = {
      detail: 'The server is out of storage space for tenant data; delete files or ask the operator to add space',
      code: 'storage_full',
    };
    expect(await c.write('a.txt', 'x')).toEqual({ status: 507, body: full });
    expect(await c.put('b.bin', Buffer.alloc(10))).toEqual({ status: 507, body: full });
    expect(await c.exec('true')).toEqual({ status: 507, body: full });
    expect((await c.list()).status).toBe(200);
  });

  it.runIf(isRoot)(
    `answers a full volume with 507 storage_full, not 500, and leaves nothing half-written${needsRoot('mount a small tmpfs')}`,
    async () => {
      const dataDir = smallVolume(16);
      const s = await startServer({ dataDir, env: { TROVE_MIN_FREE_BYTES: '0' } });
      started.push(s);
      const a = client(s, 'filler');
      const b = client(s, 'bystander');
      expect((await b.write('keep.txt', 'kept')).status).toBe(200);
      // An exec fills the volume (dd stops at ENOSPC).
      const dd = await a.exec('dd if=/dev/zero of=workspace/big bs=1M count=64 2>&1; echo done');
      // The command ran; recording its event may meet the full disk too (no reserve here): 507, never 500.
      if (dd.status === 200) expect(dd.body.stdout).toContain('done');
      else expect(dd).toMatchObject({ status: 507, body: { code: 'storage_full' } });
      const res = await b.put('more.bin', Buffer.alloc(4 * 1024 * 1024, 1));
      expect(res.status).toBe(507);
      expect(res.body.code).toBe('storage_full');
      // A body of one batch: its temp file is created, written and fsynced in one job, which cleans up after itself.
      const small = await b.put('small.bin', Buffer.alloc(256 * 1024, 1));
      expect(small.status).toBe(507);
      expect(small.body.code).toBe('storage_full');
      // No temp file left, the bystander's file intact, the server still answers.
      const scratch = join(dataDir, 'tmp');
      expect(readdirSync(scratch).flatMap((d) => readdirSync(join(scratch, d)))).toEqual([]);
      expect(await b.read('keep.txt')).toMatchObject({ status: 200, body: { content: 'kept' } });
      // Space freed: writes work again.
      expect((await a.del('big')).status).toBe(200);
      expect((await b.put('more.bin', Buffer.alloc(1024 * 1024, 1))).status).toBe(200);
    },
  );

  it('counts what exec writes against the namespace quota: over it, writes and execs get 507 until files are deleted', async () => {
    const s = await startServer({ env: { TROVE_QUOTA_BYTES: String(1024 * 1024), TROVE_MIN_FREE_BYTES: '0' } });
    started.push(s);
    const c = client(s, 'hog');
    const other = client(s, 'neighbour');
    expect((await c.write('small.txt', 'x')).status).toBe(200);
    expect((await c.exec('head -c 3000000 /dev/zero > workspace/blob')).status).toBe(200);
    // The measure after an exec runs in the background: wait (bounded) for it to land.
    let res = await c.write('small.txt', 'x');
    for (let i = 0; i < 100 && res.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      res = await c.write('small.txt', 'x');
    }
    expect(res.status).toBe(507);
    expect(res.body).toEqual({
      detail: 'The namespace is over its quota (3000001 bytes of 1048576, 2 files); delete files to write again',
      code: 'over_quota',
    });
    expect((await c.exec('true')).body.code).toBe('over_quota');
    // Another namespace is not affected.
    expect((await other.write('ok.txt', 'fine')).status).toBe(200);
    // Reads and deletes still work; below the quota again, writes are accepted.
    expect((await c.read('small.txt')).status).toBe(200);
    expect((await c.del('blob')).status).toBe(200);
    expect((await c.write('small.txt', 'y')).status).toBe(200);
    expect((await c.exec('true')).status).toBe(200);
  });

  it('sweeps the temp files of a killed server at the next start; users may name files like them', async () => {
    const s = await startServer({ env: { TROVE_MIN_FREE_BYTES: '0' } });
    started.push(s);
    const c = client(s, 'crashy');
    expect((await c.write('.trove-tmp-mine', 'a user file')).status).toBe(200);
    // An upload that never finishes: its temp file exists when the server is killed (it is made with the first
    // full batch of the body, 1 MiB).
    const req = request(`${s.baseUrl}/files/half.bin`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${s.runtimeKey}`,
        'x-namespace': 'crashy',
        'content-length': String(8 * 1024 * 1024),
      },
    });
    req.on('error', () => {});
    req.write(Buffer.alloc(1536 * 1024));
    const scratch = join(s.dataDir, 'tmp');
    const temps = () => readdirSync(scratch).flatMap((d) => readdirSync(join(scratch, d)).map((f) => `${d}/${f}`));
    for (let i = 0; i < 500 && temps().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const left = temps();
    expect(left).toHaveLength(1);
    await s.kill('SIGKILL');
    req.destroy();
    const again = await s.restart();
    started.push(again);
    expect(readdirSync(scratch).flatMap((d) => readdirSync(join(scratch, d)))).toEqual([]);
    expect(readdirSync(scratch)).not.toContain(left[0]!.split('/')[0]);
    const listing = await client(again, 'crashy').list();
    expect(listing.body.entries.map((e: { name: string }) => e.name)).toEqual(['.trove-tmp-mine']);
  });
});
