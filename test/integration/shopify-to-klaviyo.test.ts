import { createHash } from 'node:crypto';
import type { SQSBatchResponse } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { SHOPIFY_MAX_BODY_BYTES } from '../../lib/shopify/receive-webhook.js';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { lambdaContext } from '../../local/lambda-events.js';
import { customerPayload, shopifyHeaders } from '../../local/shopify-deliveries.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { putTenantSecrets, TENANT_SECRET_PREFIX } from '../../scripts/local-stack/peers.js';
import { createQueuePoller } from '../../scripts/local-stack/queue-poller.js';
import { type Harness, useHarness } from '../support/harness.js';
import { capturedOutput } from '../support/output.js';

/**
 * The Shopify path through the real handlers, SDK clients and adapters, against fauxqs, dynalite,
 * the local Secrets Manager endpoint and the Klaviyo sandbox on loopback.
 */
let harness: Harness;
let klaviyo: KlaviyoSandbox;
const secret = DEMO_TENANT.shopifyWebhookSecret;
let nextCustomer = 5_000_000_000_000;
let clock = Date.parse('2026-05-01T12:00:00Z');

/** A fresh customer id and a profile for it, so tests do not see each other's data. */
function seedCustomer(email: string, phone?: string) {
  const id = String(nextCustomer++);
  phone ??= `+1646555${id.slice(-4)}`;
  const profile = klaviyo.seedProfile({ external_id: id, email, phone_number: phone });
  return { id, profileId: profile.id };
}

/** A moment after every one handed out before: each delivery is newer than the last. */
function later() {
  clock += 60_000;
  return new Date(clock).toISOString();
}

async function deliverUpdate(
  fields: Parameters<typeof customerPayload>[0],
  headers: Partial<Parameters<typeof shopifyHeaders>[1]> = {},
) {
  // No phone unless a test gives one: phones are unique in Klaviyo, and tests share the sandbox.
  const body = customerPayload({ updatedAt: later(), phone: null, ...fields });
  return harness.deliver(body, shopifyHeaders(body, { secret, ...headers }));
}

const patchesTo = (profileId: string) =>
  klaviyo.requests.filter(
    (request) => request.method === 'PATCH' && request.path === `/api/profiles/${profileId}`,
  );

/** Shops whose tenants have no secret: one never asked for (to count reads), one asked for. */
const UNREAD_SHOP = 'unread-shop.myshopify.com';
const UNREAD_SECRET_ID = `${TENANT_SECRET_PREFIX}unread/webhook`;
const GHOST_SHOP = 'ghost-shop.myshopify.com';

useHarness(
  {
    env: {
      // Fewer conflict tries than SQS receives, so a blocked change is parked before redrive.
      KLAVIYO_MAX_ATTEMPTS: '3',
      KLAVIYO_RETRY_BUDGET_MS: '5000',
      CONFLICT_RETRY_ATTEMPTS: '2',
      SHOP_TENANTS: JSON.stringify({
        [DEMO_TENANT.shopDomain]: DEMO_TENANT.tenant,
        [UNREAD_SHOP]: 'unread',
        [GHOST_SHOP]: 'ghost',
      }),
    },
  },
  (started) => {
    harness = started;
    klaviyo = started.peers.klaviyo as KlaviyoSandbox;
  },
);

describe('logs and metrics', () => {
  it('tell what happened without ever showing a whole email or phone number', async () => {
    const { id } = seedCustomer('grace.old@example.com');
    const output = await capturedOutput(async () => {
      await deliverUpdate({ id, email: 'grace.hopper@example.com', phone: '+1 212 555 0147' });
      await harness.drain();
    });
    expect(output).toContain('Identity change queued');
    expect(output).toContain('Change applied');
    expect(output).toMatch(/"ChangeApplied":\s*1/);
    expect(output).toMatch(/"WebhookAccepted":\s*1/);
    // The lines name the customer; its identifiers stay in the queue and the audit trail.
    expect(output).toMatch(new RegExp(`"externalId":\\s*"${id}"`));
    expect(output).not.toContain('grace.hopper');
    expect(output).not.toContain('2125550147');
  });
});

