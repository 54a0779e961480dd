import { letterOfQueued, type QueuedMessage, queuedChangeIn } from '../dead-letter.js';
import { OUT_OF_TIME } from '../errors.js';
import { customerOf, isIdentityChange, kindOf } from '../identity-change.js';
import type { MovedMessage } from '../ports.js';
import { Reason } from '../reasons.js';
import {
  type Handled,
  handleMessage,
  type ReadMessage,
  readMessage,
  type WorkerDependencies,
} from './handle-message.js';
import { backToQueue, outcomeOfError, type RetryLater } from './outcome.js';
import { withCustomersPrefetched } from './prefetch-customers.js';
import { redeliveryOf } from './redelivery.js';
import { runInGroups } from './run-in-groups.js';

/** One message of a batch as the queue delivered it, with no AWS types. */
export interface QueuedRecord {
  id: string;
  /** The FIFO message group: one customer of one tenant. */
  groupId: string;
  body: string;
  /** How many times the queue has delivered it (1 at first). */
  attempt: number;
  /** The queue's handle on this delivery: with it, the worker says when a failed change comes back. */
  receiptHandle?: string;
  /** When the message was queued (epoch ms). */
  sentAt?: number;
}

/** A record with its body read (once, for the whole batch). */
type ReadRecord = QueuedRecord & ReadMessage;

/** The worker's dependencies (one shape for the whole path: WorkerDependencies). */
export type BatchDependencies = WorkerDependencies;

export interface BatchOptions {
  /** Whether there is time to start another change in this invocation; if not, it goes back to the queue. */
  hasTimeForAnother?: () => boolean;
}

/** A change not tried for lack of time: nothing failed, it comes back at once. */
const NOT_TRIED: RetryLater = {
  status: 'retry-later',
  reason: OUT_OF_TIME,
  detail: 'too little time left in this invocation',
};

/** A redelivered change's decision, if it was made, is among its customer's latest few. */
const RECENT_DECISIONS = 20;

/**
 * Works through one batch of queued changes. First the lookups of every customer not yet known
 * (no record of its profile) are made together, a few `any(…)` queries per tenant instead of a
 * few per customer; then each customer's changes run in order while different customers run at
 * the same time. Returns the records that must come back: a failed one and the rest of its group,
 * each told when to come back (see handBack).
 */
export async function processQueuedBatch(
  records: readonly QueuedRecord[],
  deps: BatchDependencies,
  options: BatchOptions = {},
): Promise<{ failed: QueuedRecord[] }> {
  // Each body is read here, once; everything after works on what it says.
  const read = records.map((record) => ({ ...record, ...readMessage(record.body) }));
  // No time for even one change: spend no request on lookups that would go unused.
  const batchDeps =
    options.hasTimeForAnother?.() === false ? deps : await withCustomersPrefetched(read, deps);
  const { failed, errors } = await runInGroups(
    read,
    async (record): Promise<Handled | undefined> => {
      if (options.hasTimeForAnother && !options.hasTimeForAnother()) {
        deps.telemetry.log.warn('Change handed back to the queue: too little time left in this invocation', {
          messageId: record.id,
        });
        return backToQueue(NOT_TRIED);
      }
      if (record.attempt > 1 && (await decidedAlready(record.content, deps))) return undefined;
      return handleMessage(record, batchDeps, { attempt: record.attempt, message: movedOf(record) });
    },
    (handled) => handled?.action === 'hand-back',
  );
  const handedBack = new Set((await handBack(failed, errors, deps)).map((record) => record.id));
  return { failed: records.filter((record) => handedBack.has(record.id)) };
}

/**
 * Waiting is not failing: a change that failed for now goes back to the queue hidden for a delay
 * that doubles with each delivery (none when it was not tried for lack of time), so a long outage
 * costs a few deliveries an hour rather than the queue's receive count. Its group's later changes
 * come back with it, in order. Only a change still failing after `retries.maxChangeAgeMs` is
 * parked (`retries_exhausted`, with the last error), well before the queue's retention would
 * drop it. Returns the records that go back.
 */
