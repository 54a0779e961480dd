import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The log scan reads what this run logged: it runs after it (vitest.log-scan.config.ts).
    exclude: [...configDefaults.exclude, 'test/log-scan/**'],
    // Integration tests start real local peers (fauxqs, dynalite, sandboxes) on loopback ports.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Powertools writes through the global console in dev mode, so tests can read what the
    // functions log and count, and the runner shows it only for failing tests.
    env: { POWERTOOLS_DEV: 'true', POWERTOOLS_METRICS_DISABLED: 'false' },
    silent: 'passed-only',
    // Everything the suite logs is also kept in files, for the log scan.
    globalSetup: ['test/support/global-log-run.ts'],
    setupFiles: ['test/support/setup-log-capture.ts'],
  },
});
