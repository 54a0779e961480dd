import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createSyncWorker } from '../lib/composition.js';
import { loadConfig } from '../lib/config.js';
import { processQueuedBatch } from '../lib/sync/receive-batch.js';
import { lambdaHandler } from './handler.js';

const config = loadConfig();
/** Until when this invocation may wait for Klaviyo quota: a request must still have its retry budget. */
let quotaDeadline: number | undefined;
const worker = createSyncWorker(config, undefined, () => quotaDeadline);

// A change may use the whole Klaviyo retry budget. Without that much time left, it goes back to
// SQS at once: better than the invocation timing out and the whole batch being redelivered.
const TIME_NEEDED_MS = config.klaviyo.retryBudgetMs + 5_000;

/**
 * SQS FIFO batch in, partial batch failures out. Customers run side by side, each customer's
 * changes in order; a failed change fails the rest of its customer's group in the batch, and the
 * worker says when they come back (lib/sync/receive-batch.ts: waiting is not failing).
 */
async function syncWorker(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  quotaDeadline = Date.now() + context.getRemainingTimeInMillis() - TIME_NEEDED_MS;
  const records = event.Records.map((record) => ({
    id: record.messageId,
    groupId: record.attributes.MessageGroupId ?? record.messageId,
    body: record.body,
    attempt: Number(record.attributes.ApproximateReceiveCount) || 1,
    receiptHandle: record.receiptHandle,
    sentAt: Number(record.attributes.SentTimestamp) || undefined,
  }));
  const { failed } = await processQueuedBatch(records, worker, {
    hasTimeForAnother: () => context.getRemainingTimeInMillis() >= TIME_NEEDED_MS,
  });
  return { batchItemFailures: failed.map((record) => ({ itemIdentifier: record.id })) };
}

export const handler = lambdaHandler(syncWorker);
