import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyStructuredResultV2, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { approximateMessageCount } from '../../lib/adapters/sqs-queues.js';
import type { DeadLetter } from '../../lib/ports.js';
import { httpApiEvent, lambdaContext } from '../../local/lambda-events.js';
import { type LocalPeers, type LocalPeersOptions, startLocalPeers } from '../../scripts/local-stack/peers.js';
import { createQueuePoller, type QueuePoller } from '../../scripts/local-stack/queue-poller.js';

/**
 * Runs the real handlers in this process against the local peers over loopback: the webhook
 * handler gets API Gateway events, the worker gets SQS batches from fauxqs through the poller.
 */
export interface Harness {
  peers: LocalPeers;
  poller: QueuePoller;
  /** POSTs a body to the Shopify webhook handler as API Gateway would. */
  deliver(
    body: string,
    headers: Record<string, string>,
    options?: { base64?: boolean },
  ): Promise<{
    statusCode: number;
    body: Record<string, unknown>;
  }>;
  /** POSTs a body to the ERP webhook handler for `tenant` (the path segment) as API Gateway would. */
  deliverErp(
    tenant: string,
    body: string,
    headers: Record<string, string>,
  ): Promise<{
    statusCode: number;
    body: Record<string, unknown>;
  }>;
  /** Runs the worker until the queue has nothing visible or in flight. */
  drain(timeoutMs?: number): Promise<void>;
  /** Takes (and removes) everything on the dead-letter queue. */
  takeDeadLetters(): Promise<{ letter: DeadLetter | Record<string, unknown>; reason: string | undefined }[]>;
  queueDepth(): Promise<number>;
  stop(): Promise<void>;
}

/** What a handler answered, its JSON body parsed. */
function answerOf(result: APIGatewayProxyStructuredResultV2) {
  return { statusCode: result.statusCode ?? 0, body: JSON.parse(String(result.body)) };
}

export async function startHarness(
  options: { peers?: LocalPeersOptions; env?: Record<string, string> } = {},
): Promise<Harness> {
  const peers = await startLocalPeers({ visibilityTimeoutSeconds: 1, maxReceiveCount: 3, ...options.peers });
  // Tests rotate a secret right after refusing forged requests: let every fresh read through.
  Object.assign(process.env, peers.env, { SECRET_REFRESH_MIN_SECONDS: '0' }, options.env);
  // Imported only now: handlers read their configuration once, at load, from the environment.
  const webhook = await import('../../functions/shopify-webhook.js');
  const erpWebhook = await import('../../functions/erp-webhook.js');
  const worker = await import('../../functions/sync-worker.js');
  const poller = createQueuePoller({
    sqs: peers.sqs,
    queueUrl: peers.queueUrl,
    queueArn: peers.queueArn,
    invoke: (event: SQSEvent) =>
      worker.handler(event, lambdaContext('sync-worker')) as Promise<SQSBatchResponse | undefined>,
  });

  const countMessages = (queueUrl: string) => approximateMessageCount(peers.sqs, queueUrl);

  return {
    peers,
    poller,
    async deliver(body, headers, { base64 = false } = {}) {
      const result = await webhook.handler(
        httpApiEvent(body, headers, base64),
        lambdaContext('shopify-webhook'),
      );
      return answerOf(result as APIGatewayProxyStructuredResultV2);
    },
    async deliverErp(tenant, body, headers) {
      const route = {
        routeKey: 'POST /webhooks/erp/{tenant}',
        path: `/webhooks/erp/${tenant}`,
        pathParameters: { tenant },
      };
      const result = await erpWebhook.handler(
        httpApiEvent(body, headers, false, route),
        lambdaContext('erp-webhook'),
      );
      return answerOf(result as APIGatewayProxyStructuredResultV2);
    },
    async drain(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const received = await poller.pollOnce(0);
        if (received === 0) {
          if ((await countMessages(peers.queueUrl)) === 0) return;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      throw new Error(`queue not drained within ${timeoutMs} ms`);
    },
    async takeDeadLetters() {
      const letters: { letter: DeadLetter | Record<string, unknown>; reason: string | undefined }[] = [];
      for (;;) {
        const { Messages = [] } = await peers.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: peers.deadLetterQueueUrl,
            MaxNumberOfMessages: 10,
            MessageAttributeNames: ['All'],
            VisibilityTimeout: 30,
          }),
        );
        if (Messages.length === 0) return letters;
        for (const message of Messages) {
          letters.push({
            letter: JSON.parse(message.Body ?? '{}'),
            reason: message.MessageAttributes?.reason?.StringValue,
          });
          await peers.sqs.send(
            new DeleteMessageCommand({
              QueueUrl: peers.deadLetterQueueUrl,
              ReceiptHandle: message.ReceiptHandle,
            }),
          );
        }
      }
    },
    queueDepth: () => countMessages(peers.queueUrl),
    async stop() {
      await poller.stop();
      await peers.stop();
    },
  };
}

/**
 * A harness for the tests of one file: started before them (then `onStart`), stopped after them;
 * before each test the queue is drained and the dead letters and Klaviyo's request log cleared,
 * so no test sees another's leftovers.
 */
export function useHarness(
  options: Parameters<typeof startHarness>[0],
  onStart: (harness: Harness) => void | Promise<void>,
): void {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await startHarness(options);
    await onStart(harness);
  });
  afterAll(() => harness?.stop());
  beforeEach(async () => {
    await harness?.drain();
    await harness?.takeDeadLetters();
    harness?.peers.klaviyo?.clearRequests();
  });
}
