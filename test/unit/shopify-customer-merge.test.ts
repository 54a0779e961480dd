import { describe, expect, it } from 'vitest';
import { receiveWebhook } from '../../lib/intake/receive.js';
import { parseShopifyCustomerMerge } from '../../lib/shopify/customer-payload.js';
import { shopifyWebhookSource } from '../../lib/shopify/receive-webhook.js';
import { shopifyHeaders } from '../../local/shopify-deliveries.js';
import { customerMergePayload } from '../../local/shopify-events.js';
import { fakeIntake, tenantSecret } from '../support/intake.js';

/** Shopify's `customers/merge` webhook: its payload, and what the HTTPS intake queues from it. */
const BIG_KEPT = '706405506930370084';

describe('parseShopifyCustomerMerge', () => {
  it('takes both customers from their GraphQL ids, exactly, and the status', () => {
    expect(parseShopifyCustomerMerge(customerMergePayload({ kept: BIG_KEPT, deleted: '1001' }))).toEqual({
      ok: true,
      merge: { keptCustomerId: BIG_KEPT, deletedCustomerId: '1001', status: 'completed' },
    });
    const failed = parseShopifyCustomerMerge(
      customerMergePayload({ kept: '2', deleted: '1', status: 'failed' }),
    );
    expect(failed.ok && failed.merge.status).toBe('failed');
  });

  it.each([
    ['not JSON', '{"status":', /body is not JSON/],
    [
      'without the deleted customer',
      '{"admin_graphql_api_customer_kept_id":"gid://shopify/Customer/2","status":"completed"}',
      /admin_graphql_api_customer_deleted_id/,
    ],
    [
      'with a gid of another kind',
      customerMergePayload({ kept: '2', deleted: '1' }).replace('Customer/1', 'Order/1'),
      /must be a gid:\/\/shopify\/Customer/,
    ],
    ['merging a customer into itself', customerMergePayload({ kept: '7', deleted: '7' }), /the same/],
  ])('refuses a body %s, saying why', (_, body, why) => {
    const result = parseShopifyCustomerMerge(body);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(why);
  });
});

describe('the customers/merge webhook', () => {
  const source = shopifyWebhookSource({
    shopTenants: { 'demo-shop.myshopify.com': 'acme' },
    defaultPhoneRegion: 'US',
  });
  const secret = 'shpss_merge';

  function deliver(body: string, headers: Partial<Record<string, string>> = {}) {
    const fake = fakeIntake({ acme: tenantSecret({ shopifyWebhookSecrets: [secret] }) });
    const request = {
      headers: {
        ...shopifyHeaders(body, { secret, topic: 'customers/merge', webhookId: 'wh-merge' }),
        ...headers,
      },
      body: Buffer.from(body),
    };
    return { ...fake, answer: receiveWebhook(source, request, fake.deps) };
  }

  it('queues one customer merge, timed by X-Shopify-Triggered-At (the payload has no time)', async () => {
    const { answer, queued } = deliver(customerMergePayload({ kept: BIG_KEPT, deleted: '1001' }), {
      'x-shopify-triggered-at': '2026-05-01T07:59:00-04:00',
      'x-shopify-event-id': 'evt-merge',
    });
    expect(await answer).toEqual({ statusCode: 200, body: { status: 'queued' } });
    expect(queued).toEqual([
      {
        kind: 'customerMerge',
        tenant: 'acme',
        source: 'shopify',
        keptExternalId: BIG_KEPT,
        deletedExternalId: '1001',
        status: 'completed',
        occurredAt: '2026-05-01T11:59:00.000Z',
        sourceEventId: 'wh-merge',
        eventId: 'evt-merge',
        receivedAt: '2026-05-01T12:00:00.000Z',
      },
    ]);
  });

  it('queues a failed merge too: the worker skips it with its reason', async () => {
    const { answer, queued } = deliver(
      customerMergePayload({ kept: '2002', deleted: '1001', status: 'failed' }),
    );
    expect((await answer).statusCode).toBe(200);
    expect(queued).toMatchObject([{ kind: 'customerMerge', status: 'failed' }]);
  });

  it('keeps an unusable merge on the dead-letter queue with its reason', async () => {
    const { answer, queued, parked } = deliver('{"status":"completed"}');
    expect(await answer).toMatchObject({ statusCode: 200, body: { status: 'dead-lettered' } });
    expect(queued).toEqual([]);
    expect(parked).toMatchObject([
      { reason: 'invalid_payload', context: { topic: 'customers/merge' }, payload: '{"status":"completed"}' },
    ]);
  });
});
