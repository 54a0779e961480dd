import { createHash } from 'node:crypto';
import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type DeadLetter, serializeDeadLetter } from '../dead-letter.js';
import { TransientError } from '../errors.js';
import { type IdentityChange, messageGroupOf } from '../identity-change.js';
import type { ChangeQueue, DeadLetters } from '../ports.js';

/** SQS FIFO ids allow 128 characters of alphanumerics and punctuation; anything else is hashed. */
export function fifoId(value: string): string {
  return /^[\x21-\x7e]{1,128}$/.test(value) ? value : createHash('sha256').update(value).digest('hex');
}

async function send(client: SQSClient, input: ConstructorParameters<typeof SendMessageCommand>[0]) {
  try {
    await client.send(new SendMessageCommand(input));
  } catch (error) {
    throw new TransientError('queue_unavailable', `SQS SendMessage failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * The changes queue: one message group per customer keeps that customer's changes in order, and
 * the source's delivery id as deduplication id drops duplicate deliveries within SQS's 5 minutes.
 */
export function createSqsChangeQueue(client: SQSClient, queueUrl: string): ChangeQueue {
  return {
    enqueue: (change: IdentityChange) =>
      send(client, {
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(change),
        MessageGroupId: fifoId(messageGroupOf(change)),
        MessageDeduplicationId: fifoId(`${change.tenant}:${change.sourceEventId}`),
      }),
  };
}

/** The dead-letter queue (FIFO, like the queue it serves), holding letters with their reason. */
export function createSqsDeadLetters(client: SQSClient, deadLetterQueueUrl: string): DeadLetters {
  return {
    // async: a letter that does not fit its schema rejects like a failed send, never throws at the call.
    park: async (letter: DeadLetter) =>
      send(client, {
        QueueUrl: deadLetterQueueUrl,
        MessageBody: serializeDeadLetter(letter),
        // A parked change stays in its customer's group, so a redrive replays that customer in
        // order; an unusable payload has no order to keep, and a group of its own blocks nothing.
        MessageGroupId: fifoId(
          letter.change
            ? messageGroupOf(letter.change)
            : `intake:${letter.tenant ?? 'unknown'}:${letter.sourceEventId}`,
        ),
        MessageDeduplicationId: fifoId(`parked:${letter.source}:${letter.sourceEventId}`),
        MessageAttributes: { reason: { DataType: 'String', StringValue: letter.reason } },
      }),
  };
}

/** Messages on a queue, waiting or in flight (SQS's approximate counts). */
export async function approximateMessageCount(client: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes = {} } = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(Attributes.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}
