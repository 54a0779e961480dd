import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real local peers (fauxqs, dynalite, sandboxes) on loopback ports.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Powertools writes through the global console in dev mode, so tests can read what the
    // functions log and count, and the runner shows it only for failing tests.
    env: { POWERTOOLS_DEV: 'true', POWERTOOLS_METRICS_DISABLED: 'false' },
    silent: 'passed-only',
  },
});
