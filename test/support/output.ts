import { vi } from 'vitest';
import { keepLogLines } from './log-capture.js';

/**
 * Everything the functions log or emit as metrics while `action` runs, as text. Powertools writes
 * through the global console in dev mode (vitest.config.ts sets POWERTOOLS_DEV).
 */
export async function capturedOutput(action: () => Promise<unknown>): Promise<string> {
  const lines: string[] = [];
  const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((method) =>
    vi
      .spyOn(console, method)
      .mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(' '))),
  );
  try {
    await action();
  } finally {
    for (const spy of spies) spy.mockRestore();
    // Held back from the console, but part of what the suite logs: the log scan reads it too.
    keepLogLines(lines);
  }
  return lines.join('\n');
}
