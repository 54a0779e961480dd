import { describe, expect, it } from 'vitest';
import { createDynamoSeenBodies } from '../../lib/adapters/dynamo-seen-bodies.js';
import { createDynamoAuditLog, createDynamoSyncState } from '../../lib/adapters/dynamo-sync-state.js';
import { REPLAY_REASON } from '../../lib/intake/replay.js';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { shopifyHeaders } from '../../local/shopify-deliveries.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { TABLE_NAME } from '../../scripts/local-stack/peers.js';
import { type Harness, useHarness } from '../support/harness.js';

/**
 * Shopify signs only the body: the webhook id, event id, shop and X-Shopify-Triggered-At beside it
 * are anyone's to set. Through the real handlers against fauxqs, dynalite and the Klaviyo sandbox:
 * a forged time cannot make later changes stale, and a captured body sent again is not applied.
 */
let harness: Harness;
let klaviyo: KlaviyoSandbox;
const secret = DEMO_TENANT.shopifyWebhookSecret;
let nextCustomer = 7_000_000_000_000;

useHarness(
  { env: { SHOP_TENANTS: JSON.stringify({ [DEMO_TENANT.shopDomain]: DEMO_TENANT.tenant }) } },
  (started) => {
    harness = started;
    klaviyo = started.peers.klaviyo as KlaviyoSandbox;
  },
);

function seedCustomer(email: string) {
  const id = String(nextCustomer++);
  const profile = klaviyo.seedProfile({ external_id: id, email, phone_number: null });
  return { id, profileId: profile.id };
}

/** A customer payload cut to the identifiers (include_fields): no updated_at to order it by. */
const bodyWithoutUpdatedAt = (id: string, email: string) =>
  JSON.stringify({
    id: Number(id),
    admin_graphql_api_id: `gid://shopify/Customer/${id}`,
    email,
    phone: null,
  });

const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();

function deliver(body: string, headers: Record<string, string> = {}) {
  return harness.deliver(body, { ...shopifyHeaders(body, { secret }), ...headers });
}

describe('an unsigned X-Shopify-Triggered-At', () => {
  it('in 2100, with no updated_at, does not stop a later real change of that customer from applying', async () => {
    const { id, profileId } = seedCustomer('before@example.com');
    const forged = bodyWithoutUpdatedAt(id, 'forged@example.com');
    expect(await deliver(forged, { 'x-shopify-triggered-at': '2100-01-01T00:00:00Z' })).toMatchObject({
      statusCode: 200,
      body: { status: 'queued' },
    });
    await harness.drain();
    expect(klaviyo.getProfile(profileId)?.email).toBe('forged@example.com');

    // A real change, signed updated_at a minute ago, delivered after it (deliveries can be late).
    const real = JSON.stringify({
      id: Number(id),
      admin_graphql_api_id: `gid://shopify/Customer/${id}`,
      email: 'real@example.com',
      phone: null,
      updated_at: minutesAgo(1),
    });
    expect((await deliver(real)).body).toEqual({ status: 'queued' });
    await harness.drain();
    expect(klaviyo.getProfile(profileId)?.email).toBe('real@example.com');
  });
});

/** A full customer payload: `updated_at` (signed) orders it. */
const bodyWithUpdatedAt = (id: string, email: string, updatedAt: string) =>
  JSON.stringify({
    id: Number(id),
    admin_graphql_api_id: `gid://shopify/Customer/${id}`,
    email,
    phone: null,
    updated_at: updatedAt,
  });

describe('a captured signed body with updated_at, replayed with a fresh webhook id and event id', () => {
  it('is queued (no claim costs a write) and then skipped by the worker as stale or unchanged: Klaviyo is not asked', async () => {
    const { id, profileId } = seedCustomer('first@example.com');
    const captured = bodyWithUpdatedAt(id, 'captured@example.com', minutesAgo(3));
    const latest = bodyWithUpdatedAt(id, 'latest@example.com', minutesAgo(2));
    for (const body of [captured, latest]) {
      expect((await harness.deliver(body, shopifyHeaders(body, { secret }))).body).toEqual({
        status: 'queued',
      });
      await harness.drain();
    }
    expect(klaviyo.getProfile(profileId)?.email).toBe('latest@example.com');

    const requestsBefore = klaviyo.requests.length;
    for (const [body, n] of [
      [captured, 1],
      [latest, 2],
    ] as const) {
      const replay = {
        ...shopifyHeaders(body, { secret, webhookId: `wh-${id}-replayed-${n}` }),
        'x-shopify-event-id': `evt-${id}-replayed-${n}`,
        'x-shopify-triggered-at': new Date().toISOString(),
      };
      expect((await harness.deliver(body, replay)).body).toEqual({ status: 'queued' });
    }
    await harness.drain();
    // The older body is stale, the latest one unchanged: neither costs a Klaviyo request.
    expect(klaviyo.requests.length).toBe(requestsBefore);
    expect(klaviyo.getProfile(profileId)?.email).toBe('latest@example.com');
    const history = await createDynamoAuditLog(harness.peers.dynamodb, TABLE_NAME, 1).history(
      DEMO_TENANT.tenant,
      id,
    );
    expect(history.find((entry) => entry.sourceEventId === `wh-${id}-replayed-1`)?.outcome).toBe('stale');
  });
});

