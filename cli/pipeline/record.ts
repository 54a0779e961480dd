import type { RowOutcome } from '../batch.js';
import type { ResultsFile, RowResult } from '../results.js';

/** The last stage: every row's result goes through here, once. */
export interface Recorder {
  record(result: RowResult): void;
  /** A task's outcome, as its command said it. */
  recordOutcome(task: { line: number; externalId: string }, outcome: RowOutcome): void;
  /** Every row's result so far, earlier runs' included: the rows that need attention are listed from it. */
  readonly finished: ReadonlyMap<number, RowResult>;
  /** Rows per outcome, earlier runs' included. */
  readonly counts: Map<string, number>;
}

export interface RecorderOptions {
  results: Pick<ResultsFile, 'earlier' | 'write'>;
  /** Each input line's row key (rowKeyOf), written with its result so a rerun knows it is done. */
  keys: ReadonlyMap<number, string>;
  /** The run's target (targetIdOf), written with every result. */
  target: string;
  /** The counts of the earlier results (tally). */
  counts: Map<string, number>;
  /** Told once per row recorded (the progress line). */
  onRecorded(): void;
}

export function createRecorder({ results, keys, target, counts, onRecorded }: RecorderOptions): Recorder {
  const finished = new Map(results.earlier);
  const record = (result: RowResult) => {
    const row = keys.get(result.line);
    results.write(row ? { ...result, row, target } : { ...result, target });
    finished.set(result.line, result);
    counts.set(result.outcome, (counts.get(result.outcome) ?? 0) + 1);
    onRecorded();
  };
  return {
    record,
    recordOutcome: (task, outcome) => record({ line: task.line, externalId: task.externalId, ...outcome }),
    finished,
    counts,
  };
}
