import { createHash } from 'node:crypto';
import { type FileHandle, open, rename } from 'node:fs/promises';
import { maskEmail, maskIdentifiersInText, maskPhone } from '../lib/observability/mask.js';
import type { SyncOutcome } from '../lib/sync/sync-identity-change.js';
import { EXIT_ATTENTION, EXIT_OK, UsageError } from './io.js';
import { completeLines, readIfThere } from './ndjson.js';
import { printable } from './terminal.js';

/** What became of one input row: a line of the results file. */
export interface RowResult {
  line: number;
  externalId?: string;
  outcome: string;
  reason?: string;
  profileId?: string;
  /** Which input row this answers (rowKeyOf): how a rerun knows the row is done. */
  row?: string;
  /** The Klaviyo account and tenant it was done against (targetIdOf): a rerun against another does it again. */
  target?: string;
  /** A failure that may pass (Klaviyo unreachable, throttled, 5xx; a row not attempted): a rerun tries it again. */
  transient?: boolean;
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
  'parked',
  'failed',
  'invalid',
] as const satisfies readonly (SyncOutcome | 'parked' | 'failed' | 'invalid')[];

/** A dry run's rows: what each would come to (apply.ts dryRunOutcomeOf). */
export const APPLY_DRY_RUN_OUTCOMES = [
  'would-create',
  'would-patch',
  'would-bind',
  'would-merge',
  'would-swap',
  'unchanged',
  'would-skip',
  'stale',
  'skipped',
  'would-park',
  'failed',
  'invalid',
] as const;

/** A bind row's outcomes besides binding, the same in a dry run. */
const BIND_OTHER_OUTCOMES = ['unchanged', 'conflict', 'not-found', 'skipped', 'failed', 'invalid'] as const;

export const BIND_OUTCOMES = ['bound', ...BIND_OTHER_OUTCOMES] as const;

export const BIND_DRY_RUN_OUTCOMES = ['would-bind', ...BIND_OTHER_OUTCOMES] as const;

/** Rows a person has to look at; any of them makes the exit code 1. */
const NEEDS_ATTENTION = new Set(['invalid', 'failed', 'parked', 'conflict', 'would-park']);

export const needsAttention = (result: Pick<RowResult, 'outcome'>) => NEEDS_ATTENTION.has(result.outcome);

/** Rows listed on screen after the summary; the rest are counted, and are in the results file. */
export const ATTENTION_SHOWN = 20;

/**
 * The rows that need attention, one line each: input line, customer id, outcome, reason, and the
 * row's identifiers masked (`identifiersOf`): for the screen, where the results file keeps them whole.
 */
export function formatAttention(
  results: Iterable<RowResult>,
  identifiersOf: (line: number) => string | undefined,
  resultsPath: string,
  shown = ATTENTION_SHOWN,
): string {
  const rows = [...results].filter(needsAttention).sort((a, b) => a.line - b.line);
  if (rows.length === 0) return '';
  const lines = rows.slice(0, shown).map((row) => {
    const identifiers = identifiersOf(row.line);
    return [
      `  line ${row.line}`,
      row.externalId === undefined ? '(no externalId)' : printable(row.externalId),
      row.outcome,
      ...(row.reason ? [maskIdentifiersInText(printable(row.reason))] : []),
      ...(identifiers ? [`[${printable(identifiers)}]`] : []),
    ].join('  ');
  });
  const more = rows.length - lines.length;
  return [
    `Rows that need attention (${rows.length}):`,
    ...lines,
    ...(more > 0 ? [`  … and ${more} more: every row's outcome and reason is in ${resultsPath}`] : []),
  ]
    .map((line) => `${line}\n`)
    .join('');
}

