/**
 * DirSyncer: writes landing in one directory share its fsyncs. A caller is
 * answered only by an fsync that started after it asked; callers that arrive
 * while one runs share the next; other directories are not held up. The
 * fsync is a fake the test completes, so no outcome depends on timing.
 */
import fs from 'node:fs';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirSyncer } from '../../src/tree/dir-sync.js';

const root = mkdtempSync(join(tmpdir(), 'trove-dir-sync-'));
mkdirSync(join(root, 'a'));
mkdirSync(join(root, 'b'));
const opened: number[] = [];
const open = (name: string) => {
  const fd = fs.openSync(join(root, name), 'r');
  opened.push(fd);
  return fd;
};
afterAll(() => {
  for (const fd of opened) fs.closeSync(fd);
  rmSync(root, { recursive: true, force: true });
});

/** A fake fsync: records each call; the test settles them one by one. */
function fakeFsync() {
  const calls: Array<{ fd: number; resolve(): void; reject(err: Error): void }> = [];
  const fsync = (fd: number) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ fd, resolve, reject });
    });
  return { calls, fsync };
}

/** Whether `p` has settled once pending callbacks have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return done;
}

describe('DirSyncer', () => {
  it('shares one fsync among the callers that arrived while the previous one ran', async () => {
    const { calls, fsync } = fakeFsync();
    const syncer = new DirSyncer(fsync);
    const a1 = open('a');
    const a2 = open('a'); // another descriptor of the same directory
    const first = syncer.sync(a1);
    expect(calls.map((c) => c.fd)).toEqual([a1]);
    const waiting = [syncer.sync(a2), syncer.sync(a1), syncer.sync(a2)];
    // Not covered by the running fsync (it may have started before their renames): nothing new yet.
    expect(calls).toHaveLength(1);
    calls[0]!.resolve();
    expect(await settled(first)).toBe(true);
    for (const w of waiting) expect(await settled(w)).toBe(false);
    // One more fsync for the three of them, on the descriptor of the first to arrive.
    expect(calls.map((c) => c.fd)).toEqual([a1, a2]);
    calls[1]!.resolve();
    await Promise.all(waiting);
    expect(syncer.fsyncs).toBe(2);
    // Idle again: the next caller starts its own fsync at once.
    const later = syncer.sync(a1);
    expect(calls).toHaveLength(3);
    calls[2]!.resolve();
    await later;
  });

  it('does not make other directories wait', async () => {
    const { calls, fsync } = fakeFsync();
    const syncer = new DirSyncer(fsync);
    const a = open('a');
    const b = open('b');
    const pa = syncer.sync(a);
    const pb = syncer.sync(b);
    expect(calls.map((c) => c.fd)).toEqual([a, b]);
    calls[1]!.resolve();
    await pb;
    expect(await settled(pa)).toBe(false);
    calls[0]!.resolve();
    await pa;
  });

  it('gives an fsync error to every caller that shares it, and the next round still runs', async () => {
    const { calls, fsync } = fakeFsync();
    const syncer = new DirSyncer(fsync);
    const a = open('a');
    const first = syncer.sync(a);
    const shared = [syncer.sync(a), syncer.sync(a)];
    const late = syncer.sync(a);
    calls[0]!.resolve();
    await first;
    const eio = Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    calls[1]!.reject(eio);
    for (const p of [...shared, late]) await expect(p).rejects.toBe(eio);
    const next = syncer.sync(a);
    expect(calls).toHaveLength(3);
    calls[2]!.resolve();
    await next;
  });

  it('fsyncs a real directory', async () => {
    const syncer = new DirSyncer();
    const a = open('a');
    await Promise.all([syncer.sync(a), syncer.sync(a), syncer.sync(a)]);
    expect(syncer.fsyncs).toBe(2);
  });
});
