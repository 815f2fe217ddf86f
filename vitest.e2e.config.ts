import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

const jsonDir = process.env.VITEST_JSON_DIR;

// End-to-end tests run the bundled dist/ against the two-host test bed;
// integration tests drive src/ modules against the same hosts. They share
// the hosts, so files run one at a time.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts', 'test/integration/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    globalSetup: ['test/e2e/global-setup.ts'],
    reporters: jsonDir ? ['default', 'json'] : ['default'],
    outputFile: jsonDir ? { json: join(jsonDir, 'e2e.json') } : {},
  },
});
