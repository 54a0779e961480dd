import type { BatchCommand, BatchRow } from '../batch.js';
import { runInCustomerOrder } from '../run-in-order.js';
import type { Session } from '../session.js';
import type { Phases } from './phases.js';
import type { Recorder } from './record.js';
import { rowResultOfError } from './row-result-of-error.js';
import type { RunStop } from './stop.js';

export interface WriteStage<Task extends BatchRow, Lookups> {
  command: Pick<BatchCommand<Task, Lookups>, 'run'>;
  session: Session;
  dryRun: boolean;
  /** Customers worked on at once. */
  concurrency: number;
  stop: RunStop;
  recorder: Pick<Recorder, 'recordOutcome'>;
  phases: Pick<Phases, 'queued' | 'written'>;
}

/**
 * The fifth stage, for rows written on their own: `concurrency` customers at once, each
 * customer's rows in file order, each row's outcome (or error) recorded as it finishes. Once the
 * run stops, the rows not attempted are recorded as such, but for Ctrl-C: the rerun does those.
 */
export async function writeOneByOne<Task extends BatchRow, Lookups>(
  chunk: Task[],
  lookups: Lookups | undefined,
  stage: WriteStage<Task, Lookups>,
): Promise<void> {
  const { stop, recorder, phases } = stage;
  phases.queued(chunk.length);
  await runInCustomerOrder(chunk, {
    concurrency: stage.concurrency,
    signal: stop.signal,
    async run(task) {
      try {
        recorder.recordOutcome(task, await stage.command.run(task, stage.session, stage.dryRun, lookups));
      } catch (error) {
        stop.onError(error);
        recorder.recordOutcome(task, rowResultOfError(error));
      }
      phases.written();
    },
    skip(task) {
      const reason = stop.reason();
      if (reason && reason.kind !== 'interrupted')
        recorder.recordOutcome(task, {
          outcome: 'failed',
          reason: `not attempted: ${reason.message}`,
          transient: true,
        });
    },
  });
}