describe('a signed customers/update', () => {
  it('changes the email and phone of the profile whose external_id is the customer id', async () => {
    const { id, profileId } = seedCustomer('ada.old@example.com');
    const response = await deliverUpdate({ id, email: ' ada.new@example.com ', phone: '(415) 555-0199' });
    expect(response).toEqual({ statusCode: 200, body: { status: 'queued' } });
    await harness.drain();
    expect(klaviyo.getProfile(profileId)).toMatchObject({
      email: 'ada.new@example.com',
      phone_number: '+14155550199',
    });
    const [patch] = patchesTo(profileId);
    expect(patch?.headers.revision).toBe('2026-10-15');
    expect(patch?.headers.authorization).toBe(`Klaviyo-API-Key ${DEMO_TENANT.klaviyoPrivateKey}`);
  });

  // 2026-07 and 2026-10 payloads are taken to have the 2026-04 fields we read (unconfirmed).
  it.each(['2026-07', '2026-10'])('applies a delivery of API version %s', async (apiVersion) => {
    const { id, profileId } = seedCustomer(`v${apiVersion}.old@example.com`);
    const response = await deliverUpdate({ id, email: `v${apiVersion}.new@example.com` }, { apiVersion });
    expect(response).toEqual({ statusCode: 200, body: { status: 'queued' } });
    await harness.drain();
    expect(klaviyo.getProfile(profileId)?.email).toBe(`v${apiVersion}.new@example.com`);
  });

  it('finds a customer whose id exceeds 2^53 by its exact digits', async () => {
    const id = '706405506930370099'; // 706405506930370100 as a JS number
    const profile = klaviyo.seedProfile({ external_id: id, email: 'big.old@example.com' });
    await deliverUpdate({ id, email: 'big.new@example.com', phone: null });
    await harness.drain();
    expect(klaviyo.getProfile(profile.id)?.email).toBe('big.new@example.com');
  });

  it('sends only the identifiers that differ, and nothing when none does', async () => {
    const { id, profileId } = seedCustomer('same@example.com', '+14155550110');
    await deliverUpdate({ id, email: 'same@example.com', phone: '+1 415 555 0111' });
    await deliverUpdate({ id, email: 'same@example.com', phone: '+1 415 555 0111' });
    await harness.drain();
    const patches = patchesTo(profileId);
    expect(patches).toHaveLength(1);
    expect(patches[0]?.body).toEqual({
      data: { type: 'profile', id: profileId, attributes: { phone_number: '+14155550111' } },
    });
  });

  it('leaves the email alone when Shopify sends null', async () => {
    const { id, profileId } = seedCustomer('kept@example.com');
    await deliverUpdate({ id, email: null, phone: '+14155550122' });
    await harness.drain();
    expect(klaviyo.getProfile(profileId)).toMatchObject({
      email: 'kept@example.com',
      phone_number: '+14155550122',
    });
  });

  it('drops an unusable phone but still applies the email', async () => {
    const { id, profileId } = seedCustomer('phone.bad@example.com', '+14155550120');
    await deliverUpdate({ id, email: 'phone.fixed@example.com', phone: 'call me maybe' });
    await harness.drain();
    expect(klaviyo.getProfile(profileId)).toMatchObject({
      email: 'phone.fixed@example.com',
      phone_number: '+14155550120',
    });
  });

  it('creates the profile when no profile has the external_id', async () => {
    const id = String(nextCustomer++);
    await deliverUpdate({ id, email: 'brand.new@example.com', phone: null }, { topic: 'customers/create' });
    await harness.drain();
    expect(klaviyo.findProfile({ external_id: id })).toMatchObject({ email: 'brand.new@example.com' });
  });

  it('accepts a body API Gateway hands over base64-encoded', async () => {
    const { id, profileId } = seedCustomer('b64.old@example.com');
    const body = customerPayload({ id, email: 'b64.new@example.com', phone: null, updatedAt: later() });
    const response = await harness.deliver(body, shopifyHeaders(body, { secret }), { base64: true });
    expect(response.statusCode).toBe(200);
    await harness.drain();
    expect(klaviyo.getProfile(profileId)?.email).toBe('b64.new@example.com');
  });
});

