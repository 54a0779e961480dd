import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type QueuedMessage, readQueuedMessage } from '../dead-letter.js';
import { approximateMessageCount, deduplicationIdOfMove, SQS_BATCH_SIZE } from './sqs-queues.js';

/** How long a read hides the messages if making them visible again fails (or the reader dies). */
const READ_VISIBILITY_SECONDS = 30;

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
  /** The FIFO message group it was sent in. */
  groupId?: string | undefined;
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
      const received = await receive(sqs, queueUrl, limit - messages.size, READ_VISIBILITY_SECONDS);
      const before = messages.size;
      for (const message of received) {
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

/** Up to `max` messages (at most a batch) with all their attributes, hidden for `hiddenSeconds`. */
async function receive(sqs: SQSClient, queueUrl: string, max: number, hiddenSeconds: number) {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: Math.min(SQS_BATCH_SIZE, max),
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
      VisibilityTimeout: hiddenSeconds,
      // Long polling asks every SQS server, so an answer with nothing means nothing more to read.
      WaitTimeSeconds: 1,
    }),
  );
  return Messages;
}

/** SQS's SentTimestamp (epoch ms), if it gave one. */
function sentAtOf(message: Message): number | undefined {
  const sentAt = Number(message.Attributes?.SentTimestamp);
  return Number.isFinite(sentAt) ? sentAt : undefined;
}

function peeked(message: Message): PeekedMessage {
  const body = message.Body ?? '';
  const receiveCount = Number(message.Attributes?.ApproximateReceiveCount);
  const sentAt = sentAtOf(message);
  return {
    messageId: message.MessageId,
    content: readQueuedMessage(body),
    bodyLength: body.length,
    reasonAttribute: message.MessageAttributes?.reason?.StringValue,
    receiveCount: Number.isFinite(receiveCount) ? receiveCount : undefined,
    sentAt: sentAt === undefined ? undefined : new Date(sentAt).toISOString(),
    groupId: message.Attributes?.MessageGroupId,
  };
}

/** ChangeMessageVisibilityBatch to 0, ten at a time; what failed, for people, or undefined. */
async function makeVisibleAgain(
  sqs: SQSClient,
  queueUrl: string,
  handles: string[],
  hiddenSeconds = READ_VISIBILITY_SECONDS,
): Promise<string | undefined> {
  let failed = 0;
  let firstError: string | undefined;
  for (let start = 0; start < handles.length; start += SQS_BATCH_SIZE) {
    const batch = handles.slice(start, start + SQS_BATCH_SIZE);
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
    `they stay hidden, and their message groups held, for up to ${hiddenSeconds} s`
  );
}

/** How long a move holds the messages it leaves: they stay out of other readers' way until it ends. */
const HOLD_SECONDS = 120;

export interface MoveReport {
  /** The messages moved, in the order they were moved. */
  moved: PeekedMessage[];
  /** The messages left where they were; on a FIFO queue each hides the rest of its group. */
  left: PeekedMessage[];
  /** ApproximateNumberOfMessages + NotVisible, before moving. */
  onQueue: number;
  /** What went wrong, for people; the messages not moved are all still on the queue. */
  problem: string | undefined;
}

/**
 * Moves the messages of `queueUrl` that `shouldMove` picks to `destinationUrl`, each customer's in
 * order: a message is sent there with its body and message group, then deleted here. On a FIFO
 * queue only the first message of each group can be received; deleting it makes the next one
 * visible, so moving as it goes reaches every message of a group whose messages all move. A
 * message it leaves is held (invisible) until the end and then made visible again: the messages
 * behind it in its group stay out of reach, and so stay where they are, in order.
 */