/** `email a***@example.com, phone ********0100`: a row's identifiers as the screen shows them. */
export function maskedIdentifiers(values: Record<string, string>): string | undefined {
  const parts = [
    values.email && `email ${maskEmail(values.email)}`,
    values.previousemail && `previousEmail ${maskEmail(values.previousemail)}`,
    values.phone && `phone ${maskPhone(values.phone)}`,
    values.previousphone && `previousPhone ${maskPhone(values.previousphone)}`,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

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
  [...counts].some(([outcome, count]) => count > 0 && needsAttention({ outcome })) ? EXIT_ATTENTION : EXIT_OK;

export interface SummaryInput {
  title: string;
  /** Every row's outcome, those an earlier run finished included. */
  counts: Map<string, number>;
  elapsedMs: number;
  resultsPath: string;
  retries: { total: number; throttled: number };
  /** Rows an earlier run had finished, skipped by this one. */
  earlier?: number;
  /** Rows with no outcome yet (the run stopped, or their bulk job is still to follow). */
  notDone?: number;
  bulk?: { profiles: number; importErrors: number; note: string };
}

export function formatSummary(summary: SummaryInput): string {
  const { title, counts, elapsedMs, resultsPath, retries, earlier = 0, notDone = 0, bulk } = summary;
  const rows = [...counts.values()].reduce((sum, count) => sum + count, 0);
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? `, ${((rows - earlier) / seconds).toFixed(1)} rows/s` : '';
  const width = Math.max(...[...counts.keys()].map((outcome) => outcome.length));
  const lines = [
    `${title}: ${rows} rows in ${seconds.toFixed(1)} s${rate}`,
    ...[...counts].map(([outcome, count]) => `  ${outcome.padEnd(width)}  ${String(count).padStart(6)}`),
  ];
  if (earlier > 0) lines.push(`Done by an earlier run (skipped): ${earlier} rows`);
  if (notDone > 0) lines.push(`Not done yet: ${notDone} rows (run the same command again to resume)`);
  if (bulk) {
    lines.push(
      `Bulk import jobs: ${bulk.note}; ${bulk.profiles} profiles, ${bulk.importErrors} import errors`,
    );
  }
  if (retries.total > 0) {
    lines.push(`Klaviyo requests retried: ${retries.total} (${retries.throttled} after a 429)`);
  }
  lines.push(`Results: ${resultsPath} (emails and phones masked; delete it when done)`);
  return `${lines.join('\n')}\n`;
}

/**
 * One JSON line, fields in a fixed order and absent ones left out. A resume needs the line, the
 * outcome and the row key; emails and phones in a reason (Klaviyo's error details quote them)
 * are masked, so the file holds none as it is.
 */
export const resultLine = ({
  line,
  externalId,
  outcome,
  reason,
  profileId,
  transient,
  row,
  target,
}: RowResult) =>
  `${JSON.stringify({ line, externalId, outcome, reason: reason && maskIdentifiersInText(reason), profileId, transient, row, target })}\n`;

/**
 * What identifies an input row for a rerun: its content, with the command, tenant, Klaviyo target
 * (targetIdOf) and mode it ran under (16 hex digits of a SHA-256). The same row of the same file
 * gets the same key; a row that changed, another file's row at that line, another tenant, another
 * Klaviyo account or base URL, or a dry run's row do not.
 */
export function rowKeyOf(
  run: { command: string; tenant: string; target: string; dryRun: boolean },
  content: unknown,
): string {
  const text = JSON.stringify([run.command, run.tenant, run.target, run.dryRun, content]);
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * The results file. While a run goes, each row's line is appended as the row finishes, so an
 * interrupted run (Ctrl-C, a crash, a lost network) leaves only complete lines of final outcomes,
 * at most a torn last one; at the end the file is rewritten in input order.
 */
export interface ResultsFile {
  /** The lines an earlier run left that still count (see openResultsFile), by input line. */
  readonly earlier: ReadonlyMap<number, RowResult>;
  write(result: RowResult): void;
  /** Rewrites every result, earlier ones included, in input order. */
  finish(): Promise<void>;
  /** Leaves the file as it is, each finished row's line written: for a run that stops early. */
  close(): Promise<void>;
}

/**
 * Opened before the run, so an unwritable path stops it before anything is sent to Klaviyo. With
 * `resume`, the lines an earlier run left are read: a torn last line (no line break) and the lines
 * `resume` does not keep are dropped, the others are kept and their rows not run again.
 */
export async function openResultsFile(
  path: string,
  resume?: (earlier: RowResult) => boolean,
): Promise<ResultsFile> {
  const earlier = new Map<number, RowResult>();
  if (resume)
    for (const result of await readResults(path)) if (resume(result)) earlier.set(result.line, result);
  const cannotWrite = (error: Error) => {
    throw new UsageError(`cannot write the results to ${path}: ${error.message}`);
  };
  // The kept lines go first, whole; then the file grows a line per row finished.
  await writeAtomically(path, earlier.values()).catch(cannotWrite);
  const handle: FileHandle = await open(path, 'a').catch(cannotWrite);
  const stream = handle.createWriteStream();
  const written = new Map<number, RowResult>();
  const close = () =>
    new Promise<void>((resolve, reject) =>
      stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
  return {
    earlier,
    write(result) {
      written.set(result.line, result);
      stream.write(resultLine(result));
    },
    async finish() {
      await close();
      const all = new Map([...earlier, ...written]);
      await writeAtomically(
        path,
        [...all.values()].sort((a, b) => a.line - b.line),
      );
    },
    close,
  };
}

/** The complete lines of a results file (none when it does not exist); a torn or foreign line is skipped. */
async function readResults(path: string): Promise<RowResult[]> {
  return completeLines(await readIfThere(path, `the results in ${path}`)).filter(
    (result): result is RowResult =>
      Number.isInteger((result as RowResult)?.line) && typeof (result as RowResult).outcome === 'string',
  );
}

/** Replaces the file with these results in one step (a temporary file renamed over it). */
async function writeAtomically(path: string, results: Iterable<RowResult>) {
  const temporary = `${path}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    const lines: string[] = [];
    for (const result of results) lines.push(resultLine(result));
    await handle.writeFile(lines.join(''));
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}
