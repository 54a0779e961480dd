import { describe, expect, it } from 'vitest';
import { TransientError } from '../../lib/errors.js';
import type { IntakeDependencies } from '../../lib/intake/receive.js';
import { shopifyEventBridgeIntake } from '../../lib/shopify/eventbridge.js';
import { BIG_CUSTOMER_ID, customerPayload } from '../../local/shopify-deliveries.js';
import { customerMergePayload, PARTNER_EVENT_SOURCE, shopifyEvent } from '../../local/shopify-events.js';
import { fakeIntake } from '../support/intake.js';

/**
 * Shopify's deliveries through Amazon EventBridge (events shaped as Shopify documents them), into
 * the same parsing, normalisation and queue as its HTTPS webhooks, with the ports in memory.
 */
const config = {
  shopTenants: { 'demo-shop.myshopify.com': 'acme' },
  defaultPhoneRegion: 'US',
  shopifyEventBusName: PARTNER_EVENT_SOURCE,
};

function intake(overrides: Partial<IntakeDependencies> = {}, settings: Partial<typeof config> = {}) {
  // No tenant has a secret: an event is taken without reading one.
  const fake = fakeIntake({}, overrides);
  return { ...fake, receive: shopifyEventBridgeIntake({ ...config, ...settings }, fake.deps) };
}

describe('customer events', () => {
  it.each(['customers/update', 'customers/create'])(
    'queues %s with the GraphQL id’s digits, though the parsed id lost some, without reading a secret',
    async (topic) => {
      const { receive, queued, get } = intake();
      const body = customerPayload({ email: ' Ada@Example.com ', phone: '(415) 555-0199' });
      const event = shopifyEvent(body, { topic, webhookId: 'wh-eb-1' });
      expect(event.detail.payload.id).toBe(706405506930370000); // what EventBridge delivers
      expect(await receive(event)).toEqual({ status: 'queued' });
      expect(queued).toEqual([
        {
          tenant: 'acme',
          source: 'shopify',
          externalId: BIG_CUSTOMER_ID,
          email: 'Ada@Example.com',
          phoneNumber: '+14155550199',
          occurredAt: '2026-05-01T16:00:00.000Z',
          sourceEventId: 'wh-eb-1',
          eventId: event.detail.metadata['X-Shopify-Event-Id'],
          receivedAt: '2026-05-01T12:00:00.000Z',
        },
      ]);
      expect(get).not.toHaveBeenCalled();
    },
  );

  it('reads a payload cut to the identifier fields (includeFields), ordered by X-Shopify-Triggered-At', async () => {
    const { receive, queued } = intake();
    const body = JSON.stringify({
      id: 1001,
      admin_graphql_api_id: 'gid://shopify/Customer/1001',
      email: 'ada@example.com',
      phone: null,
    });
    await receive(shopifyEvent(body, { triggeredAt: '2026-05-01T11:55:00.000Z', lowerCaseMetadata: true }));
    expect(queued).toMatchObject([
      { externalId: '1001', email: 'ada@example.com', occurredAt: '2026-05-01T11:55:00.000Z' },
    ]);
    expect(queued[0]).not.toHaveProperty('phoneNumber');
  });

  it('queues a customers/merge in the deleted customer’s group, as the HTTPS webhook does', async () => {
    const { receive, queued } = intake();
    const event = shopifyEvent(customerMergePayload({ kept: '2002', deleted: '1001' }), {
      topic: 'customers/merge',
      webhookId: 'wh-merge',
    });
    expect(await receive(event)).toEqual({ status: 'queued' });
    expect(queued).toEqual([
      expect.objectContaining({
        kind: 'customerMerge',
        keptExternalId: '2002',
        deletedExternalId: '1001',
        status: 'completed',
        occurredAt: '2026-05-01T11:59:58.000Z',
        sourceEventId: 'wh-merge',
      }),
    ]);
  });

  it('ignores another topic, queueing nothing', async () => {
    const { receive, queued, parked } = intake();
    const outcome = await receive(shopifyEvent('{"id":1}', { topic: 'orders/create' }));
    expect(outcome).toEqual({ status: 'ignored', reason: 'topic orders/create is not processed' });
    expect([...queued, ...parked]).toEqual([]);
  });
});

describe('events that cannot be used are kept on the dead-letter queue', () => {
  it('a customer whose id lost digits and came without its GraphQL id', async () => {
    const { receive, queued, parked } = intake();
    const event = shopifyEvent(customerPayload({ withoutGraphqlId: true }));
    expect(await receive(event)).toMatchObject({ status: 'dead-lettered' });
    expect(queued).toEqual([]);
    expect(parked).toMatchObject([
      {
        reason: 'invalid_payload',
        detail: expect.stringContaining('above 2^53 and lost digits'),
        tenant: 'acme',
        sourceEventId: event.id,
      },
    ]);
    expect(JSON.parse(parked[0]?.payload ?? '{}')).toEqual(event);
  });

  it('a shop that maps to no tenant', async () => {
    const { receive, parked } = intake();
    await receive(shopifyEvent(customerPayload(), { shop: 'stranger.myshopify.com' }));
    expect(parked).toMatchObject([
      { reason: 'unknown_tenant', detail: 'shop stranger.myshopify.com maps to no tenant' },
    ]);
  });

  it('an event from another partner event source than the configured bus’s', async () => {
    const { receive, parked } = intake();
    await receive(shopifyEvent(customerPayload(), { source: 'aws.partner/shopify.com/999/other' }));
    expect(parked).toMatchObject([
      { reason: 'invalid_payload', detail: expect.stringContaining('999/other') },
    ]);
  });

  it.each([
    ['no Shopify event at all', { source: 'aws.events', detail: {} }],
    ['an event without metadata', { ...shopifyEvent(customerPayload()), detail: { payload: {} } }],
    ['nothing', null],
  ])('%s', async (_, event) => {
    const { receive, parked } = intake();
    expect(await receive(event)).toMatchObject({ status: 'dead-lettered' });
    expect(parked).toMatchObject([
      { reason: 'invalid_payload', detail: expect.stringContaining('not a Shopify EventBridge event') },
    ]);
  });

  it('a customer payload without an id, as the HTTPS webhook keeps it', async () => {
    const { receive, parked } = intake();
    await receive(shopifyEvent('{"email":"a@example.com"}'));
    expect(parked).toMatchObject([
      { reason: 'invalid_payload', detail: expect.stringContaining('not a Shopify customer payload') },
    ]);
  });
});

describe('failures', () => {
  it('throws when the queue is unavailable, so that Lambda delivers the event again', async () => {
    const { receive } = intake({
      queue: { enqueue: () => Promise.reject(new TransientError('queue_unavailable', 'down')) },
    });
    await expect(receive(shopifyEvent(customerPayload()))).rejects.toBeInstanceOf(TransientError);
  });

  it('takes events of any Shopify partner source when no bus is configured', async () => {
    const { receive, queued } = intake({}, { shopifyEventBusName: undefined });
    await receive(shopifyEvent(customerPayload(), { source: 'aws.partner/shopify.com/999/other' }));
    expect(queued).toHaveLength(1);
  });
});
