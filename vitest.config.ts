import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real local peers (fauxqs, dynalite, sandboxes) on loopback ports.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