async function handBack(
  failed: ReadRecord[],
  errors: ReadonlyMap<string, unknown>,
  deps: BatchDependencies,
): Promise<ReadRecord[]> {
  const { redeliveries, retries, telemetry } = deps;
  if (!retries || failed.length === 0) return failed;
  const now = deps.clock().getTime();
  const delayOfGroup = new Map<string, number>();
  const parked = new Set<string>();
  for (const [id, why] of errors) {
    const head = failed.find((record) => record.id === id);
    if (!head) continue;
    const { retry, outOfTime } = handBackOf(why);
    const redelivery = redeliveryOf(
      { attempt: head.attempt, ageMs: now - (head.sentAt ?? now), outOfTime },
      retries,
    );
    if (!redelivery.park) {
      delayOfGroup.set(head.groupId, redelivery.delaySeconds);
    } else if (await parkExhausted(head, retry, deps)) {
      parked.add(id);
      delayOfGroup.set(head.groupId, 0);
    } else {
      delayOfGroup.set(head.groupId, retries.firstDelaySeconds);
    }
  }
  const handedBack = failed.filter((record) => !parked.has(record.id));
  const hidden = handedBack.flatMap(({ receiptHandle, groupId }) =>
    receiptHandle ? [{ receiptHandle, delaySeconds: delayOfGroup.get(groupId) ?? 0 }] : [],
  );
  await redeliveries?.retryAfter(hidden).catch((error: unknown) =>
    telemetry.log.warn(
      "Failed changes not rescheduled: they come back after the queue's visibility timeout",
      {
        messages: hidden.length,
        error: error as Error,
      },
    ),
  );
  return handedBack;
}

/**
 * Why a record goes back: the hand-back its handling came to, or an error thrown on the way
 * (parking it failed, the audit could not be read), which goes back as any failure would.
 */
function handBackOf(why: unknown): Extract<Handled, { action: 'hand-back' }> {
  return isHandBack(why) ? why : backToQueue({ ...outcomeOfError(why), status: 'retry-later' });
}

const isHandBack = (why: unknown): why is Extract<Handled, { action: 'hand-back' }> =>
  typeof why === 'object' && why !== null && (why as Partial<Handled>).action === 'hand-back';

/**
 * Parks a queued message (of any kind) that kept failing for too long, with the last failure and
 * the number of deliveries; false when even that failed (it then goes back).
 */
async function parkExhausted(record: ReadRecord, retry: RetryLater, deps: BatchDependencies) {
  const read = queuedChangeIn(record.content);
  if (!('queued' in read)) return false;
  const { queued } = read;
  const lastReason = retry.reason;
  const queuedAt = new Date(record.sentAt ?? deps.clock().getTime()).toISOString();
  const letter = letterOfQueued(queued, {
    reason: Reason.RetriesExhausted,
    detail: `still failing after ${record.attempt} deliveries since ${queuedAt}: ${retry.detail}`,
    context: { lastReason, queuedAt },
    attempts: record.attempt,
    parkedAt: deps.clock().toISOString(),
  });
  try {
    await deps.deadLetters.park(letter, movedOf(record));
  } catch (parkError) {
    deps.telemetry.log.warn('Change not parked: it goes back to the queue', { error: parkError as Error });
    return false;
  }
  deps.telemetry.count('ChangeFailed');
  deps.telemetry.log.error('Change parked on the dead-letter queue: it kept failing for too long', {
    tenant: queued.tenant,
    externalId: customerOf(queued),
    sourceEventId: queued.sourceEventId,
    kind: kindOf(queued),
    reason: Reason.RetriesExhausted,
    lastReason,
    attempts: record.attempt,
  });
  return true;
}

/**
 * Whether a redelivered change was decided already: the invocation that decided it ended before
 * the queue heard (killed, timed out), so the message came back. It is acknowledged, not decided
 * twice. A parked letter replayed from the dead-letter queue is meant to be tried again; so is a
 * change whose only decision was to park it (the letter may not have been sent).
 */
async function decidedAlready(message: QueuedMessage, deps: WorkerDependencies): Promise<boolean> {
  if (message.kind !== 'queued' || !isIdentityChange(message.queued)) return false;
  const { tenant, externalId, sourceEventId } = message.queued;
  const decided = (await deps.audit.history(tenant, externalId, RECENT_DECISIONS)).find(
    (entry) => entry.sourceEventId === sourceEventId && entry.outcome !== 'parked',
  );
  if (decided) {
    deps.telemetry.log.info('Redelivered change was decided already: acknowledged', {
      tenant,
      externalId,
      sourceEventId,
      outcome: decided.outcome,
    });
  }
  return decided !== undefined;
}

/** A record as the move that parks it sees it: a crash-and-retry of that parking repeats its id. */
const movedOf = (record: QueuedRecord): MovedMessage => ({ messageId: record.id, sentAt: record.sentAt });
