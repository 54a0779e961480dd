import { open } from 'node:fs/promises';
import type { SyncOutcome } from '../lib/sync/sync-identity-change.js';
import { EXIT_ATTENTION, EXIT_OK, UsageError } from './io.js';

/** What became of one input row: a line of the results file. */
export interface RowResult {
  line: number;
  externalId?: string;
  outcome: string;
  reason?: string;
  profileId?: string;
}

/** The summary's rows, in order. */
export const APPLY_OUTCOMES = [
  'applied',
  'bound',
  'created',
  'merged',
  'swapped',
  'unchanged',
  'stale',
  'skipped',
  'planned',
  'parked',
  'failed',
  'invalid',
] as const satisfies readonly (SyncOutcome | 'parked' | 'failed' | 'invalid')[];

export const BIND_OUTCOMES = [
  'bound',
  'unchanged',
  'conflict',
  'not-found',
  'planned',
  'failed',
  'invalid',
] as const;

/** Rows a person has to look at; any of them makes the exit code 1. */
const NEEDS_ATTENTION = new Set(['invalid', 'failed', 'parked', 'conflict']);

export const invalid = (line: number, reason: string, externalId?: string): RowResult => ({
  line,
  ...(externalId ? { externalId } : {}),
  outcome: 'invalid',
  reason,
});

/** Counts by outcome, every listed outcome present (0 included) so the summary always has the same rows. */
export function tally(outcomes: readonly string[], results: Iterable<Pick<RowResult, 'outcome'>>) {
  const counts = new Map<string, number>(outcomes.map((outcome) => [outcome, 0]));
  for (const { outcome } of results) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  return counts;
}

export const exitCodeOf = (counts: Map<string, number>) =>
  [...counts].some(([outcome, count]) => count > 0 && NEEDS_ATTENTION.has(outcome))
    ? EXIT_ATTENTION
    : EXIT_OK;

export interface SummaryInput {
  title: string;
  counts: Map<string, number>;
  elapsedMs: number;
  resultsPath: string;
  retries: { total: number; throttled: number };
}

export function formatSummary({ title, counts, elapsedMs, resultsPath, retries }: SummaryInput): string {
  const rows = [...counts.values()].reduce((sum, count) => sum + count, 0);
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? `, ${(rows / seconds).toFixed(1)} rows/s` : '';
  const width = Math.max(...[...counts.keys()].map((outcome) => outcome.length));
  const lines = [
    `${title}: ${rows} rows in ${seconds.toFixed(1)} s${rate}`,
    ...[...counts].map(([outcome, count]) => `  ${outcome.padEnd(width)}  ${String(count).padStart(6)}`),
  ];
  if (retries.total > 0) {
    lines.push(`Klaviyo requests retried: ${retries.total} (${retries.throttled} after a 429)`);
  }
  lines.push(`Results: ${resultsPath}`);
  return `${lines.join('\n')}\n`;
}

/** One JSON line, fields in a fixed order and absent ones left out. */
export const resultLine = ({ line, externalId, outcome, reason, profileId }: RowResult) =>
  `${JSON.stringify({ line, externalId, outcome, reason, profileId })}\n`;

export interface ResultsFile {
  write(result: RowResult): void;
  close(): Promise<void>;
}

/** Opened before the run, so an unwritable path stops it before anything is sent to Klaviyo. */
export async function openResultsFile(path: string): Promise<ResultsFile> {
  const handle = await open(path, 'w').catch((error: Error) => {
    throw new UsageError(`cannot write the results to ${path}: ${error.message}`);
  });
  const stream = handle.createWriteStream();
  return {
    write: (result) => stream.write(resultLine(result)),
    close: () =>
      new Promise<void>((resolve, reject) =>
        stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
      ),
  };
}
