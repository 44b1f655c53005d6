/**
 * SnapshotService against real components (SQLite store, event log, locks,
 * namespaces, files, local blob store): retention, the count limit, orphan
 * blobs, namespace deletion and namespace scoping.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { openStore, type Store } from '../../src/db/index.js';
import { LocalEventBus } from '../../src/events/bus.js';
import { EventService } from '../../src/events/service.js';
import { AuthService } from '../../src/auth/service.js';
import { WorkspaceService } from '../../src/workspaces/service.js';
import { NamespaceService } from '../../src/namespaces/service.js';
import { FileService } from '../../src/files/service.js';
import { NamespaceQuota } from '../../src/files/quota.js';
import { StorageGuard } from '../../src/tree/storage.js';
import { LocalNamespaceLocks } from '../../src/locks/namespace-locks.js';
import { SnapshotService } from '../../src/snapshots/service.js';
import { LocalBlobStore } from '../../src/snapshots/blob-store.js';
import { AppError } from '../../src/errors.js';

const DAY = 86_400_000;
let dir: string;
let store: Store;
let events: EventService;
let blobs: LocalBlobStore;
let namespaces: NamespaceService;
let files: FileService;
let ws: string;

const quiet = { info() {}, warn() {}, error() {} };

function service(snapshots: { retentionDays: number; maxPerNamespace: number; sweepIntervalMs?: number }) {
  return new SnapshotService({
    db: store.db,
    events,
    namespaces,
    files,
    locks: new LocalNamespaceLocks(),
    blobs,
    config: {
      files: {
        maxUploadBytes: 0,
        maxReadBytes: 0,
        quotaBytes: 0,
        quotaFiles: 0,
        minFreeBytes: 0,
        usageCacheMs: 30_000,
      },
      snapshots: { sweepIntervalMs: 60_000, ...snapshots },
    },
    logger: quiet,
  });
}

async function eventsOf(type: string) {
  return (await events.list(ws, { types: [type], limit: 200 })).events;
}

beforeAll(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'trove-snapsvc-'));
  store = await openStore({ dataDir: dir, databaseUrl: null });
  events = new EventService(store.db, new LocalEventBus(), store.sqliteSync);
  const workspaces = new WorkspaceService(store.db, events, new AuthService(store.db, events));
  ws = (await workspaces.create('svc')).workspace_id;
  namespaces = new NamespaceService(store.db, dir, { uid: 0, gid: 0, enabled: false });
  await namespaces.trees.start();
  const limits = { maxUploadBytes: 0, maxReadBytes: 0, quotaBytes: 0, quotaFiles: 0, usageCacheMs: 30_000 };
  const quota = new NamespaceQuota(namespaces, limits, new StorageGuard(dir, 0));
  files = new FileService(namespaces, events, new LocalNamespaceLocks(), limits, quota);
  blobs = new LocalBlobStore(join(dir, 'blobs', 'snapshots'));
  await blobs.init();
});

afterAll(async () => {
  await namespaces?.trees.close();
  await store?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('SnapshotService', () => {
  it('sweeps snapshots past the retention period, with events, and deletes their blobs', async () => {
    const svc = service({ retentionDays: 30, maxPerNamespace: 0 });
    const ctx = { workspaceId: ws, namespace: 'retain' };
    await files.writeText(ctx, 'a.txt', 'a');
    const s1 = await svc.create(ctx, 'one');
    const s2 = await svc.create(ctx, 'two');
    expect((await svc.list(ctx)).map((s) => s.snapshot_id)).toEqual([s2.snapshot_id, s1.snapshot_id]);

    // Not yet expired: nothing happens.
    expect(await svc.sweep(Date.parse(s1.created_at) + 29 * DAY)).toEqual({ deleted: 0 });
    expect(await svc.sweep(Date.parse(s2.created_at) + 30 * DAY + 1)).toEqual({ deleted: 2 });
    expect(await svc.list(ctx)).toEqual([]);
    expect(await blobs.exists(`${ws}/${s1.snapshot_id}.tar.gz`)).toBe(false);
    const deleted = (await eventsOf('snapshot.deleted')).filter((e) => e.namespace === 'retain');
    expect(
      deleted.map((e) => e.data).sort((a, b) => String(a.snapshot_id).localeCompare(String(b.snapshot_id))),
    ).toEqual(
      [s1, s2]
        .map((s) => ({ snapshot_id: s.snapshot_id, reason: 'retention' }))
        .sort((a, b) => a.snapshot_id.localeCompare(b.snapshot_id)),
    );
    // A second sweep (another node, say) finds nothing and emits nothing.
    expect(await svc.sweep(Date.parse(s2.created_at) + 31 * DAY)).toEqual({ deleted: 0 });
  });

  it('the periodic sweeper enforces retention by itself every sweepIntervalMs, until stopped', async () => {
    const svc = service({ retentionDays: 1, maxPerNamespace: 0, sweepIntervalMs: 50 });
    const ctx = { workspaceId: ws, namespace: 'periodic' };
    await files.writeText(ctx, 'a.txt', 'a');
    const fresh = await svc.create(ctx, 'fresh');
    const stale = await svc.create(ctx, 'stale');
    const backdate = (id: string) =>
      store.db
        .updateTable('snapshots')
        .set({ created_ms: Date.now() - 2 * DAY })
        .where('id', '=', id)
        .execute();
    const ids = async () => (await svc.list(ctx)).map((s) => s.snapshot_id);
    svc.startSweeper();
    try {
      // Expired only after the sweeper's first (immediate) run: a later periodic run must catch it.
      await new Promise((r) => setTimeout(r, 20));
      await backdate(stale.snapshot_id);
      const deadline = Date.now() + 5000;
      while ((await ids()).includes(stale.snapshot_id) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(await ids()).toEqual([fresh.snapshot_id]);
      expect(await blobs.exists(`${ws}/${stale.snapshot_id}.tar.gz`)).toBe(false);
    } finally {
      await svc.stopSweeper();
    }
    // Stopped: an expired snapshot now stays until something sweeps again.
    await backdate(fresh.snapshot_id);
    await new Promise((r) => setTimeout(r, 250));
    expect(await ids()).toEqual([fresh.snapshot_id]);
    expect(await svc.sweep()).toEqual({ deleted: 1 });
  });

  it('keeps the newest maxPerNamespace per namespace, also when the limit is lowered later', async () => {
    const ctx = { workspaceId: ws, namespace: 'count' };
    const other = { workspaceId: ws, namespace: 'count-other' };
    await files.writeText(ctx, 'a.txt', 'a');
    await files.writeText(other, 'b.txt', 'b');
    const loose = service({ retentionDays: 0, maxPerNamespace: 0 });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await loose.create(ctx, `n${i}`)).snapshot_id);
    const otherSnap = await loose.create(other, null);
    const strict = service({ retentionDays: 0, maxPerNamespace: 2 });
    expect(await strict.sweep()).toEqual({ deleted: 2 });
    expect((await strict.list(ctx)).map((s) => s.snapshot_id)).toEqual([ids[3], ids[2]]);
    expect((await strict.list(other)).map((s) => s.snapshot_id)).toEqual([otherSnap.snapshot_id]);
    // retentionDays 0 means "keep forever", not "delete everything".
    expect(await loose.sweep(Date.now() + 10_000 * DAY)).toEqual({ deleted: 0 });
  });

  it('removes blobs that no row points to once they are an hour old', async () => {
    const svc = service({ retentionDays: 0, maxPerNamespace: 0 });
    const oldKey = `${ws}/snap-${'a'.repeat(24)}.tar.gz`;
    const newKey = `${ws}/snap-${'b'.repeat(24)}.tar.gz`;
    await blobs.put(oldKey, Readable.from([Buffer.from('orphan')]));
    await blobs.put(newKey, Readable.from([Buffer.from('being created')]));
    const past = new Date(Date.now() - 2 * 3600_000);
    await fsp.utimes(join(blobs.dir, ...oldKey.split('/')), past, past);
    const ctx = { workspaceId: ws, namespace: 'orphans' };
    await files.writeText(ctx, 'a.txt', 'a');
    const kept = await svc.create(ctx, null);
    await fsp.utimes(join(blobs.dir, ws, `${kept.snapshot_id}.tar.gz`), past, past);
    await svc.sweep();
    expect(await blobs.exists(oldKey)).toBe(false);
    expect(await blobs.exists(newKey)).toBe(true);
    expect(await blobs.exists(`${ws}/${kept.snapshot_id}.tar.gz`)).toBe(true);
  });

  it('scopes every lookup to the namespace and deletes a namespace’s snapshots with it', async () => {
    const svc = service({ retentionDays: 0, maxPerNamespace: 0 });
    const a = { workspaceId: ws, namespace: 'scope-a' };
    const b = { workspaceId: ws, namespace: 'scope-b' };
    await files.writeText(a, 'a.txt', 'a');
    const snap = await svc.create(a, 'a');
    for (const call of [() => svc.restore(b, snap.snapshot_id), () => svc.delete(b, snap.snapshot_id)]) {
      await expect(call()).rejects.toMatchObject({ code: 'snapshot_not_found', status: 404 });
    }
    await expect(
      svc.restore({ workspaceId: 'ws-other', namespace: 'scope-a' }, snap.snapshot_id),
    ).rejects.toBeInstanceOf(AppError);
    await svc.deleteNamespace(ws, 'scope-a');
    expect(await svc.list(a)).toEqual([]);
    expect(await blobs.exists(`${ws}/${snap.snapshot_id}.tar.gz`)).toBe(false);
  });

  it('restores and reports a missing blob as a clear 404', async () => {
    const svc = service({ retentionDays: 0, maxPerNamespace: 0 });
    const ctx = { workspaceId: ws, namespace: 'lost' };
    await files.writeText(ctx, 'a.txt', 'a');
    const snap = await svc.create(ctx, null);
    await files.writeText(ctx, 'a.txt', 'changed');
    expect(await svc.restore(ctx, snap.snapshot_id)).toEqual({ files_restored: 1 });
    expect((await files.content(ctx, 'a.txt')).content).toBe('a');
    await fsp.rm(join(blobs.dir, ws, `${snap.snapshot_id}.tar.gz`));
    await expect(svc.restore(ctx, snap.snapshot_id)).rejects.toMatchObject({
      code: 'snapshot_not_found',
      detail: `Snapshot ${snap.snapshot_id} has no stored data (it was removed from the blob store)`,
    });
  });
  it('refuses a tree deeper than the walk limit with 422 tree_too_deep, leaving no row and no blob', async () => {
    const svc = service({ retentionDays: 0, maxPerNamespace: 0 });
    const ctx = { workspaceId: ws, namespace: 'too-deep' };
    const root = await namespaces.ensure(ws, 'too-deep');
    await fsp.mkdir(join(root, ...Array.from({ length: 256 }, () => 'd')), { recursive: true });
    const blobsBefore: string[] = [];
    for await (const b of blobs.list()) blobsBefore.push(b.key);
    const err = await svc.create(ctx, 'deep').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'tree_too_deep', status: 422 });
    expect(await svc.list(ctx)).toEqual([]);
    const blobsAfter: string[] = [];
    for await (const b of blobs.list()) blobsAfter.push(b.key);
    expect(blobsAfter.sort()).toEqual(blobsBefore.sort());
    expect(await fsp.readdir(join(blobs.dir, '.tmp'))).toEqual([]);
    expect((await eventsOf('snapshot.created')).filter((e) => e.namespace === 'too-deep')).toEqual([]);
  });
  it('a blob store that fails before reading the archive fails the snapshot and releases the namespace', async () => {
    const failing = Object.create(blobs) as LocalBlobStore;
    failing.put = async () => {
      throw Object.assign(new Error('blob store down'), { code: 'EIO' });
    };
    const locks = new LocalNamespaceLocks();
    const svc = new SnapshotService({
      db: store.db,
      events,
      namespaces,
      files,
      locks,
      blobs: failing,
      config: {
        files: {
          maxUploadBytes: 0,
          maxReadBytes: 0,
          quotaBytes: 0,
          quotaFiles: 0,
          minFreeBytes: 0,
          usageCacheMs: 30_000,
        },
        snapshots: { sweepIntervalMs: 60_000, retentionDays: 0, maxPerNamespace: 0 },
      },
      logger: quiet,
    });
    const ctx = { workspaceId: ws, namespace: 'blob-down' };
    // Enough data that the capture blocks on its unread stream.
    for (let i = 0; i < 20; i++) await files.writeText(ctx, `f${i}.txt`, randomBytes(256 * 1024).toString('base64'));
    await expect(svc.create(ctx, null)).rejects.toThrow('blob store down');
    expect(await svc.list(ctx)).toEqual([]);
    // The capture stopped and released the lock; a snapshot through the working store goes through.
    await expect(locks.exclusive(ws, 'blob-down', async () => 'free', 1_000)).resolves.toBe('free');
    const ok = service({ retentionDays: 0, maxPerNamespace: 0 });
    expect((await ok.create(ctx, null)).file_count).toBe(20);
  });
});
