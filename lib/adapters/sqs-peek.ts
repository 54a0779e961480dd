import {
  ChangeMessageVisibilityBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type QueuedMessage, readQueuedMessage } from '../dead-letter.js';
import { approximateMessageCount } from './sqs-queues.js';

/** How long a read hides the messages if making them visible again fails (or the reader dies). */
export const READ_VISIBILITY_SECONDS = 30;

/** One message read without consuming it: what its body is, and what SQS says about it. */
export interface PeekedMessage {
  messageId: string | undefined;
  content: QueuedMessage;
  bodyLength: number;
  /** The `reason` message attribute parked letters carry. */
  reasonAttribute?: string | undefined;
  /** SQS's ApproximateReceiveCount: deliveries and every read, this one included. */
  receiveCount?: number | undefined;
  /** SQS's SentTimestamp. */
  sentAt?: string | undefined;
}

export interface Peek {
  messages: PeekedMessage[];
  /** ApproximateNumberOfMessages + NotVisible, before reading. */
  onQueue: number;
  /** What could not be made visible again, for people; those messages come back on their own. */
  problem: string | undefined;
}

/**
 * Receives up to `limit` messages, then makes every one visible again, also when a receive
 * failed: on a FIFO queue a received message locks its group (no replay, no redrive, no other
 * reader) until it is visible again. Throws when the queue cannot be read.
 */
export async function peekQueue(sqs: SQSClient, queueUrl: string, limit: number): Promise<Peek> {
  const cannotRead = (error: unknown, also = '') =>
    new Error(`cannot read the queue ${queueUrl}: ${(error as Error).message}${also}`, { cause: error });
  let onQueue: number;
  try {
    onQueue = await approximateMessageCount(sqs, queueUrl);
  } catch (error) {
    throw cannotRead(error);
  }
  const messages = new Map<string, Message>();
  // Every receipt handle, also of a message received twice (its visibility ran out meanwhile).
  const handles: string[] = [];
  let failure: unknown;
  try {
    while (messages.size < limit) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, limit - messages.size),
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
          VisibilityTimeout: READ_VISIBILITY_SECONDS,
          // Long polling asks every SQS server, so an answer with nothing means nothing more to read.
          WaitTimeSeconds: 1,
        }),
      );
      const before = messages.size;
      for (const message of Messages) {
        if (message.ReceiptHandle) handles.push(message.ReceiptHandle);
        messages.set(message.MessageId ?? message.ReceiptHandle ?? String(handles.length), message);
      }
      if (messages.size === before) break;
    }
  } catch (error) {
    failure = error;
  }
  // The `finally` of the reads: runs whatever happened above, and never throws itself.
  const problem = await makeVisibleAgain(sqs, queueUrl, handles);
  if (failure !== undefined) throw cannotRead(failure, problem ? `; also, ${problem}` : '');
  return { messages: [...messages.values()].map(peeked), onQueue, problem };
}

function peeked(message: Message): PeekedMessage {
  const body = message.Body ?? '';
  const receiveCount = Number(message.Attributes?.ApproximateReceiveCount);
  const sentAt = Number(message.Attributes?.SentTimestamp);
  return {
    messageId: message.MessageId,
    content: readQueuedMessage(body),
    bodyLength: body.length,
    reasonAttribute: message.MessageAttributes?.reason?.StringValue,
    receiveCount: Number.isFinite(receiveCount) ? receiveCount : undefined,
    sentAt: Number.isFinite(sentAt) ? new Date(sentAt).toISOString() : undefined,
  };
}

/** ChangeMessageVisibilityBatch to 0, ten at a time; what failed, for people, or undefined. */
async function makeVisibleAgain(
  sqs: SQSClient,
  queueUrl: string,
  handles: string[],
): Promise<string | undefined> {
  let failed = 0;
  let firstError: string | undefined;
  for (let start = 0; start < handles.length; start += 10) {
    const batch = handles.slice(start, start + 10);
    try {
      const { Failed = [] } = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle, VisibilityTimeout: 0 })),
        }),
      );
      failed += Failed.length;
      firstError ??= Failed[0] && `${Failed[0].Code}: ${Failed[0].Message}`;
    } catch (error) {
      failed += batch.length;
      firstError ??= (error as Error).message;
    }
  }
  if (failed === 0) return undefined;
  return (
    `${failed} of ${handles.length} messages read could not be made visible again (${firstError}); ` +
    `they stay hidden, and their message groups held, for up to ${READ_VISIBILITY_SECONDS} s`
  );
}
