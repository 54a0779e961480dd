import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/** `npm run test:faults`: the fault suite alone, at full size (a 60-second Klaviyo outage), its table printed. */
export default defineConfig({
  test: {
    ...base.test,
    // The sandbox's fault injection the suite relies on (a test of the local peer, so in test/local).
    include: ['test/faults/**/*.test.ts', 'test/local/sandbox-faults.test.ts'],
    env: { ...base.test?.env, FAULT_SUITE_SIZE: 'full' },
    silent: false,
  },
});
