import { teeOutput } from './log-capture.js';

// vitest.config.ts's setupFiles: what this worker logs is kept for the log scan (test/log-scan/).
teeOutput();
