import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

/**
 * Does locally what Lambda's SQS event source mapping does in AWS: receives batches from the
 * queue, hands them to the worker as an SQS event, deletes what succeeded and leaves the reported
 * failures to come back after the visibility timeout (and reach the dead-letter queue by redrive).
 */
export interface QueuePollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region?: string;
  batchSize?: number;
  /**
   * Batches worked on at once, as Lambda's SQS trigger runs up to its maximum concurrency of
   * worker invocations (WORKER_MAX_CONCURRENCY). Order holds: a FIFO queue hands out no message of
   * a group while another of that group is in flight.
   */
  concurrency?: number;
  /** Runs the worker on one batch: in-process in tests, through serverless-offline in npm start. */
  invoke: (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;
  onError?: (error: unknown) => void;
}

export interface QueuePoller {
  /** Receives and processes one batch; the number of messages received. */
  pollOnce(waitTimeSeconds?: number): Promise<number>;
  /** Polls until stopped. */
  start(): void;
  stop(): Promise<void>;
}

export function createQueuePoller(options: QueuePollerOptions): QueuePoller {
  let running: Promise<void> | undefined;
  let stopping = false;

  async function pollOnce(waitTimeSeconds = 0): Promise<number> {
    const { Messages = [] } = await options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: options.queueUrl,
        MaxNumberOfMessages: options.batchSize ?? 10,
        WaitTimeSeconds: waitTimeSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) return 0;
    const event: SQSEvent = { Records: Messages.map((message) => toRecord(message, options)) };
    let failed: Set<string>;
    try {
      const response = await options.invoke(event);
      failed = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    } catch (error) {
      // A thrown invocation fails the whole batch, as in AWS.
      options.onError?.(error);
      return Messages.length;
    }
    const done = Messages.filter((message) => !failed.has(message.MessageId as string));
    if (done.length > 0) {
      await options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: options.queueUrl,
          Entries: done.map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle,
          })),
        }),
      );
    }
    return Messages.length;
  }

  return {
    pollOnce,
    start() {
      stopping = false;
      const loop = async () => {
        while (!stopping) {
          try {
            await pollOnce(1);
          } catch (error) {
            options.onError?.(error);
            await new Promise((resolve) => setTimeout(resolve, 1000));
          }
        }
      };
      running = Promise.all(Array.from({ length: options.concurrency ?? 1 }, loop)).then(() => undefined);
    },
    async stop() {
      stopping = true;
      await running;
    },
  };
}

function toRecord(message: Message, options: QueuePollerOptions): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId as string,
    receiptHandle: message.ReceiptHandle as string,
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      MessageGroupId: attributes.MessageGroupId,
      MessageDeduplicationId: attributes.MessageDeduplicationId,
      SequenceNumber: attributes.SequenceNumber,
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: options.queueArn,
    awsRegion: options.region ?? 'us-east-1',
  };
}
