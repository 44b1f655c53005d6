/** How long a queued exec may wait for a slot (sandbox/limiter.ts): by default as long as it may run. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

describe('exec queue wait', () => {
  it('defaults to the exec wall clock, follows it, and is overridden by its own setting', () => {
    expect(loadConfig({}).exec.queueTimeoutMs).toBe(30_000);
    expect(loadConfig({ TROVE_EXEC_TIMEOUT_MS: '60000' }).exec.queueTimeoutMs).toBe(60_000);
    expect(loadConfig({}, ['--exec-timeout-ms', '10000']).exec.queueTimeoutMs).toBe(10_000);
    expect(loadConfig({ TROVE_EXEC_TIMEOUT_MS: '60000', TROVE_EXEC_QUEUE_TIMEOUT_MS: '300' }).exec.queueTimeoutMs).toBe(
      300,
    );
  });
});
