import type { KlaviyoBulkImports } from '../../lib/ports.js';
import type { BatchRow, BulkWrites, RowOutcome } from '../batch.js';
import { type BulkEntry, type BulkJobs, createBulkJobs } from '../bulk-jobs.js';
import type { JobsJournal } from '../bulk-journal.js';
import type { CliIo } from '../io.js';
import type { Session } from '../session.js';
import { printable } from '../terminal.js';
import type { BulkPlan } from './decide.js';
import type { Phases } from './phases.js';
import type { Recorder } from './record.js';

export interface RunBulkJobs<Task> {
  jobs: BulkJobs<unknown>;
  /** Rows a bulk job sent back (cancelled, an error that says look again): run on their own at the end. */
  again: Task[];
}

/**
 * The run's bulk import jobs: each finished job's rows are settled by the command and recorded,
 * or set aside to be written on their own once every job is done.
 */
export function openBulkJobs<Task extends BatchRow, Lookups>(stage: {
  bulk: BulkWrites<Task, Lookups>;
  klaviyo: KlaviyoBulkImports;
  journal: JobsJournal<unknown>;
  session: Session;
  taskAt: (line: number) => Task;
  signal: AbortSignal;
  recorder: Pick<Recorder, 'recordOutcome'>;
  phases: Pick<Phases, 'bulk'>;
  io: Pick<CliIo, 'stderr'>;
}): RunBulkJobs<Task> {
  const { bulk, session, taskAt } = stage;
  const again: Task[] = [];
  const jobs: BulkJobs<unknown> = createBulkJobs<unknown, RowOutcome>({
    klaviyo: stage.klaviyo,
    journal: stage.journal,
    signal: stage.signal,
    settle: (jobId, done) =>
      bulk.settle(
        jobId,
        done.map(({ entry, error }) => ({ task: taskAt(entry.line), planned: entry.planned, error })),
        session,
      ),
    onSettled(entry, settled) {
      const task = taskAt(entry.line);
      if (settled === 'again') again.push(task);
      else stage.recorder.recordOutcome(task, settled);
    },
    onChange: () => jobs && stage.phases.bulk(jobs.status()),
    onRefused: (error) =>
      stage.io.stderr.write(
        `identity-sync: Klaviyo refused a bulk import job (${printable(error.message)}); the rows are written on their own instead` +
          ' (bulk import jobs need the lists:write and profiles:write scopes)\n',
      ),
  });
  return { jobs, again };
}

/**
 * The fifth stage, for rows decided for bulk jobs: each goes in a job; returns the rest (rows not
 * planned, or refused when Klaviyo refuses bulk jobs), to write one by one.
 */
export async function writeInBulk<Task extends BatchRow>(
  chunk: readonly Task[],
  plans: readonly (BulkPlan | undefined)[],
  jobs: Pick<BulkJobs<unknown>, 'add'>,
  keys: ReadonlyMap<number, string>,
): Promise<Task[]> {
  const rest: Task[] = [];
  for (const [i, task] of chunk.entries()) {
    const planned = plans[i];
    const row = keys.get(task.line) as string;
    if (!planned || !(await jobs.add({ line: task.line, row, ...planned } satisfies BulkEntry<unknown>)))
      rest.push(task);
  }
  return rest;
}
