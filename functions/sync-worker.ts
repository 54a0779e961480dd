import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createSyncWorker } from '../lib/composition.js';
import { loadConfig } from '../lib/config.js';
import { TransientError } from '../lib/errors.js';
import { logger, metrics } from '../lib/observability/telemetry.js';
import { processQueuedChange } from '../lib/sync/process-queued-change.js';

const config = loadConfig();
const worker = createSyncWorker(config);
const processor = new SqsFifoPartialProcessorAsync();

// A change may use the whole Klaviyo retry budget. Without that much time left, it goes back to
// SQS at once: better than the invocation timing out and the whole batch being redelivered.
const TIME_NEEDED_MS = config.klaviyo.retryBudgetMs + 5_000;

async function processRecord(record: SQSRecord, context?: Context) {
  if (context && context.getRemainingTimeInMillis() < TIME_NEEDED_MS) {
    logger.warn('Change handed back to the queue: too little time left in this invocation', {
      messageId: record.messageId,
      remainingMs: context.getRemainingTimeInMillis(),
    });
    throw new TransientError('out_of_time', 'too little time left in this invocation');
  }
  return processQueuedChange(record.body, worker, {
    attempt: Number(record.attributes.ApproximateReceiveCount) || 1,
  });
}

/**
 * SQS FIFO batch in, partial batch failures out. A failed change fails the rest of its
 * customer's group in the batch (order is kept) while other customers' changes go on.
 */
async function syncWorker(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  // All records failed is still a partial-batch answer (each is retried), not an invocation error.
  return processPartialResponse(event, processRecord, processor, {
    context,
    skipGroupOnError: true,
    throwOnFullBatchFailure: false,
  });
}

export const handler = middy(syncWorker).use(injectLambdaContext(logger)).use(logMetrics(metrics));