describe('a captured signed body without updated_at, replayed with a fresh webhook id and event id', () => {
  it('is answered 200 and not applied again, while Shopify’s own retry (same webhook id) still is', async () => {
    const { id, profileId } = seedCustomer('first@example.com');
    const captured = bodyWithoutUpdatedAt(id, 'captured@example.com');
    const original = shopifyHeaders(captured, { secret, webhookId: `wh-${id}-1` });
    expect(
      (await harness.deliver(captured, { ...original, 'x-shopify-triggered-at': minutesAgo(3) })).body,
    ).toEqual({
      status: 'queued',
    });
    await harness.drain();
    const next = bodyWithoutUpdatedAt(id, 'next@example.com');
    expect((await deliver(next, { 'x-shopify-triggered-at': minutesAgo(2) })).body).toEqual({
      status: 'queued',
    });
    await harness.drain();
    expect(klaviyo.getProfile(profileId)?.email).toBe('next@example.com');

    const replay = {
      ...original,
      'x-shopify-webhook-id': `wh-${id}-replayed`,
      'x-shopify-event-id': `evt-${id}-replayed`,
      'x-shopify-triggered-at': new Date().toISOString(),
    };
    expect(await harness.deliver(captured, replay)).toEqual({
      statusCode: 200,
      body: { status: 'ignored', reason: REPLAY_REASON },
    });
    expect(await harness.queueDepth()).toBe(0);
    await harness.drain();
    expect(klaviyo.getProfile(profileId)?.email).toBe('next@example.com');

    // Shopify retrying the original delivery (its answer lost): the same webhook id is no replay.
    expect((await harness.deliver(captured, original)).body).toEqual({ status: 'queued' });
  });
});

describe('the DynamoDB adapters', () => {
  const DAY = 24 * 3600;

  it('remember a body for its first delivery id for the window, then let it go', async () => {
    const seen = createDynamoSeenBodies(harness.peers.dynamodb, TABLE_NAME, DAY);
    const now = new Date();
    const key = `shopify#sha256:${'ab'.repeat(32)}`;
    expect(await seen.claim(key, 'wh-1', now)).toBe(true);
    expect(await seen.claim(key, 'wh-1', now)).toBe(true);
    expect(await seen.claim(key, 'wh-2', now)).toBe(false);
    expect(await seen.claim(key, 'wh-2', new Date(now.getTime() + (DAY - 60) * 1000))).toBe(false);
    // Past the window (the TTL may not have deleted the item yet): a new first delivery.
    expect(await seen.claim(key, 'wh-2', new Date(now.getTime() + (DAY + 1) * 1000))).toBe(true);
  });

  it('record a change with an unsigned time without moving the staleness watermark', async () => {
    const state = createDynamoSyncState(harness.peers.dynamodb, TABLE_NAME);
    const applied = {
      tenant: DEMO_TENANT.tenant,
      externalId: 'unsigned-watermark',
      sourceEventId: 'wh-signed',
      profileId: '01P',
      identifiers: { email: 'a@example.com', phone_number: null },
    };
    await state.recordApplied({ ...applied, occurredAt: '2026-05-01T12:00:00.000Z' });
    const forged = {
      ...applied,
      occurredAt: '2100-01-01T00:00:00.000Z',
      occurredAtUnsigned: true,
      profileId: '01Q',
    };
    expect(await state.recordApplied(forged)).toBe(true);
    expect(await state.getState(DEMO_TENANT.tenant, 'unsigned-watermark')).toMatchObject({
      lastAppliedAt: '2026-05-01T12:00:00.000Z',
      profileId: '01Q',
    });
  });
});