describe('what is refused or ignored', () => {
  it('refuses a wrong or missing signature with 401 and queues nothing', async () => {
    const body = customerPayload({ id: '42' });
    const forged = await harness.deliver(body, shopifyHeaders(body, { secret: 'not-the-secret' }));
    const unsigned = await harness.deliver(body, shopifyHeaders(body, { secret, signature: null }));
    expect(forged.statusCode).toBe(401);
    expect(unsigned.statusCode).toBe(401);
    expect(await harness.queueDepth()).toBe(0);
  });

  it("verifies a shop with no tenant mapping against the default tenant's secret", async () => {
    const body = customerPayload({ id: '43' });
    const response = await harness.deliver(
      body,
      shopifyHeaders(body, { secret: 'x', shop: 'stranger.myshopify.com' }),
    );
    expect(response.statusCode).toBe(401);
  });

  it('answers a shop whose tenant has no secret exactly as a wrong signature', async () => {
    const body = customerPayload({ id: '44' });
    const forged = await harness.deliver(body, shopifyHeaders(body, { secret: 'not-the-secret' }));
    const ghost = await harness.deliver(body, shopifyHeaders(body, { secret, shop: GHOST_SHOP }));
    expect(forged).toEqual({ statusCode: 401, body: { error: 'invalid signature' } });
    expect(ghost).toEqual(forged);
    expect(await harness.queueDepth()).toBe(0);
  });

  it('keeps a signed delivery from a shop of no tenant as unknown_tenant: nothing reaches Klaviyo', async () => {
    const { id, profileId } = seedCustomer('stranger.old@example.com');
    const before = klaviyo.requests.length;
    const body = customerPayload({ id, email: 'stranger.new@example.com', phone: null, updatedAt: later() });
    // Signed with the app's client secret, as Shopify signs for any shop that installs the app.
    const response = await harness.deliver(
      body,
      shopifyHeaders(body, {
        secret,
        shop: 'someone-elses-dev-store.myshopify.com',
        webhookId: 'wh-stranger-1',
      }),
    );
    expect(response).toEqual({
      statusCode: 200,
      body: { status: 'dead-lettered', reason: 'maps to no tenant' },
    });
    expect(await harness.queueDepth()).toBe(0);
    await harness.drain();
    const [parked, ...others] = await harness.takeDeadLetters();
    expect(others).toEqual([]);
    expect(parked?.reason).toBe('unknown_tenant');
    expect(parked?.letter).toMatchObject({
      source: 'shopify',
      sourceEventId: 'wh-stranger-1',
      payload: body,
      context: { shop: 'someone-elses-dev-store.myshopify.com' },
    });
    expect(klaviyo.getProfile(profileId)?.email).toBe('stranger.old@example.com');
    expect(klaviyo.requests.length).toBe(before);
  });

  it('refuses an unsigned body over 256 KiB with 413, without reading the tenant secret', async () => {
    const body = customerPayload({ id: '45' }).padEnd(SHOPIFY_MAX_BODY_BYTES + 1, ' ');
    // Not 0: a delivery from a shop of no tenant (above) checks every configured tenant's secret.
    const readsBefore = harness.peers.secrets.reads(UNREAD_SECRET_ID);
    const response = await harness.deliver(
      body,
      shopifyHeaders(body, { secret, shop: UNREAD_SHOP, signature: null }),
    );
    expect(response).toEqual({
      statusCode: 413,
      body: { error: `body larger than ${SHOPIFY_MAX_BODY_BYTES} bytes` },
    });
    expect(harness.peers.secrets.reads(UNREAD_SECRET_ID)).toBe(readsBefore);
    expect(await harness.takeDeadLetters()).toEqual([]);
  });

  it('keeps a signed body over 256 KiB as its hash, length and first 4 KiB, answering 200', async () => {
    const body = customerPayload({ id: '46' }).padEnd(2 * 1024 * 1024, ' ');
    const response = await harness.deliver(
      body,
      shopifyHeaders(body, { secret, webhookId: 'wh-too-large-1' }),
    );
    expect(response).toEqual({
      statusCode: 200,
      body: { status: 'dead-lettered', reason: `body larger than ${SHOPIFY_MAX_BODY_BYTES} bytes` },
    });
    expect(await harness.queueDepth()).toBe(0);
    const [parked, ...others] = await harness.takeDeadLetters();
    expect(others).toEqual([]);
    expect(parked?.reason).toBe('payload_too_large');
    expect(parked?.letter).toMatchObject({
      tenant: 'demo',
      source: 'shopify',
      sourceEventId: 'wh-too-large-1',
      payload: body.slice(0, 4096),
      context: {
        payloadBytes: body.length,
        payloadSha256: createHash('sha256').update(body).digest('hex'),
      },
    });
  });

  it('answers 200 to other topics and ignores them', async () => {
    const body = '{"id":1,"total_price":"9.99"}';
    const response = await harness.deliver(body, shopifyHeaders(body, { secret, topic: 'orders/create' }));
    expect(response).toEqual({
      statusCode: 200,
      body: { status: 'ignored', reason: 'topic orders/create is not processed' },
    });
    expect(await harness.queueDepth()).toBe(0);
  });

  it('keeps a signed but unusable payload on the dead-letter queue with its reason, answering 200', async () => {
    const body = '{"email":"no-id@example.com"}';
    const response = await harness.deliver(
      body,
      shopifyHeaders(body, { secret, webhookId: 'wh-unusable-1' }),
    );
    expect(response.statusCode).toBe(200);
    expect(response.body.status).toBe('dead-lettered');
    const [parked] = await harness.takeDeadLetters();
    expect(parked?.reason).toBe('invalid_payload');
    expect(parked?.letter).toMatchObject({ tenant: 'demo', sourceEventId: 'wh-unusable-1', payload: body });
  });
});

