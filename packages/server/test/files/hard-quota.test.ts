/**
 * The kernel-enforced namespace quota on btrfs: a data dir on a loop-mounted
 * btrfs image with quotas enabled makes every namespace root a subvolume
 * limited to --quota-bytes, so what exec writes stops at the limit (EDQUOT)
 * instead of only being measured afterwards. Uploads into such a tree use an
 * O_TMPFILE in the target directory (renameat cannot cross subvolumes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { isRoot, needsRoot } from '../../../../test/helpers/root.js';

const MiB = 1024 * 1024;
const QUOTA = 32 * MiB;
let work: string;
let mnt: string;
let server: StartedServer;

function sh(cmd: string): string {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** btrfs-progs makes the test image; installed with apt when missing, as `npm start` does for bubblewrap. */
function ensureMkfs(): void {
  if (spawnSync('sh', ['-c', 'command -v mkfs.btrfs']).status === 0) return;
  sh('apt-get update -qq && apt-get install -y -qq --no-install-recommends btrfs-progs >/dev/null');
}

function call(ns: string, method: string, path: string, body?: unknown, raw?: Buffer) {
  return fetch(server.baseUrl + path, {
    method,
    headers: {
      authorization: `Bearer ${server.runtimeKey}`,
      'x-namespace': ns,
      ...(raw ? {} : { 'content-type': 'application/json' }),
    },
    body: raw ? new Uint8Array(raw) : body === undefined ? undefined : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
}

beforeAll(async () => {
  if (!isRoot) return;
  ensureMkfs();
  work = mkdtempSync(join(tmpdir(), 'trove-btrfs-'));
  mnt = join(work, 'mnt');
  sh(
    `truncate -s 512M ${work}/img && mkfs.btrfs -q ${work}/img && mkdir ${mnt} && mount -o loop ${work}/img ${mnt} && btrfs quota enable ${mnt}`,
  );
  server = await startServer({
    dataDir: join(mnt, 'data'),
    env: { TROVE_QUOTA_BYTES: String(QUOTA), TROVE_MIN_FREE_BYTES: '0', TROVE_EXEC_TIMEOUT_MS: '60000' },
  });
}, 180_000);

afterAll(async () => {
  await server?.close();
  if (mnt) spawnSync('umount', ['-l', mnt]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.runIf(isRoot)(`hard namespace quota on btrfs${needsRoot('loop-mount a btrfs image')}`, () => {
  it('says at start that the quota is enforced by the kernel', () => {
    expect(server.output()).toMatch(/Storage: quota 32 MiB per namespace \(--quota-bytes\), hard \(btrfs qgroups\)/);
  });

  it('stops what exec writes at the quota with EDQUOT; the API then refuses what would pass it', async () => {
    const r = await call('hog', 'POST', '/v1/exec', {
      command: 'dd if=/dev/zero of=workspace/big bs=1M count=100 2>&1; sync; stat -c %s workspace/big',
    });
    expect(r.status).toBe(200);
    expect(r.body.stdout).toContain('Disk quota exceeded');
    const size = Number(r.body.stdout.trim().split('\n').pop());
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThanOrEqual(QUOTA);
    // The namespace root is a subvolume (inode 256 on btrfs).
    expect(statSync(join(mnt, 'data', 'workspaces', server.workspaceId, 'namespaces', 'hog')).ino).toBe(256);
    const put = await call('hog', 'PUT', '/files/more.bin', undefined, Buffer.alloc(8 * MiB, 1));
    // The kernel kept the namespace at its quota, so a write that would pass it is the protocol's 413.
    expect(put.status).toBe(413);
    expect(put.body.code).toBe('quota_exceeded');
    // Another namespace has its own limit.
    expect((await call('neighbour', 'POST', '/write', { path: 'ok.txt', content: 'fine' })).status).toBe(200);
    // Deleting makes room again.
    expect((await call('hog', 'POST', '/delete', { path: 'big' })).status).toBe(200);
    expect((await call('hog', 'PUT', '/files/more.bin', undefined, Buffer.alloc(MiB, 2))).status).toBe(200);
  });

  it('writes and replaces files through O_TMPFILE, atomically and without leftovers', async () => {
    for (const fill of [1, 2, 3]) {
      const r = await call('up', 'PUT', '/files/dir/f.bin', undefined, Buffer.alloc(MiB + fill, fill));
      expect(r).toEqual({ status: 200, body: { path: 'workspace/dir/f.bin', size_bytes: MiB + fill } });
    }
    const got = Buffer.from(
      await (
        await fetch(server.baseUrl + '/files/dir/f.bin', {
          headers: { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': 'up' },
        })
      ).arrayBuffer(),
    );
    expect(got.length).toBe(MiB + 3);
    expect(got.every((b) => b === 3)).toBe(true);
    const dir = join(mnt, 'data', 'workspaces', server.workspaceId, 'namespaces', 'up', 'dir');
    expect(readdirSync(dir)).toEqual(['f.bin']);
    expect(lstatSync(join(dir, 'f.bin')).uid).toBe(64000);
  });

  it('deletes directories inside a subvolume and whole subvolume namespaces', async () => {
    expect((await call('gone', 'POST', '/write', { path: 'a/b/c.txt', content: 'x' })).status).toBe(200);
    expect((await call('gone', 'POST', '/delete', { path: 'a' })).status).toBe(200);
    const nsDir = join(mnt, 'data', 'workspaces', server.workspaceId, 'namespaces', 'gone');
    expect(readdirSync(nsDir)).toEqual([]);
    const del = await fetch(`${server.baseUrl}/v1/workspaces/${server.workspaceId}/namespaces/gone`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(del.status).toBe(200);
    expect(existsSync(nsDir)).toBe(false);
  });
});
