import { defineConfig } from 'vitest/config';

// End-to-end tests: the bundled dist/ against the two-host test bed. They share the
// hosts, so they run one file at a time.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    globalSetup: ['test/e2e/global-setup.ts'],
  },
});
