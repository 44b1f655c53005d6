import { defineConfig } from 'vitest/config';

// One vitest run covers every package. End-to-end tests start the real server
// (packages/server/dist) on an ephemeral port, so `npm test` builds first.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
