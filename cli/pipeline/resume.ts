import { type JobsJournal, type JournalJob, openJobsJournal } from '../bulk-journal.js';
import type { InputRow } from '../input.js';
import { openResultsFile, type ResultsFile, type RowResult } from '../results.js';

/** Whether an earlier run's result still counts, so its row is not run again. */
export function earlierCounts(
  earlier: RowResult,
  run: { target: string; keys: ReadonlyMap<number, string>; retryFailed: boolean },
): 'keep' | 'another-target' | 'again' {
  if (earlier.target !== run.target) return 'another-target';
  if (earlier.outcome === 'failed' && (earlier.transient || run.retryFailed)) return 'again';
  return earlier.row === run.keys.get(earlier.line) ? 'keep' : 'again';
}

/** The rows of jobs an earlier run started and did not settle, but those done since or changed. */
export function jobsToResume<Planned>(
  unsettled: readonly JournalJob<Planned>[],
  done: ReadonlyMap<number, unknown>,
  keys: ReadonlyMap<number, string>,
): JournalJob<Planned>[] {
  return unsettled
    .map(({ id, entries }) => ({
      id,
      entries: entries.filter((entry) => !done.has(entry.line) && keys.get(entry.line) === entry.row),
    }))
    .filter((job) => job.entries.length > 0);
}

export interface Resumed {
  results: ResultsFile;
  journal: JobsJournal<unknown>;
  /** Results of the earlier run done against another Klaviyo account or tenant: not skipped. */
  ofAnotherTarget: number;
  /** Jobs an earlier run started: polled, not started again. */
  resumedJobs: JournalJob<unknown>[];
  /** The lines in those jobs. */
  inResumedJobs: Set<number>;
  /** The rows this run works through. */
  todo: InputRow[];
}

/**
 * What an earlier run of the same command left (unless `restart`): the rows it finished are
 * skipped, and the rows of its bulk jobs wait on those jobs (only when `bulk`: --no-bulk or a dry
 * run looks those rows up afresh instead).
 */
export async function resumeRun(
  rows: readonly InputRow[],
  run: {
    resultsPath: string;
    restart: boolean;
    retryFailed: boolean;
    target: string;
    keys: ReadonlyMap<number, string>;
    bulk: boolean;
  },
): Promise<Resumed> {
  const resume = !run.restart;
  let ofAnotherTarget = 0;
  const results = await openResultsFile(
    run.resultsPath,
    resume
      ? (earlier) => {
          const counts = earlierCounts(earlier, run);
          if (counts === 'another-target') ofAnotherTarget++;
          return counts === 'keep';
        }
      : undefined,
  );
  const journal = await openJobsJournal<unknown>(`${run.resultsPath}.jobs`, resume);
  const resumedJobs = run.bulk ? jobsToResume(journal.unsettled, results.earlier, run.keys) : [];
  const inResumedJobs = new Set(resumedJobs.flatMap((job) => job.entries.map((entry) => entry.line)));
  const todo = rows.filter((row) => !results.earlier.has(row.line) && !inResumedJobs.has(row.line));
  return { results, journal, ofAnotherTarget, resumedJobs, inResumedJobs, todo };
}
