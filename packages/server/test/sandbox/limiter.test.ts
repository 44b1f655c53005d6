import { describe, expect, it, vi, afterEach } from 'vitest';
import { ExecLimiter, LimiterBusyError } from '../../src/sandbox/limiter.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('ExecLimiter', () => {
  it('grants immediately under both caps and counts running slots', async () => {
    const l = new ExecLimiter({ global: 2, perWorkspace: 100, perNamespace: 2, queueTimeoutMs: 100 });
    const a = await l.acquire('ws', 'ns');
    const b = await l.acquire('ws', 'other');
    expect(l.active).toBe(2);
    a();
    a(); // releasing twice must not free a second slot
    expect(l.active).toBe(1);
    b();
    expect(l.active).toBe(0);
  });

  it('refuses with scope "namespace" when the key stays at its cap past the queue timeout', async () => {
    vi.useFakeTimers();
    const l = new ExecLimiter({ global: 10, perWorkspace: 100, perNamespace: 1, queueTimeoutMs: 500 });
    await l.acquire('ws', 'ns');
    const waiting = l.acquire('ws', 'ns');
    const result = waiting.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(499);
    expect(l.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const err = await result;
    expect(err).toBeInstanceOf(LimiterBusyError);
    expect((err as LimiterBusyError).scope).toBe('namespace');
    expect(l.queued).toBe(0);
  });

  it('refuses with scope "global" when the server is full', async () => {
    vi.useFakeTimers();
    const l = new ExecLimiter({ global: 1, perWorkspace: 100, perNamespace: 5, queueTimeoutMs: 100 });
    await l.acquire('ws', 'a');
    const err = l.acquire('ws', 'b').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(await err).toMatchObject({ scope: 'global' });
  });

  it('hands a freed slot to the oldest waiter that fits, skipping a namespace still at its cap', async () => {
    const l = new ExecLimiter({ global: 2, perWorkspace: 100, perNamespace: 1, queueTimeoutMs: 5000 });
    const a1 = await l.acquire('ws', 'a');
    const b1 = await l.acquire('ws', 'b');
    const order: string[] = [];
    const a2 = l.acquire('ws', 'a').then((r) => (order.push('a2'), r));
    const c1 = l.acquire('ws', 'c').then((r) => (order.push('c1'), r));
    b1(); // frees a global slot; 'a' is still at its cap, so 'c' goes first
    const rc = await c1;
    expect(order).toEqual(['c1']);
    a1();
    const ra = await a2;
    expect(order).toEqual(['c1', 'a2']);
    rc();
    ra();
    expect(l.active).toBe(0);
  });

  it('tells whether a call of a namespace waits (what decides a spare after a command ends)', async () => {
    const l = new ExecLimiter({ global: 1, perWorkspace: 100, perNamespace: 1, queueTimeoutMs: 5000 });
    const a = await l.acquire('ws', 'a');
    expect(l.waitsFor('ws', 'a')).toBe(false);
    const b = l.acquire('ws', 'b');
    expect([l.queued, l.waitsFor('ws', 'b'), l.waitsFor('ws', 'a'), l.waitsFor('other', 'b')]).toEqual([
      1,
      true,
      false,
      false,
    ]);
    a();
    const rb = await b;
    expect([l.queued, l.waitsFor('ws', 'b')]).toEqual([0, false]);
    rb();
  });

  it('refuses at once when too many callers are already waiting', async () => {
    const l = new ExecLimiter({ global: 1, perWorkspace: 100, perNamespace: 1, queueTimeoutMs: 10_000, maxWaiting: 2 });
    const first = await l.acquire('ws', 'a');
    const w1 = l.acquire('ws', 'a');
    const w2 = l.acquire('ws', 'a');
    await expect(l.acquire('ws', 'a')).rejects.toBeInstanceOf(LimiterBusyError);
    first();
    (await w1)();
    (await w2)();
  });

  it('caps one workspace below the global cap: its next call is refused with scope "workspace", another workspace still runs', async () => {
    vi.useFakeTimers();
    const l = new ExecLimiter({ global: 4, perWorkspace: 2, perNamespace: 4, queueTimeoutMs: 200 });
    // Different namespaces: the namespace cap is not what stops the third call.
    const a1 = await l.acquire('ws-a', 'n1');
    const a2 = await l.acquire('ws-a', 'n2');
    const refused = l.acquire('ws-a', 'n3').catch((e: unknown) => e);
    const b = await l.acquire('ws-b', 'n1');
    expect(l.active).toBe(3);
    await vi.advanceTimersByTimeAsync(200);
    expect(await refused).toMatchObject({ scope: 'workspace' });
    a1();
    a2();
    b();
    expect(l.active).toBe(0);
  });

  it('hands a freed slot to a waiter of another workspace while the busy workspace stays at its cap', async () => {
    const l = new ExecLimiter({ global: 3, perWorkspace: 2, perNamespace: 4, queueTimeoutMs: 5000 });
    const a1 = await l.acquire('ws-a', 'n');
    await l.acquire('ws-a', 'n');
    const b1 = await l.acquire('ws-b', 'n');
    const order: string[] = [];
    const a3 = l.acquire('ws-a', 'n').then((r) => (order.push('a3'), r));
    const b2 = l.acquire('ws-b', 'n').then((r) => (order.push('b2'), r));
    b1(); // ws-a is still at its cap, so its older waiter is skipped
    const rb = await b2;
    expect(order).toEqual(['b2']);
    a1();
    (await a3)();
    expect(order).toEqual(['b2', 'a3']);
    rb();
  });

  it('refuses at once a workspace that already has too many waiters, while others may still queue', async () => {
    const l = new ExecLimiter({
      global: 1,
      perWorkspace: 1,
      perNamespace: 1,
      queueTimeoutMs: 10_000,
      maxWaitingPerWorkspace: 2,
    });
    const first = await l.acquire('ws-a', 'n');
    const w1 = l.acquire('ws-a', 'n');
    const w2 = l.acquire('ws-a', 'n');
    await expect(l.acquire('ws-a', 'n')).rejects.toMatchObject({ scope: 'workspace' });
    const other = l.acquire('ws-b', 'n');
    expect(l.queued).toBe(3);
    first();
    (await w1)();
    (await w2)();
    (await other)();
    expect(l.active).toBe(0);
  });

  it('lets a burst of first calls far larger than the slots all through when the wait is the exec wall clock, with the queue bounded', async () => {
    vi.useFakeTimers();
    // The server's defaults: 16 slots, 8 per workspace, 4 per namespace; waiting up to the exec timeout (30 s).
    const l = new ExecLimiter({ global: 16, perWorkspace: 8, perNamespace: 4, queueTimeoutMs: 30_000 });
    // 100 first calls in 100 new namespaces of one workspace, each holding its slot 1 s (a slow machine's
    // sandbox start): the last ones wait ~12 s, past the old 5 s default, and must still get their slot.
    let maxQueued = 0;
    const outcomes = Array.from({ length: 100 }, (_, i) =>
      l.acquire('ws', `burst-${i}`).then(
        (release) => {
          maxQueued = Math.max(maxQueued, l.queued);
          setTimeout(release, 1000);
          return 'ok';
        },
        (err: unknown) => err,
      ),
    );
    expect(l.active).toBe(8);
    expect(l.queued).toBe(92);
    await vi.advanceTimersByTimeAsync(13_000);
    expect(await Promise.all(outcomes)).toEqual(Array(100).fill('ok'));
    expect(maxQueued).toBeLessThanOrEqual(92);
    expect(l.active).toBe(0);
    expect(l.queued).toBe(0);
  });

  it('refuses at once (no wait) the waiters past the bounds, per workspace (128) and in all (256)', async () => {
    vi.useFakeTimers();
    const l = new ExecLimiter({ global: 16, perWorkspace: 8, perNamespace: 4, queueTimeoutMs: 30_000 });
    const held: Array<Promise<unknown>> = [];
    // Workspace a: 8 running, 128 waiting; the next one is refused without waiting.
    for (let i = 0; i < 8 + 128; i++) held.push(l.acquire('ws-a', `n${i}`).catch((e: unknown) => e));
    expect(l.active).toBe(8);
    expect(l.queued).toBe(128);
    const refusedA = l.acquire('ws-a', 'one-more').catch((e: unknown) => e);
    // Settled before any timer runs: a refusal past the bound costs the caller no wait.
    await vi.advanceTimersByTimeAsync(0);
    expect(await refusedA).toMatchObject({ scope: 'workspace' });
    // Workspace b fills the rest of the global queue (8 running, 128 waiting): 256 waiting in all.
    for (let i = 0; i < 8 + 128; i++) held.push(l.acquire('ws-b', `n${i}`).catch((e: unknown) => e));
    expect(l.queued).toBe(256);
    const refusedC = l.acquire('ws-c', 'n').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(0);
    expect(await refusedC).toMatchObject({ scope: 'global' });
    expect(l.queued).toBe(256);
    // The waiters that were admitted to the queue are refused only once the whole wait has passed.
    await vi.advanceTimersByTimeAsync(29_999);
    expect(l.queued).toBe(256);
    await vi.advanceTimersByTimeAsync(1);
    expect(l.queued).toBe(0);
    const settled = await Promise.all(held);
    expect(settled.filter((x) => x instanceof LimiterBusyError)).toHaveLength(256);
  });
});