describe('delivery order and duplicates', () => {
  it('applies a duplicate delivery once', async () => {
    const { id, profileId } = seedCustomer('dup.old@example.com');
    const body = customerPayload({ id, email: 'dup.new@example.com', phone: null, updatedAt: later() });
    const headers = shopifyHeaders(body, { secret, webhookId: `wh-dup-${id}` });
    await harness.deliver(body, headers);
    await harness.deliver(body, headers);
    await harness.drain();
    expect(patchesTo(profileId)).toHaveLength(1);
  });

  it('skips a change older than the last applied one for that customer', async () => {
    const { id, profileId } = seedCustomer('order.old@example.com');
    const older = later();
    const newer = later();
    await deliverUpdate({ id, email: 'order.newest@example.com', updatedAt: newer });
    await harness.drain();
    await deliverUpdate({ id, email: 'order.older@example.com', updatedAt: older });
    await harness.drain();
    expect(klaviyo.getProfile(profileId)?.email).toBe('order.newest@example.com');
    expect(patchesTo(profileId)).toHaveLength(1);
    expect(await harness.takeDeadLetters()).toEqual([]); // skipped, not failed
  });
});

describe('when Klaviyo pushes back', () => {
  it('waits out a 429 for as long as Retry-After says, then applies', async () => {
    const { id, profileId } = seedCustomer('throttle.old@example.com');
    klaviyo.injectFaults({ status: 429, retryAfterSeconds: 1, method: 'PATCH' });
    await deliverUpdate({ id, email: 'throttle.new@example.com' });
    await harness.drain();
    const patches = patchesTo(profileId);
    expect(patches.map((request) => request.status)).toEqual([429, 200]);
    expect(klaviyo.getProfile(profileId)?.email).toBe('throttle.new@example.com');
  });

  it('retries a 5xx and then applies', async () => {
    const { id, profileId } = seedCustomer('outage.old@example.com');
    klaviyo.injectFaults({ status: 503, method: 'GET', times: 2 });
    await deliverUpdate({ id, email: 'outage.new@example.com' });
    await harness.drain();
    expect(klaviyo.getProfile(profileId)?.email).toBe('outage.new@example.com');
  });

  it("merges a duplicate profile holding the new email into the customer's profile, then applies", async () => {
    const duplicate = klaviyo.seedProfile({ email: 'dup.holder@example.com' });
    const { id, profileId } = seedCustomer('wants.dup@example.com');
    await deliverUpdate({ id, email: 'dup.holder@example.com' });
    await harness.drain();
    expect(klaviyo.getProfile(duplicate.id)).toBeUndefined();
    expect(klaviyo.getProfile(profileId)).toMatchObject({ email: 'dup.holder@example.com', external_id: id });
    const merges = klaviyo.requests.filter((request) => request.path === '/api/profile-merge');
    expect(merges).toHaveLength(1);
  });

  it('parks a change whose email another customer keeps, with both profile ids, after its tries', async () => {
    const holder = klaviyo.seedProfile({ email: 'taken@example.com', external_id: 'someone-else' });
    const { id, profileId } = seedCustomer('wants.taken@example.com');
    const output = await capturedOutput(async () => {
      await deliverUpdate({ id, email: 'taken@example.com' });
      await harness.drain();
    });
    expect(output).toMatch(/"ChangeRetried":\s*1/);
    expect(output).toMatch(/"ChangeFailed":\s*1/);
    const [parked] = await harness.takeDeadLetters();
    expect(parked?.reason).toBe('identifier_held_by_other_customer');
    expect(parked?.letter).toMatchObject({
      tenant: 'demo',
      change: { externalId: id, email: 'taken@example.com' },
      context: { profileId, holderId: holder.id },
    });
    expect(klaviyo.requests.some((request) => request.path === '/api/profile-merge')).toBe(false);
  });

  it('leaves a change Klaviyo keeps failing to SQS, whose redrive moves it to the dead-letter queue', async () => {
    const { id, profileId } = seedCustomer('down.old@example.com');
    klaviyo.injectFaults({ status: 500, method: 'GET', times: 100 });
    await deliverUpdate({ id, email: 'down.new@example.com' }, { webhookId: `wh-down-${id}` });
    await harness.drain(30_000);
    klaviyo.clearFaults();
    const letters = await harness.takeDeadLetters();
    expect(letters).toHaveLength(1);
    expect(letters[0]?.letter).toMatchObject({ externalId: id, sourceEventId: `wh-down-${id}` });
    expect(klaviyo.getProfile(profileId)?.email).toBe('down.old@example.com');
  });
});

