import type { BulkStatus } from '../bulk-jobs.js';
import type { InputRow } from '../input.js';
import { type CliIo, counted, EXIT_ATTENTION, EXIT_INTERRUPTED } from '../io.js';
import { describeTarget } from '../klaviyo-key.js';
import { exitCodeOf, formatAttention, formatSummary, maskedIdentifiers, type RowResult } from '../results.js';
import type { Session } from '../session.js';
import { printable } from '../terminal.js';
import { jobsNote } from './phases.js';
import type { StopReason } from './stop.js';

/** What a run says on stderr before its first row: what it reads, for whom, where, and what it resumes. */
export function announceRun(
  io: Pick<CliIo, 'stderr'>,
  run: {
    command: string;
    file: string;
    rows: number;
    session: Pick<Session, 'tenant' | 'target' | 'description' | 'pacing'>;
    dryRun: boolean;
    newJobs: boolean;
    resultsPath: string;
    ofAnotherTarget: number;
    earlier: number;
    inResumedJobs: number;
    resumedJobs: number;
  },
) {
  const { session } = run;
  io.stderr.write(
    `identity-sync ${run.command}: ${run.rows} rows of ${run.file} for tenant ${session.tenant}` +
      ` at ${describeTarget(session.target)}${run.dryRun ? ' (dry run: nothing is written)' : ''}; state ${session.description};` +
      ` requests paced ${session.pacing}` +
      `${run.newJobs ? '; writes known in advance go through bulk import jobs' : ''}\n`,
  );
  if (run.ofAnotherTarget > 0)
    io.stderr.write(`${anotherTargetNote(run.resultsPath, run.ofAnotherTarget)}\n`);
  if (run.earlier + run.inResumedJobs > 0) {
    io.stderr.write(
      `identity-sync: resuming: ${run.earlier} rows done by an earlier run are skipped` +
        `${run.resumedJobs > 0 ? `; ${run.inResumedJobs} rows wait on ${run.resumedJobs} bulk import jobs it started, polled again` : ''}\n`,
    );
  }
}

/** Why the rows an earlier run finished against another Klaviyo account or tenant are not skipped. */
export const anotherTargetNote = (resultsPath: string, rows: number) =>
  `identity-sync: ${counted(rows, 'row')} in ${resultsPath} were done against another Klaviyo account, base URL or tenant` +
  ' (or by a version that did not record which): they are not skipped; this run starts afresh';

const STOPPED_BECAUSE = {
  key: 'Klaviyo refused the API key, so the run stopped',
  unreachable:
    'Klaviyo did not answer (after retrying), so the run stopped; run the same command again to resume',
};

/**
 * What a run says at its end: why it stopped early, the jobs it could not follow (stderr), the
 * summary and the rows that need attention (stdout). Returns the exit code.
 */
export function reportRun(
  io: Pick<CliIo, 'stdout' | 'stderr'>,
  run: {
    title: string;
    rows: readonly InputRow[];
    counts: Map<string, number>;
    finished: ReadonlyMap<number, RowResult>;
    started: Date;
    resultsPath: string;
    retries: Session['retries'];
    earlier: number;
    /** Rows an earlier run failed for good, not sent again. */
    failedKept: number;
    status: BulkStatus | undefined;
    reason: StopReason | undefined;
  },
): number {
  const { status, reason } = run;
  if (reason && reason.kind !== 'interrupted')
    io.stderr.write(`identity-sync: ${STOPPED_BECAUSE[reason.kind]}: ${printable(reason.message)}\n`);
  for (const job of status?.unsettled ?? []) {
    io.stderr.write(
      `identity-sync: bulk import job ${printable(job.id)} (${job.rows} rows) could not be followed to its end (${printable(job.problem)});` +
        ' its rows have no result yet: run the same command again to poll it\n',
    );
  }
  const notDone = run.rows.length - [...run.counts.values()].reduce((sum, count) => sum + count, 0);
  io.stdout.write(
    formatSummary({
      title: run.title,
      counts: run.counts,
      elapsedMs: Date.now() - run.started.getTime(),
      resultsPath: run.resultsPath,
      retries: run.retries,
      earlier: run.earlier,
      notDone,
      bulk: status && status.jobs.size > 0 ? { ...status, note: jobsNote(status) } : undefined,
    }),
  );
  if (run.failedKept > 0) {
    io.stdout.write(
      `${counted(run.failedKept, 'row')} that failed in an earlier run ${run.failedKept === 1 ? 'was' : 'were'} not sent again: --retry-failed sends them\n`,
    );
  }
  const identifiers = new Map(
    run.rows.flatMap((row) => ('values' in row ? [[row.line, maskedIdentifiers(row.values)]] : [])),
  );
  io.stdout.write(formatAttention(run.finished.values(), (line) => identifiers.get(line), run.resultsPath));
  if (reason?.kind === 'interrupted') {
    io.stderr.write(
      `identity-sync: interrupted with ${notDone} rows not done; run the same command again to resume\n`,
    );
    return EXIT_INTERRUPTED;
  }
  return notDone > 0 ? EXIT_ATTENTION : exitCodeOf(run.counts);
}
