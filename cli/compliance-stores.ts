import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoCustomerRecords } from '../lib/adapters/dynamo-customer-records.js';
import { createSqsParkedLetters } from '../lib/adapters/sqs-parked-letters.js';
import { UsageError } from './io.js';
import type { CliSettings } from './settings.js';

/** The table and the dead-letter queue, as erasure and export read them. */
export function complianceStores(settings: CliSettings, command: string) {
  const table = settings.SYNC_STATE_TABLE;
  const deadLetterQueueUrl = settings.DEAD_LETTER_QUEUE_URL;
  if (!table || !deadLetterQueueUrl) {
    throw new UsageError(
      `${command} reads the state table and the dead-letter queue: set SYNC_STATE_TABLE and DEAD_LETTER_QUEUE_URL (and AWS_REGION)`,
    );
  }
  const dynamodb = new DynamoDBClient({});
  const sqs = new SQSClient({});
  return {
    records: createDynamoCustomerRecords(dynamodb, table),
    letters: createSqsParkedLetters(sqs, deadLetterQueueUrl),
    close: () => {
      dynamodb.destroy();
      sqs.destroy();
    },
  };
}
