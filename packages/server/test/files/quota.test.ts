/**
 * NamespaceQuota's measures: what commands trigger is bounded per namespace (one walk at a time, then a pause
 * proportional to the walk), and callers arriving during a walk share it, so a tenant running commands back
 * to back in a large tree cannot make the server walk it once per command.
 */
import { describe, expect, it } from 'vitest';
import { NamespaceQuota } from '../../src/files/quota.js';
import type { NamespaceService, NsContext } from '../../src/namespaces/service.js';
import type { StorageGuard } from '../../src/tree/storage.js';
import { AppError } from '../../src/errors.js';

/** A namespace whose tree "measures" as `usage`, each walk finishing when the test says so. */
function fakeNamespaces(usage: { bytes: number; files: number }) {
  const walks: Array<() => void> = [];
  let started = 0;
  const namespaces = {
    openTree: async () => ({
      measure: () => {
        started++;
        return new Promise((resolve) => walks.push(() => resolve({ ...usage, complete: true })));
      },
      close: () => {},
    }),
  } as unknown as NamespaceService;
  return {
    namespaces,
    started: () => started,
    /** Ends the oldest walk still running. */
    finish: async () => {
      walks.shift()!();
      await new Promise((r) => setImmediate(r));
    },
  };
}

const storage = { check: () => {} } as unknown as StorageGuard;
const ctx: NsContext = { workspaceId: 'ws_1', namespace: 'big' } as NsContext;
const limits = (quotaBytes: number) => ({ quotaBytes, quotaFiles: 0, usageCacheMs: 30_000 });

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

describe('NamespaceQuota measures', () => {
  it('50 commands ending during a walk cause one more walk, not 50', async () => {
    const f = fakeNamespaces({ bytes: 10, files: 1 });
    const q = new NamespaceQuota(f.namespaces, limits(1000), storage);
    q.execFinished(ctx);
    await until(() => f.started() === 1);
    for (let i = 0; i < 50; i++) q.execFinished(ctx);
    expect(f.started()).toBe(1);
    await f.finish();
    // The next walk waits for the pause after this one; then exactly one runs for all 50.
    expect(f.started()).toBe(1);
    await until(() => f.started() === 2);
    await f.finish();
    await new Promise((r) => setTimeout(r, 100));
    expect(f.started()).toBe(2);
    q.stopWatching();
  });

  it('callers arriving during a walk share it; a fresh one gets a walk that starts after it', async () => {
    const f = fakeNamespaces({ bytes: 10, files: 1 });
    const q = new NamespaceQuota(f.namespaces, limits(1000), storage);
    const shared = Promise.all([q.usageOf(ctx), q.usageOf(ctx), q.usageOf(ctx)]);
    await until(() => f.started() === 1);
    const fresh = q.usageOf(ctx, undefined, true);
    // Not beside the walk under way (it may have passed what the fresh caller knows changed): after it.
    await new Promise((r) => setTimeout(r, 20));
    expect(f.started()).toBe(1);
    await f.finish();
    expect((await shared).map((u) => [u.bytes, u.files])).toEqual([
      [10, 1],
      [10, 1],
      [10, 1],
    ]);
    await until(() => f.started() === 2);
    await f.finish();
    expect((await fresh).bytes).toBe(10);
    expect(f.started()).toBe(2);
    // Cached now: no walk.
    expect((await q.usageOf(ctx)).bytes).toBe(10);
    expect(f.started()).toBe(2);
  });

  it("a command's measure that finds the namespace over its quota turns its writes and execs away", async () => {
    const f = fakeNamespaces({ bytes: 5000, files: 3 });
    const q = new NamespaceQuota(f.namespaces, limits(1000), storage);
    await q.assertCanGrow(ctx); // nothing measured yet: not known to be over
    q.execFinished(ctx);
    await until(() => f.started() === 1);
    await f.finish();
    const err = await q.assertCanGrow(ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('over_quota');
    q.stopWatching();
  });

  it('without a quota, a command only forgets the cached usage (nothing is walked)', async () => {
    const f = fakeNamespaces({ bytes: 10, files: 1 });
    const q = new NamespaceQuota(f.namespaces, limits(0), storage);
    for (let i = 0; i < 5; i++) q.execFinished(ctx);
    await new Promise((r) => setTimeout(r, 50));
    expect(f.started()).toBe(0);
  });
});
