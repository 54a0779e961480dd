import { createHash } from 'node:crypto';
import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type DeadLetter, messageGroupOfLetter, serializeDeadLetter } from '../dead-letter.js';
import { TransientError } from '../errors.js';
import { messageGroupOf, type QueuedChange, serializeQueuedChange } from '../identity-change.js';
import type { ChangeQueue, DeadLetters, MovedMessage, Redeliveries } from '../ports.js';

/** SQS FIFO ids allow 128 characters of alphanumerics and punctuation; anything else is hashed. */
export function fifoId(value: string): string {
  return /^[\x21-\x7e]{1,128}$/.test(value) ? value : createHash('sha256').update(value).digest('hex');
}

/** The moves of a queued message between the queues, each with deduplication ids of its own. */
export type Move = 'parked' | 'replayed';

/**
 * The deduplication id of one move of one queued message: the kind of move and the moved message's
 * SQS id (and SentTimestamp). A retried move (its source not deleted: a crash, a failed delete)
 * repeats it and is dropped within SQS's 5 minutes; the next move of the same change starts from
 * another message (a parked letter, a replayed one), so it is never taken for the previous one.
 */
export function deduplicationIdOfMove(move: Move, from: MovedMessage): string {
  return fifoId(`${move}:${from.messageId}${from.sentAt === undefined ? '' : `:${from.sentAt}`}`);
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
    enqueue: (change: QueuedChange) =>
      send(client, {
        QueueUrl: queueUrl,
        MessageBody: serializeQueuedChange(change),
        MessageGroupId: fifoId(messageGroupOf(change)),
        MessageDeduplicationId: fifoId(`${change.tenant}:${change.sourceEventId}`),
      }),
  };
}

/**
 * The dead-letter queue (FIFO, like the queue it serves), holding letters with their reason. A
 * letter parked by the worker is deduplicated by that move (see deduplicationIdOfMove); one parked
 * at intake by its delivery, so a delivery sent again is not parked twice.
 */
export function createSqsDeadLetters(client: SQSClient, deadLetterQueueUrl: string): DeadLetters {
  return {
    // async: a letter that does not fit its schema rejects like a failed send, never throws at the call.
    park: async (letter: DeadLetter, from?: MovedMessage) =>
      send(client, {
        QueueUrl: deadLetterQueueUrl,
        MessageBody: serializeDeadLetter(letter),
        MessageGroupId: fifoId(messageGroupOfLetter(letter)),
        MessageDeduplicationId: from
          ? deduplicationIdOfMove('parked', from)
          : fifoId(`parked:${letter.source}:${letter.sourceEventId}`),
        MessageAttributes: { reason: { DataType: 'String', StringValue: letter.reason } },
      }),
  };
}

/** SQS takes at most 10 entries a batch call (and receives at most 10 messages a call). */
export const SQS_BATCH_SIZE = 10;

/**
 * When the worker's failed messages come back: their visibility timeout set per message, so a
 * change that keeps failing waits longer each time instead of using up the queue's receive count.
 */
export function createSqsRedeliveries(client: SQSClient, queueUrl: string): Redeliveries {
  return {
    async retryAfter(redeliveries) {
      for (let start = 0; start < redeliveries.length; start += SQS_BATCH_SIZE) {
        const entries = redeliveries.slice(start, start + SQS_BATCH_SIZE).map((redelivery, index) => ({
          Id: String(index),
          ReceiptHandle: redelivery.receiptHandle,
          VisibilityTimeout: redelivery.delaySeconds,
        }));
        const { Failed = [] } = await client.send(
          new ChangeMessageVisibilityBatchCommand({ QueueUrl: queueUrl, Entries: entries }),
        );
        if (Failed.length > 0) {
          throw new TransientError(
            'queue_unavailable',
            `SQS ChangeMessageVisibility failed for ${Failed.length} message(s): ${Failed[0]?.Message ?? Failed[0]?.Code}`,
          );
        }
      }
    },
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
