import { describe, expect, it } from 'vitest';
import { planRetry, retryDelayMs } from '../../src/webhooks/backoff.js';

const schedule = [1000, 5000, 30000];

describe('retryDelayMs', () => {
  it('walks the schedule and repeats its last step', () => {
    const mid = () => 0.5; // no jitter
    expect([1, 2, 3, 4, 10].map((n) => retryDelayMs(n, schedule, mid))).toEqual([1000, 5000, 30000, 30000, 30000]);
  });

  it('jitters each delay within ±20 %', () => {
    expect(retryDelayMs(2, schedule, () => 0)).toBe(4000);
    expect(retryDelayMs(2, schedule, () => 0.999999)).toBe(6000);
    for (let i = 0; i < 200; i++) {
      const d = retryDelayMs(3, schedule);
      expect(d).toBeGreaterThanOrEqual(24000);
      expect(d).toBeLessThanOrEqual(36000);
    }
  });
});

describe('planRetry', () => {
  const policy = { retryScheduleMs: schedule, maxAgeMs: 60_000 };
  const mid = () => 0.5;

  it('schedules the next attempt from now', () => {
    expect(planRetry({ nowMs: 10_000, windowStartMs: 0, attemptsInWindow: 1 }, policy, mid)).toEqual({
      final: false,
      nextAttemptMs: 11_000,
    });
  });

  it('keeps one last attempt at exactly the maximum age', () => {
    expect(planRetry({ nowMs: 50_000, windowStartMs: 0, attemptsInWindow: 3 }, policy, mid)).toEqual({
      final: false,
      nextAttemptMs: 60_000,
    });
  });

  it('gives up once the window is as old as the maximum age', () => {
    expect(planRetry({ nowMs: 60_000, windowStartMs: 0, attemptsInWindow: 4 }, policy, mid)).toEqual({ final: true });
    expect(planRetry({ nowMs: 1, windowStartMs: 0, attemptsInWindow: 1 }, { ...policy, maxAgeMs: 0 }, mid)).toEqual({
      final: true,
    });
  });

  it('retries for at least maxAge with the default 26 h policy', () => {
    const day = {
      retryScheduleMs: [1000, 5000, 30000, 120000, 600000, 1800000, 3600000, 7200000, 14400000],
      maxAgeMs: 26 * 3600_000,
    };
    let now = 0;
    let attempts = 0;
    for (;;) {
      attempts++;
      const plan = planRetry({ nowMs: now, windowStartMs: 0, attemptsInWindow: attempts }, day);
      if (plan.final) break;
      expect(plan.nextAttemptMs).toBeGreaterThan(now);
      now = plan.nextAttemptMs;
    }
    expect(now).toBeGreaterThanOrEqual(24 * 3600_000);
    expect(attempts).toBeGreaterThan(9);
    expect(attempts).toBeLessThan(30);
  });
});
