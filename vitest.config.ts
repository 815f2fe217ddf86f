import { defineConfig } from 'vitest/config';

// Unit tests: pure logic with small fakes, no hosts.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
  },
});
