import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

const jsonDir = process.env.VITEST_JSON_DIR;

// Unit tests: pure logic with small fakes, no hosts.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
    // A bound, not a speed target: the tests that run git or spawn processes need more than
    // vitest's 5 s default on a busy two-core machine.
    testTimeout: 30_000,
    reporters: jsonDir ? ['default', 'json'] : ['default'],
    outputFile: jsonDir ? { json: join(jsonDir, 'unit.json') } : {},
  },
});
