import { defineConfig } from 'vitest/config';

/** Run after the suite (`npm test`): scans every line the suite logged (test/support/log-capture.ts). */
export default defineConfig({
  test: {
    include: ['test/log-scan/**/*.test.ts'],
  },
});
