/**
 * Long-poll waiters (src/events/waiters.ts): one bus subscription per workspace whatever the number of
 * waiters, a wake-up between two waits is not lost, and each way a wait ends (wake-up, timeout, the
 * caller's signal, end(), the server closing) ends it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LocalEventBus } from '../../src/events/bus.js';
import { Waiters, type EventWaiter } from '../../src/events/waiters.js';

/** Resolves with how long `p` took, or rejects when it takes more than `ms`. */
async function within(p: Promise<void>, ms: number): Promise<number> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      p,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return performance.now() - t0;
}

describe('event waiters', () => {
  const bus = new LocalEventBus();
  let waiters = new Waiters(bus);
  const open: EventWaiter[] = [];
  const waiter = (ws: string) => {
    const w = waiters.open(ws);
    open.push(w);
    return w;
  };

  afterEach(() => {
    for (const w of open.splice(0)) w.dispose();
    waiters = new Waiters(bus);
  });

  it('share one bus subscription per workspace, dropped with the last waiter', async () => {
    const a = Array.from({ length: 50 }, () => waiter('ws-a'));
    const b = waiter('ws-b');
    expect(waiters.size).toBe(51);
    expect(waiters.subscriptions).toBe(2);
    const waits = a.map((w) => w.wait(60_000));
    expect(waiters.waiting).toBe(50);
    bus.publish('ws-a');
    await within(
      Promise.all(waits).then(() => {}),
      5_000,
    );
    expect(waiters.waiting).toBe(0);
    for (const w of a) w.dispose();
    expect(waiters.subscriptions).toBe(1);
    b.dispose();
    expect(waiters.subscriptions).toBe(0);
    expect(waiters.size).toBe(0);
  });

  it('keep a wake-up that came between two waits, once', async () => {
    const w = waiter('ws-c');
    bus.publish('ws-c');
    await within(w.wait(60_000), 1_000);
    // Consumed: the next wait waits for the next wake-up or its timeout.
    const took = await within(w.wait(150), 5_000);
    expect(took).toBeGreaterThanOrEqual(140);
  });

  it('are not woken by another workspace', async () => {
    const w = waiter('ws-d');
    const wait = w.wait(300);
    bus.publish('ws-other');
    expect(await within(wait, 5_000)).toBeGreaterThanOrEqual(290);
  });

  it("end a wait when the caller's signal aborts, and at once when it already has", async () => {
    const w = waiter('ws-e');
    const abort = new AbortController();
    const wait = w.wait(60_000, abort.signal);
    abort.abort();
    await within(wait, 1_000);
    await within(w.wait(60_000, abort.signal), 1_000);
    expect(w.ended).toBe(false);
  });

  it('end() ends the running wait and every later one', async () => {
    const w = waiter('ws-f');
    const wait = w.wait(60_000);
    w.end();
    await within(wait, 1_000);
    expect(w.ended).toBe(true);
    await within(w.wait(60_000), 1_000);
  });

  it('closeAll() ends every wait, and waiters opened afterwards start ended', async () => {
    const ws = ['ws-g', 'ws-h'].map((id) => waiter(id));
    const waits = ws.map((w) => w.wait(60_000));
    waiters.closeAll();
    await within(
      Promise.all(waits).then(() => {}),
      1_000,
    );
    expect(ws.every((w) => w.ended)).toBe(true);
    const late = waiter('ws-g');
    expect(late.ended).toBe(true);
    await within(late.wait(60_000), 1_000);
  });
});
