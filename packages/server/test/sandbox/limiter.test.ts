import { describe, expect, it, vi, afterEach } from 'vitest';
import { ExecLimiter, LimiterBusyError } from '../../src/sandbox/limiter.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('ExecLimiter', () => {
  it('grants immediately under both caps and counts running slots', async () => {
    const l = new ExecLimiter({ global: 2, perKey: 2, queueTimeoutMs: 100 });
    const a = await l.acquire('ns');
    const b = await l.acquire('other');
    expect(l.active).toBe(2);
    a();
    a(); // releasing twice must not free a second slot
    expect(l.active).toBe(1);
    b();
    expect(l.active).toBe(0);
  });

  it('refuses with scope "namespace" when the key stays at its cap past the queue timeout', async () => {
    vi.useFakeTimers();
    const l = new ExecLimiter({ global: 10, perKey: 1, queueTimeoutMs: 500 });
    await l.acquire('ns');
    const waiting = l.acquire('ns');
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
    const l = new ExecLimiter({ global: 1, perKey: 5, queueTimeoutMs: 100 });
    await l.acquire('a');
    const err = l.acquire('b').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(await err).toMatchObject({ scope: 'global' });
  });

  it('hands a freed slot to the oldest waiter that fits, skipping a namespace still at its cap', async () => {
    const l = new ExecLimiter({ global: 2, perKey: 1, queueTimeoutMs: 5000 });
    const a1 = await l.acquire('a');
    const b1 = await l.acquire('b');
    const order: string[] = [];
    const a2 = l.acquire('a').then((r) => (order.push('a2'), r));
    const c1 = l.acquire('c').then((r) => (order.push('c1'), r));
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

  it('refuses at once when too many callers are already waiting', async () => {
    const l = new ExecLimiter({ global: 1, perKey: 1, queueTimeoutMs: 10_000, maxWaiting: 2 });
    const first = await l.acquire('a');
    const w1 = l.acquire('a');
    const w2 = l.acquire('a');
    await expect(l.acquire('a')).rejects.toBeInstanceOf(LimiterBusyError);
    first();
    (await w1)();
    (await w2)();
  });
});
