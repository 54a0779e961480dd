import { messageGroupOf, type QueuedChange } from '../identity-change.js';
import type { ChangeQueue } from '../ports.js';
import { runInGroups } from '../sync/run-in-groups.js';

/**
 * SQS FIFO keeps a message group in the order it was sent: one customer's changes go one after
 * another, in the order given, while different customers' go in parallel.
 */
export async function enqueueInOrder(changes: QueuedChange[], queue: ChangeQueue) {
  const items = changes.map((change, index) => ({
    id: String(index),
    groupId: messageGroupOf(change),
    change,
  }));
  const { errors } = await runInGroups(items, ({ change }) => queue.enqueue(change));
  const [firstError] = errors.values();
  if (errors.size > 0) throw firstError;
}

/** Like Promise.all, but answers only when nothing is in flight any more. */
export async function settleAll(work: Promise<unknown>[]) {
  const failed = (await Promise.allSettled(work)).find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}
