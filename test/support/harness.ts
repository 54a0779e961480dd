import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyStructuredResultV2, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { approximateMessageCount } from '../../lib/adapters/sqs-queues.js';
import type { DeadLetter } from '../../lib/ports.js';
import { httpApiEvent, lambdaContext } from '../../local/lambda-events.js';
import { type LocalPeers, type LocalPeersOptions, startLocalPeers } from '../../scripts/local-stack/peers.js';
import { createQueuePoller, type QueuePoller } from '../../scripts/local-stack/queue-poller.js';
import { setEnv } from './local-peers.js';

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

type WorkerInvocation = (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;

/** How the harness runs the worker. */
export interface HarnessWorkerOptions {
  /** Batches worked on at once when the poller runs (`poller.start()`), as Lambda's concurrency. */
  concurrency?: number;
  /** The worker's timeout: its context counts down from each invocation's start (default: 30 s left, always). */
  timeoutMs?: number;
  /** Wraps each invocation: to lose its answer, as when the worker is killed before the queue hears. */
  around?: (invoke: WorkerInvocation, event: SQSEvent) => Promise<SQSBatchResponse | undefined>;
}

export interface HarnessOptions {
  peers?: LocalPeersOptions;
  /** Settings for the functions, over the peers' (a function of them, e.g. to put a proxy in front of one). */
  env?:
    | Record<string, string>
    | ((peers: LocalPeers) => Record<string, string> | Promise<Record<string, string>>);
  worker?: HarnessWorkerOptions;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const peers = await startLocalPeers({ visibilityTimeoutSeconds: 1, maxReceiveCount: 3, ...options.peers });
  const env = typeof options.env === 'function' ? await options.env(peers) : options.env;
  // Tests rotate a secret right after refusing forged requests: let every fresh read through. A
  // failed change comes back after a second, as the queue's visibility timeout here says.
  const restoreEnv = setEnv({
    ...peers.env,
    SECRET_REFRESH_MIN_SECONDS: '0',
    RETRY_FIRST_DELAY_SECONDS: '1',
    RETRY_MAX_DELAY_SECONDS: '1',
    ...env,
  });
  // Imported only now: handlers read their configuration once, at load, from the environment.
  const webhook = await import('../../functions/shopify-webhook.js');
  const erpWebhook = await import('../../functions/erp-webhook.js');
  const worker = await import('../../functions/sync-worker.js');
  const { timeoutMs, around, concurrency } = options.worker ?? {};
  const invoke: WorkerInvocation = (event) => {
    const deadline = Date.now() + (timeoutMs ?? 0);
    const context = timeoutMs
      ? { ...lambdaContext('sync-worker'), getRemainingTimeInMillis: () => deadline - Date.now() }
      : lambdaContext('sync-worker');
    return worker.handler(event, context) as Promise<SQSBatchResponse | undefined>;
  };
  const poller = createQueuePoller({
    sqs: peers.sqs,
    queueUrl: peers.queueUrl,
    queueArn: peers.queueArn,
    concurrency,
    invoke: around ? (event) => around(invoke, event) : invoke,
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
      restoreEnv();
    },
  };
}

/**
 * A harness for the tests of one file: started before them (then `onStart`), stopped after them;
 * before each test the queue is drained and the dead letters and Klaviyo's request log cleared,
 * so no test sees another's leftovers.
 */
export function useHarness(
  options: HarnessOptions,
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