export async function moveMessages(
  sqs: SQSClient,
  queueUrl: string,
  options: { destinationUrl: string; shouldMove(message: PeekedMessage): boolean; limit: number },
): Promise<MoveReport> {
  const onQueue = await approximateMessageCount(sqs, queueUrl);
  const report: MoveReport = { moved: [], left: [], onQueue, problem: undefined };
  const heldGroups = new Set<string>();
  const walk = await settleEach(sqs, queueUrl, 'moving', options.limit, async (message, peek) => {
    const group = peek.groupId ?? message.MessageId ?? message.ReceiptHandle ?? '';
    // Behind a message left in its group (a batch may hold several of one group): left too.
    if (heldGroups.has(group) || !options.shouldMove(peek)) {
      heldGroups.add(group);
      report.left.push(peek);
      return false;
    }
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: options.destinationUrl,
        MessageBody: message.Body ?? '',
        MessageGroupId: group,
        // This letter's replay: a replay repeated within SQS's 5 minutes (its delete failed) is
        // dropped as a duplicate; the same change parked again is another letter, another id.
        MessageDeduplicationId: deduplicationIdOfMove('replayed', {
          messageId: message.MessageId ?? message.ReceiptHandle ?? '',
          sentAt: sentAtOf(message),
        }),
      }),
    );
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    report.moved.push(peek);
    return true;
  });
  report.problem = walk.problem;
  return report;
}

/**
 * Receives each message of `queueUrl` once, holding it `HOLD_SECONDS`, until `limit` are seen or
 * a receive brings none new; `settle` deletes it (true: gone from the queue) or leaves it (false).
 * Those left, and any a failure cut short, are made visible again at the end. `complete`: the
 * queue was read to its end.
 */
async function settleEach(
  sqs: SQSClient,
  queueUrl: string,
  doing: string,
  limit: number,
  settle: (message: Message, peek: PeekedMessage) => Promise<boolean>,
): Promise<{ complete: boolean; problem: string | undefined }> {
  /** Received and still on the queue (left, or cut short by a failure), by id: their receipt handles. */
  const unsettled = new Map<string, string>();
  let seen = 0;
  let complete = false;
  let problem: string | undefined;
  try {
    while (seen < limit) {
      const received = await receive(sqs, queueUrl, SQS_BATCH_SIZE, HOLD_SECONDS);
      let fresh = 0;
      for (const message of received) {
        const id = message.MessageId ?? message.ReceiptHandle ?? '';
        const again = unsettled.has(id);
        unsettled.set(id, message.ReceiptHandle ?? '');
        if (again) continue;
        fresh++;
        if (await settle(message, peeked(message))) unsettled.delete(id);
        seen++;
      }
      if (fresh === 0) {
        complete = true;
        break;
      }
    }
  } catch (error) {
    problem = `${doing} stopped: ${(error as Error).message}`;
  }
  const released = await makeVisibleAgain(
    sqs,
    queueUrl,
    [...unsettled.values()].filter(Boolean),
    HOLD_SECONDS,
  );
  if (released) problem = problem ? `${problem}; also, ${released}` : released;
  return { complete, problem };
}

/** How many messages a drop reads at most: a dead-letter queue far larger is reported, not read to its end. */
const DROP_LIMIT = 5_000;

export interface DropReport {
  /** The messages deleted. */
  dropped: PeekedMessage[];
  /** Whether every message on the queue was read (false: the limit or a failure cut it short). */
  complete: boolean;
  problem: string | undefined;
}

/**
 * Deletes the messages of `queueUrl` that `shouldDrop` picks, leaving the others as they were. On
 * a FIFO queue only each group's first message can be received; deleting it makes the next one
 * visible, so a group whose messages all go is emptied. A message left is held until the end,
 * then made visible again at once.
 */
export async function dropMessages(
  sqs: SQSClient,
  queueUrl: string,
  shouldDrop: (message: PeekedMessage) => boolean,
  limit = DROP_LIMIT,
): Promise<DropReport> {
  const dropped: PeekedMessage[] = [];
  const walk = await settleEach(sqs, queueUrl, 'dropping', limit, async (message, peek) => {
    if (!shouldDrop(peek)) return false;
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    dropped.push(peek);
    return true;
  });
  return { dropped, ...walk };
}
