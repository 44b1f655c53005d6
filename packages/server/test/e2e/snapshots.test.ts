/** Snapshots across server restarts: a restore refused by a smaller quota after a restart, and kill -9 during a restore. (The API itself: test/routes/snapshots.test.ts.) */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { crashAtPreload, startServer, api, type StartedServer } from '../../../../test/helpers/server.js';
import { errorOf, json, ok } from '../../../../test/helpers/http.js';
import type { SnapshotView as Snapshot } from '../../src/snapshots/service.js';

function rtFor(s: StartedServer, ns: string, key = s.runtimeKey) {
  return api(s, key, ns);
}

async function read(rt: ReturnType<typeof api>, path: string): Promise<number | string> {
  const r = await rt(`/files/${path}`);
  return r.status === 200 ? await r.text() : r.status;
}

describe('restore safety', () => {
  it('refuses a restore that would exceed the namespace quota', async () => {
    const s = await startServer();
    try {
      const rt = rtFor(s, 'quota');
      for (let i = 0; i < 5; i++) await ok(rt('/write', json('POST', { path: `f${i}.txt`, content: 'x'.repeat(100) })));
      const snap = await ok<Snapshot>(rt('/v1/snapshots', json('POST', {})));
      await ok(rt('/delete', json('POST', { path: 'f0.txt' })));
      await s.stop();
      const limited = await s.restart({ TROVE_QUOTA_FILES: '4' });
      try {
        const lrt = rtFor(limited, 'quota');
        expect(await errorOf(lrt(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }))).toEqual({
          status: 413,
          code: 'quota_exceeded',
          detail: 'Snapshot cannot be restored: it holds more than the namespace quota of 4 files',
        });
        expect(await read(lrt, 'f0.txt')).toBe(404);
        expect(await read(lrt, 'f1.txt')).toBe('x'.repeat(100));
      } finally {
        await limited.stop();
      }
    } finally {
      await s.close();
    }
  });

  // The server kills itself (SIGKILL) at a named point of the restore; after a
  // restart the namespace must be exactly the old tree or exactly the new one.
  const BULK = 60;
  const bulkBody = (i: number) => Buffer.concat([Buffer.from(`bulk ${i}\n`), randomBytes(64 * 1024)]);
  for (const [phase, expected] of [
    ['mid-extract:40', 'old'], // entry 40 of the archive is one of the bulk files
    ['before-swap', 'old'],
    ['mid-swap', 'old'],
    ['after-swap', 'new'],
  ] as const) {
    it(`kill -9 during restore (${phase}) → after restart the tree is entirely ${expected}`, async () => {
      const s = await startServer({ env: { TROVE_TEST_CRASH_AT: phase }, nodeArgs: ['--import', crashAtPreload] });
      let restarted: StartedServer | null = null;
      try {
        const rt = rtFor(s, 'crashy');
        await ok(rt('/write', json('POST', { path: 'v.txt', content: 'snapshot version' })));
        await ok(rt('/write', json('POST', { path: 'only-in-snapshot/x.txt', content: 'x' })));
        await ok(rt('/write', json('POST', { path: 'z.txt', content: 'z' })));
        const bodies = Array.from({ length: BULK }, (_, i) => bulkBody(i));
        for (let i = 0; i < BULK; i++)
          await ok(rt(`/files/bulk/f${String(i).padStart(2, '0')}.bin`, { method: 'PUT', body: bodies[i] }));
        const snap = await ok<Snapshot>(rt('/v1/snapshots', json('POST', {})));
        await ok(rt('/write', json('POST', { path: 'v.txt', content: 'current version' })));
        await ok(rt('/delete', json('POST', { path: 'only-in-snapshot' })));
        await ok(rt('/delete', json('POST', { path: 'bulk' })));
        await ok(rt('/write', json('POST', { path: 'only-current.txt', content: 'c' })));

        await expect(rt(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' })).rejects.toThrow();
        await s.kill('SIGKILL'); // already dead; waits for the exit
        expect(s.proc.signalCode).toBe('SIGKILL');

        restarted = await s.restart({ TROVE_TEST_CRASH_AT: '' });
        const rt2 = rtFor(restarted, 'crashy');
        const state = [
          await read(rt2, 'v.txt'),
          await read(rt2, 'only-in-snapshot/x.txt'),
          await read(rt2, 'only-current.txt'),
          await read(rt2, 'z.txt'),
        ];
        expect(state).toEqual(
          expected === 'old' ? ['current version', 404, 'c', 'z'] : ['snapshot version', 'x', 404, 'z'],
        );
        // The bulk of the snapshot is there entirely, byte for byte, or not at all.
        const bulk = await rt2('/v1/files?path=workspace/bulk');
        if (expected === 'old') {
          expect(bulk.status).toBe(404);
        } else {
          expect(((await bulk.json()) as { entries: unknown[] }).entries).toHaveLength(BULK);
          for (let i = 0; i < BULK; i++) {
            const got = Buffer.from(await (await rt2(`/files/bulk/f${String(i).padStart(2, '0')}.bin`)).arrayBuffer());
            expect(got.equals(bodies[i]!)).toBe(true);
          }
        }
        expect(readdirSync(join(restarted.dataDir, 'workspaces', restarted.workspaceId, '.trees'))).toEqual([]);
        // And the namespace is fully usable: restore again, normally this time.
        expect(await ok(rt2(`/v1/snapshots/${snap.snapshot_id}/restore`, { method: 'POST' }))).toEqual({
          files_restored: 3 + BULK,
        });
        expect(await read(rt2, 'v.txt')).toBe('snapshot version');
      } finally {
        await restarted?.stop();
        await s.close();
      }
    });
  }
});
