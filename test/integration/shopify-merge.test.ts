import type { EventBridgeEvent } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { lambdaContext } from '../../local/lambda-events.js';
import { customerPayload, shopifyHeaders } from '../../local/shopify-deliveries.js';
import { customerMergePayload, PARTNER_EVENT_SOURCE, shopifyEvent } from '../../local/shopify-events.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { type Harness, useHarness } from '../support/harness.js';

/**
 * Shopify customer merges end to end, through the real handlers, SDK clients and adapters against
 * fauxqs, dynalite, the local Secrets Manager endpoint and the Klaviyo sandbox (whose merges run
 * asynchronously, as Klaviyo's do): signed HTTPS webhooks, and the same topics through the
 * EventBridge function.
 */
let harness: Harness;
let klaviyo: KlaviyoSandbox;
let eventBridge: (event: unknown) => Promise<unknown>;
let nextCustomer = 6_000_000_000_000;
const customer = () => String(nextCustomer++);

useHarness({ env: { SHOPIFY_EVENT_BUS_NAME: PARTNER_EVENT_SOURCE } }, (started) => {
  harness = started;
  klaviyo = started.peers.klaviyo as KlaviyoSandbox;
});

beforeAll(async () => {
  // Imported once the harness set the environment: the handler reads its configuration at load.
  const { handler } = await import('../../functions/shopify-eventbridge.js');
  eventBridge = (event) =>
    handler(event as EventBridgeEvent<string, unknown>, lambdaContext('shopify-eventbridge'));
});

const send = (body: string, topic: string) =>
  harness.deliver(body, shopifyHeaders(body, { secret: DEMO_TENANT.shopifyWebhookSecret, topic }));

const merge = (kept: string, deleted: string) =>
  send(customerMergePayload({ kept, deleted }), 'customers/merge');

describe('a signed customers/merge', () => {
  it('merges the deleted customer’s profile into the kept one’s, and a late change of the deleted one is skipped', async () => {
    const [kept, deleted] = [customer(), customer()];
    const keptProfile = klaviyo.seedProfile({ external_id: kept, email: `kept.${kept}@example.com` });
    const deletedProfile = klaviyo.seedProfile({
      external_id: deleted,
      email: `deleted.${deleted}@example.com`,
      phone_number: `+1646555${deleted.slice(-4)}`,
    });

    expect(await merge(kept, deleted)).toEqual({ statusCode: 200, body: { status: 'queued' } });
    await harness.drain();

    expect(klaviyo.getProfile(deletedProfile.id)).toBeUndefined();
    expect(klaviyo.getProfile(keptProfile.id)).toMatchObject({
      external_id: kept,
      email: `kept.${kept}@example.com`,
      phone_number: `+1646555${deleted.slice(-4)}`,
    });

    // Shopify retried a change of the deleted customer from before the merge: nothing comes back.
    const late = customerPayload({ id: deleted, email: `late.${deleted}@example.com`, phone: null });
    expect((await send(late, 'customers/update')).statusCode).toBe(200);
    await harness.drain();
    expect(klaviyo.findProfile({ external_id: deleted })).toBeUndefined();
    expect(klaviyo.findProfile({ email: `late.${deleted}@example.com` })).toBeUndefined();
    expect(await harness.takeDeadLetters()).toEqual([]);
  });

  it('re-keys the deleted customer’s profile when the kept customer has none', async () => {
    const [kept, deleted] = [customer(), customer()];
    const only = klaviyo.seedProfile({ external_id: deleted, email: `only.${deleted}@example.com` });
    await merge(kept, deleted);
    await harness.drain();
    expect(klaviyo.getProfile(only.id)?.external_id).toBe(kept);
    // The kept customer's next change finds the profile by its new external_id.
    await send(
      customerPayload({ id: kept, email: `next.${kept}@example.com`, phone: null }),
      'customers/update',
    );
    await harness.drain();
    expect(klaviyo.getProfile(only.id)?.email).toBe(`next.${kept}@example.com`);
  });

  it('leaves Klaviyo alone for a merge Shopify reports failed', async () => {
    const [kept, deleted] = [customer(), customer()];
    klaviyo.seedProfile({ external_id: kept });
    klaviyo.seedProfile({ external_id: deleted });
    klaviyo.clearRequests();
    await send(customerMergePayload({ kept, deleted, status: 'failed' }), 'customers/merge');
    await harness.drain();
    expect(klaviyo.requests).toEqual([]);
    expect(klaviyo.findProfile({ external_id: deleted })).toBeDefined();
  });
});

describe('through Amazon EventBridge', () => {
  it('applies a customers/update event to the customer of the exact GraphQL id', async () => {
    const id = '706405506930370099'; // 706405506930370100 once EventBridge has parsed it
    const profile = klaviyo.seedProfile({ external_id: id, email: 'eb.old@example.com' });
    const event = shopifyEvent(customerPayload({ id, email: 'eb.new@example.com', phone: null }), {
      shop: DEMO_TENANT.shopDomain,
      triggeredAt: new Date().toISOString(),
    });
    expect(await eventBridge(event)).toEqual({ status: 'queued' });
    await harness.drain();
    expect(klaviyo.getProfile(profile.id)?.email).toBe('eb.new@example.com');
  });

  it('carries a customers/merge event over as the webhook does', async () => {
    const [kept, deleted] = [customer(), customer()];
    const keptProfile = klaviyo.seedProfile({ external_id: kept });
    const deletedProfile = klaviyo.seedProfile({ external_id: deleted, email: `eb.${deleted}@example.com` });
    const event = shopifyEvent(customerMergePayload({ kept, deleted }), {
      topic: 'customers/merge',
      shop: DEMO_TENANT.shopDomain,
    });
    expect(await eventBridge(event)).toEqual({ status: 'queued' });
    await harness.drain();
    expect(klaviyo.getProfile(deletedProfile.id)).toBeUndefined();
    expect(klaviyo.getProfile(keptProfile.id)?.email).toBe(`eb.${deleted}@example.com`);
  });

  it('keeps an event from another partner event source than the bus’s on the dead-letter queue', async () => {
    const event = shopifyEvent(customerPayload(), { source: 'aws.partner/shopify.com/999/other' });
    expect(await eventBridge(event)).toMatchObject({ status: 'dead-lettered' });
    const [kept] = await harness.takeDeadLetters();
    expect(kept).toMatchObject({
      reason: 'invalid_payload',
      letter: { source: 'shopify', sourceEventId: event.id },
    });
  });
});
