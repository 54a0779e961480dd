import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';

/**
 * Every line the test suite logs, kept in files, so that one test can read all of it afterwards
 * (test/log-scan/): vitest.config.ts's global setup opens a folder per run, a setup file in each
 * test worker tees the console and the process's output into it, and capturedOutput adds what it
 * holds back from the console.
 */
const LOG_ROOT = join(import.meta.dirname, '..', '..', 'node_modules', '.cache', 'test-logs');
const LATEST = join(LOG_ROOT, 'latest');
const RUN_DIR = 'TEST_LOG_DIR';

/** Global setup: a fresh folder for this run, named in `latest` for the scan that follows. */
export function openLogRun(): void {
  const dir = join(LOG_ROOT, `run-${Date.now()}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(LATEST, dir);
  process.env[RUN_DIR] = dir;
}

export function keepLogLines(lines: readonly string[]): void {
  const dir = process.env[RUN_DIR];
  if (!dir || lines.length === 0) return;
  appendFileSync(join(dir, `${process.pid}.log`), `${lines.join('\n')}\n`);
}

/** Tees the console and stdout/stderr of this worker into the run's files (once per worker). */
export function teeOutput(): void {
  const tagged = console.log as { teed?: boolean };
  if (tagged.teed) return;
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    const original = console[method];
    const teed = (...args: unknown[]) => {
      keepLogLines([format(...args)]);
      original.apply(console, args);
    };
    console[method] = Object.assign(teed, { teed: true });
  }
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      keepLogLines([typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')]);
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
}

/** Every line the latest run kept, read by the scan after it. */
export function latestRunLines(): string[] {
  if (!existsSync(LATEST)) return [];
  const dir = readFileSync(LATEST, 'utf8');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((file) => readFileSync(join(dir, file), 'utf8').split('\n'));
}
