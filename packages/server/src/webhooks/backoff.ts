/**
 * When to try a failed delivery again. The operator's schedule gives the
 * growing delays (the last one repeats); each is spread by ±20 % so endpoints
 * that failed together (an outage) are not retried in lock-step. Retries stop
 * once the retry window is `maxAgeMs` old, with one last attempt scheduled at
 * exactly that age, so a delivery is retried for at least `maxAgeMs`.
 */
export interface RetryPolicy {
  retryScheduleMs: number[];
  maxAgeMs: number;
}

export type RetryPlan = { final: true } | { final: false; nextAttemptMs: number };

export function retryDelayMs(attemptsInWindow: number, schedule: number[], random: () => number = Math.random): number {
  const base = schedule[Math.min(Math.max(attemptsInWindow, 1), schedule.length) - 1] ?? 1000;
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Plan after a failed attempt; `attemptsInWindow` counts it. */
export function planRetry(
  input: { nowMs: number; windowStartMs: number; attemptsInWindow: number },
  policy: RetryPolicy,
  random: () => number = Math.random,
): RetryPlan {
  const deadline = input.windowStartMs + policy.maxAgeMs;
  if (input.nowMs >= deadline) return { final: true };
  const next = input.nowMs + retryDelayMs(input.attemptsInWindow, policy.retryScheduleMs, random);
  return { final: false, nextAttemptMs: Math.min(next, deadline) };
}