describe('Klaviyo key rotation', () => {
  it('reads the tenant secret again when Klaviyo refuses the cached key, and applies with the new one', async () => {
    const { id, profileId } = seedCustomer('key.old@example.com');
    await deliverUpdate({ id, email: 'key.warm@example.com' }); // the worker now has the key cached
    await harness.drain();
    klaviyo.setApiKeys(['pk_rotated_key']);
    putTenantSecrets(harness.peers.secrets, DEMO_TENANT.tenant, { klaviyoPrivateKey: 'pk_rotated_key' });
    try {
      await deliverUpdate({ id, email: 'key.new@example.com' });
      await harness.drain();
      expect(klaviyo.getProfile(profileId)?.email).toBe('key.new@example.com');
      // The customer is known from its first change: the second goes straight to its PATCH.
      const refused = klaviyo.requests.filter((request) => request.status === 401);
      expect(refused.map((request) => request.method)).toEqual(['PATCH']);
    } finally {
      klaviyo.setApiKeys([DEMO_TENANT.klaviyoPrivateKey]);
      putTenantSecrets(harness.peers.secrets, DEMO_TENANT.tenant, {
        klaviyoPrivateKey: DEMO_TENANT.klaviyoPrivateKey,
      });
    }
  });
});

describe('the worker near its timeout', () => {
  it('hands changes back to the queue instead of starting them without time to finish', async () => {
    const { id, profileId } = seedCustomer('late.old@example.com');
    await deliverUpdate({ id, email: 'late.new@example.com' });
    const { handler } = await import('../../functions/sync-worker.js');
    const nearlyOut = { ...lambdaContext('sync-worker'), getRemainingTimeInMillis: () => 1_000 };
    const poller = createQueuePoller({
      sqs: harness.peers.sqs,
      queueUrl: harness.peers.queueUrl,
      queueArn: harness.peers.queueArn,
      invoke: async (event) => {
        const response = (await handler(event, nearlyOut)) as SQSBatchResponse;
        expect(response.batchItemFailures).toHaveLength(event.Records.length);
        return response;
      },
      onError: (error) => {
        throw error;
      },
    });
    expect(await poller.pollOnce(0)).toBe(1);
    expect(klaviyo.getProfile(profileId)?.email).toBe('late.old@example.com');
    await harness.drain(); // the next delivery has time, and applies it
    expect(klaviyo.getProfile(profileId)?.email).toBe('late.new@example.com');
  });
});

describe('secret rotation', () => {
  it('accepts a webhook signed with a secret added after the cache was filled', async () => {
    const { id, profileId } = seedCustomer('rotate.old@example.com');
    putTenantSecrets(harness.peers.secrets, DEMO_TENANT.tenant, {
      shopifyWebhookSecrets: ['shpss_rotated_secret', secret],
      erpWebhookSecrets: [DEMO_TENANT.erpWebhookSecret],
    });
    const body = customerPayload({ id, email: 'rotate.new@example.com', phone: null, updatedAt: later() });
    const response = await harness.deliver(body, shopifyHeaders(body, { secret: 'shpss_rotated_secret' }));
    expect(response.statusCode).toBe(200);
    await harness.drain();
    expect(klaviyo.getProfile(profileId)?.email).toBe('rotate.new@example.com');
  });
});
