import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createSyncWorker } from '../lib/composition.js';
import { loadConfig } from '../lib/config.js';
import { logger, metrics } from '../lib/observability/telemetry.js';
import { processQueuedChange } from '../lib/sync/process-queued-change.js';

const worker = createSyncWorker(loadConfig());
const processor = new SqsFifoPartialProcessorAsync();

const processRecord = (record: SQSRecord) =>
  processQueuedChange(record.body, worker, {
    attempt: Number(record.attributes.ApproximateReceiveCount) || 1,
  });

/**
 * SQS FIFO batch in, partial batch failures out. A failed change fails the rest of its
 * customer's group in the batch (order is kept) while other customers' changes go on.
 */
async function syncWorker(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  return processPartialResponse(event, processRecord, processor, { context, skipGroupOnError: true });
}

export const handler = middy(syncWorker).use(injectLambdaContext(logger)).use(logMetrics(metrics));
