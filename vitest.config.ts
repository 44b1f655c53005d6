import { defineConfig } from 'vitest/config';
import SkippedReporter from './test/helpers/skipped-reporter.js';

// One vitest run covers every package. End-to-end tests start the real server
// (packages/server/dist) on an ephemeral port, so `npm test` builds first.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    // The default reporter, then the tests this host skipped with their reasons (a non-root user, a missing tool).
    reporters: ['default', new SkippedReporter()],
  },
});
