import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { EventBridgeEvent } from 'aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { replayEvents } from '../../cli/commands/replay-events.js';
import { approximateMessageCount } from '../../lib/adapters/sqs-queues.js';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { type AsyncOutcome, lambdaAsyncInvoker } from '../../local/lambda-async.js';
import { lambdaContext } from '../../local/lambda-events.js';
import { customerPayload } from '../../local/shopify-deliveries.js';
import { shopifyEvent } from '../../local/shopify-events.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { captureIo } from '../support/cli.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { type Harness, useHarness } from '../support/harness.js';

/**
 * A Shopify EventBridge event that meets a changes-queue outage longer than Lambda's two retries
 * is not lost: Lambda's on-failure destination keeps it (emulated by local/lambda-async.ts, on
 * the failure queue of infra/queues.yml), and `identity-sync replay-events` queues it once SQS
 * answers. The function's requests to the changes and dead-letter queues go through a fault
 * proxy; Lambda's own (to the destination) and the tests' go to fauxqs directly.
 */
let harness: Harness;
let proxy: FaultProxy;
let klaviyo: KlaviyoSandbox;
let invokeAsync: (event: unknown) => Promise<AsyncOutcome>;

useHarness(
  {
    env: async (peers) => {
      proxy = await startFaultProxy();
      proxy.target = peers.env.AWS_ENDPOINT_URL_SQS as string;
      // The SQS client sends to the host of the queue's URL: the queues' URLs name the proxy.
      const throughProxy = (url: string) => url.replace(proxy.target, proxy.url);
      return {
        IDENTITY_CHANGES_QUEUE_URL: throughProxy(peers.queueUrl),
        DEAD_LETTER_QUEUE_URL: throughProxy(peers.deadLetterQueueUrl),
      };
    },
  },
  async (started) => {
    harness = started;
    klaviyo = started.peers.klaviyo as KlaviyoSandbox;
    // Imported once the harness set the environment: the handler reads its configuration at load.
    const { handler } = await import('../../functions/shopify-eventbridge.js');
    invokeAsync = lambdaAsyncInvoker({
      handler: (event) =>
        handler(event as EventBridgeEvent<string, unknown>, lambdaContext('shopify-eventbridge')),
      functionArn:
        'arn:aws:lambda:us-east-1:000000000000:function:klaviyo-identity-sync-local-shopify-eventbridge',
      // Lambda's 1 and 2 minutes, shortened.
      retryDelaysMs: [50, 100],
      onFailure: { sqs: started.peers.sqs, queueUrl: started.peers.shopifyEventFailuresQueueUrl },
    });
  },
);
afterAll(() => proxy?.stop());

const failuresOnQueue = () =>
  approximateMessageCount(harness.peers.sqs, harness.peers.shopifyEventFailuresQueueUrl);
const replay = async (...args: string[]) => {
  const { io, written } = captureIo({ ...process.env });
  return { code: await replayEvents(args, io), ...written };
};

describe('a Shopify EventBridge event during a changes-queue outage', () => {
  it('is kept on the failure queue after three tries, and applied after replay-events', async () => {
    const id = '706405506930370555';
    const profile = klaviyo.seedProfile({ external_id: id, email: 'outage.old@example.com' });
    const event = shopifyEvent(customerPayload({ id, email: 'outage.new@example.com', phone: null }), {
      shop: DEMO_TENANT.shopDomain,
      triggeredAt: new Date().toISOString(),
    });

    proxy.inject({ kind: 'unavailable' });
    const outcome = await invokeAsync(event);
    expect(outcome).toMatchObject({
      status: 'sent-to-destination',
      attempts: 3,
      record: { requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: 3 } },
    });
    expect(await harness.queueDepth()).toBe(0);
    expect(await failuresOnQueue()).toBe(1);

    // Still down: the record stays where it is.
    const early = await replay('--yes');
    expect(early.code).toBe(1);
    expect(early.stderr).toContain('could not be queued');
    expect(await failuresOnQueue()).toBe(1);

    proxy.clear();
    const counted = await replay('--dry-run');
    expect(counted.code).toBe(0);
    expect(counted.stdout).toContain('1 event to send through the intake again');
    expect(counted.stdout).toContain(
      'RetriesExhausted after 3 tries: customers/update from demo-shop.myshopify.com',
    );
    expect(await failuresOnQueue()).toBe(1);

    const sent = await replay('--yes');
    expect(sent.stdout).toContain('Sent 1 event: 1 queued, 0 ignored, 0 parked');
    expect(sent.code).toBe(0);
    expect(await failuresOnQueue()).toBe(0);
    await harness.drain();
    expect(klaviyo.getProfile(profile.id)?.email).toBe('outage.new@example.com');
  });

  it('leaves a message that is no invocation record on the failure queue, and says so', async () => {
    await harness.peers.sqs.send(
      new SendMessageCommand({
        QueueUrl: harness.peers.shopifyEventFailuresQueueUrl,
        MessageBody: '{"not":"a record"}',
      }),
    );
    const run = await replay('--yes');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('1 message is no Lambda invocation record, left on the queue');
    expect(await failuresOnQueue()).toBe(1);
  });
});
