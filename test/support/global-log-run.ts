import { openLogRun } from './log-capture.js';

/** vitest.config.ts's globalSetup: one folder of logs per run, for the scan that follows it. */
export function setup(): void {
  openLogRun();
}
