import type { BatchRow, BulkWrites } from '../batch.js';
import type { RowResult } from '../results.js';
import { mapConcurrently } from '../run-in-order.js';
import type { Session } from '../session.js';
import { isResult } from './read.js';

/** Rows planned for bulk jobs at once (each reads the customer's state). */
const PLAN_CONCURRENCY = 16;

/**
 * The rows that share no key (customer id, identifier) with any other row: a bulk job imports its
 * profiles in no order we can rely on, so two rows about the same customer or value never go in one.
 */
export function rowsAlone<Task extends BatchRow>(
  tasks: Iterable<Task | RowResult>,
  keysOf: (task: Task) => string[],
): Set<number> {
  const seen = new Map<string, number>();
  const valid = [...tasks].filter((task): task is Task => !isResult(task));
  for (const task of valid) for (const key of keysOf(task)) seen.set(key, (seen.get(key) ?? 0) + 1);
  return new Set(
    valid.filter((task) => keysOf(task).every((key) => seen.get(key) === 1)).map((task) => task.line),
  );
}

export type BulkPlan = NonNullable<Awaited<ReturnType<BulkWrites<unknown, unknown>['plan']>>>;

/**
 * The fourth stage: how each row of a chunk is written. A row alone in the file whose outcome the
 * lookups settle in advance gets its bulk job's profile; every other row (or one that cannot be
 * planned: its state unreadable, say) is undefined, written on its own with the worker's guards.
 * Planning reads each row's state (DynamoDB with SYNC_STATE_TABLE): a few rows at once.
 */
export function decideWrites<Task extends BatchRow, Lookups>(
  chunk: readonly Task[],
  lookups: Lookups,
  stage: {
    bulk: BulkWrites<Task, Lookups>;
    session: Session;
    alone: ReadonlySet<number>;
    signal: AbortSignal;
  },
): Promise<(BulkPlan | undefined)[]> {
  return mapConcurrently(chunk, PLAN_CONCURRENCY, async (task) =>
    stage.alone.has(task.line) && !stage.signal.aborted
      ? stage.bulk.plan(task, stage.session, lookups).catch(() => undefined)
      : undefined,
  );
}
