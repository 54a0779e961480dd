import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemorySeenBodies } from '../../lib/adapters/memory-seen-bodies.js';
import { erpWebhookSource } from '../../lib/erp/receive-webhook.js';
import { signErpRequest } from '../../lib/erp/sign.js';
import { PermanentError, TransientError } from '../../lib/errors.js';
import type { WebhookRequest } from '../../lib/http.js';
import { DEAD_LETTER_MAX_BYTES, letterWithPayload, PAYLOAD_EXCERPT_BYTES } from '../../lib/intake/letters.js';
import { NOT_AUTHENTICATED, receiveWebhook } from '../../lib/intake/receive.js';
import { REPLAY_REASON } from '../../lib/intake/replay.js';
import type { WebhookSource } from '../../lib/intake/source.js';
import type { WebhookSecret } from '../../lib/ports.js';
import { shopifyWebhookSource } from '../../lib/shopify/receive-webhook.js';
import { signShopifyBody } from '../../lib/shopify/signature.js';
import { customerPayload } from '../../local/shopify-deliveries.js';
import { fakeIntake, NOW, tenantSecret } from '../support/intake.js';

/**
 * The steps every webhook source shares (lib/intake/receive.ts), run with each real source and
 * in-memory ports: refusals, secrets and their rotation, bodies too large, what is kept.
 */
interface SourceCase {
  source: WebhookSource;
  oldSecret: string;
  newSecret: string;
  secretWith(secrets: string[]): WebhookSecret;
  /** A request for `tenant` carrying `body`, signed with `secret` (unsigned when null). */
  request(body: string, tenant: string, secret: string | null): WebhookRequest;
  /** A name the request can give that maps to no tenant at all. */
  unknownTenant: string;
  validBody: string;
  acceptedStatus: number;
}

const shopify: SourceCase = {
  source: shopifyWebhookSource({
    shopTenants: {
      'acme.myshopify.com': 'acme',
      'ghost.myshopify.com': 'ghost',
      'bare.myshopify.com': 'bare',
    },
    defaultPhoneRegion: 'US',
  }),
  oldSecret: 'shpss_unit_old',
  newSecret: 'shpss_unit_new',
  secretWith: (shopifyWebhookSecrets) => tenantSecret({ shopifyWebhookSecrets }),
  request: (body, tenant, secret) => ({
    headers: {
      'x-shopify-topic': 'customers/update',
      'x-shopify-shop-domain': `${tenant}.myshopify.com`,
      'x-shopify-webhook-id': 'wh-unit-1',
      ...(secret !== null && { 'x-shopify-hmac-sha256': signShopifyBody(body, secret) }),
    },
    body: Buffer.from(body),
  }),
  unknownTenant: 'stranger',
  validBody: customerPayload({ id: '1001', email: 'a@example.com', phone: null }),
  acceptedStatus: 200,
};

const erpSecret = (key: string) => `whsec_${Buffer.from(key).toString('base64')}`;
const erp: SourceCase = {
  source: erpWebhookSource({ defaultPhoneRegion: 'US' }),
  oldSecret: erpSecret('unit-erp-key-old'),
  newSecret: erpSecret('unit-erp-key-new'),
  secretWith: (erpWebhookSecrets) => tenantSecret({ erpWebhookSecrets }),
  request: (body, tenant, secret) => ({
    headers: secret === null ? {} : signErpRequest(body, secret, { id: 'msg_unit_1', now: NOW }),
    body: Buffer.from(body),
    pathParameters: { tenant },
  }),
  unknownTenant: 'no such tenant',
  validBody: JSON.stringify({
    externalId: 'C-1',
    email: 'a@example.com',
    occurredAt: '2026-05-01T11:00:00Z',
  }),
  acceptedStatus: 202,
};

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe.each([
  ['Shopify', shopify],
  ['ERP', erp],
])('%s intake', (_, sourceCase) => {
  const { source, request, validBody, oldSecret, newSecret } = sourceCase;
  /** acme signs with the old secret; bare has a secret without this source's; ghost has none. */
  const setUp = () =>
    fakeIntake({ acme: sourceCase.secretWith([oldSecret]), bare: sourceCase.secretWith([]) });
  const receive = (deps: ReturnType<typeof setUp>['deps'], webhookRequest: WebhookRequest) =>
    receiveWebhook(source, webhookRequest, deps);

  it('queues a signed change and answers as the source does', async () => {
    const { deps, queued } = setUp();
    const response = await receive(deps, request(validBody, 'acme', oldSecret));
    expect(response.statusCode).toBe(sourceCase.acceptedStatus);
    expect(queued).toEqual([expect.objectContaining({ tenant: 'acme', source: source.name })]);
  });

  it('answers an unknown tenant, a tenant without a secret and a wrong signature alike', async () => {
    const { deps, queued, log } = setUp();
    const answers = {
      wrongSignature: await receive(deps, request(validBody, 'acme', newSecret)),
      // Signed with a secret no tenant holds (one that does is the Shopify tests' below).
      unknownTenant: await receive(deps, request(validBody, sourceCase.unknownTenant, newSecret)),
      tenantSecretMissing: await receive(deps, request(validBody, 'ghost', oldSecret)),
      noSecretOfThisSource: await receive(deps, request(validBody, 'bare', oldSecret)),
    };
    for (const answer of Object.values(answers)) expect(answer).toEqual(NOT_AUTHENTICATED);
    expect(NOT_AUTHENTICATED).toEqual({ statusCode: 401, body: { error: 'invalid signature' } });
    expect(queued).toEqual([]);
    // The operator can still tell them apart.
    const whys = log.warn.mock.calls.map(([, facts]) => (facts as { why?: string }).why);
    expect(whys).toEqual([
      'invalid_signature',
      'unknown_tenant',
      'tenant_secret_missing',
      'no_webhook_secret',
    ]);
  });

  it('refuses an unsigned request with 401 before reading any secret', async () => {
    const { deps, get } = setUp();
    const response = await receive(deps, request(validBody, 'acme', null));
    expect(response.statusCode).toBe(401);
    expect(response).not.toEqual(NOT_AUTHENTICATED); // says what is missing: nothing about the tenant
    expect(get).not.toHaveBeenCalled();
  });

  it('refuses an unsigned body over the limit with 413 before reading any secret', async () => {
    const { deps, get, parked } = setUp();
    const big = validBody.padEnd(source.maxBodyBytes + 1, ' ');
    expect(await receive(deps, request(big, 'acme', null))).toEqual({
      statusCode: 413,
      body: { error: `body larger than ${source.maxBodyBytes} bytes` },
    });
    expect(get).not.toHaveBeenCalled();
    expect(parked).toEqual([]);
  });

  it('keeps a signed body over the limit unread, as its hash, length and first bytes, and answers 200', async () => {
    const { deps, queued, parked } = setUp();
    const big = validBody.padEnd(source.maxBodyBytes + 1, ' ');
    const response = await receive(deps, request(big, 'acme', oldSecret));
    expect(response).toEqual({
      statusCode: 200,
      body: { status: 'dead-lettered', reason: `body larger than ${source.maxBodyBytes} bytes` },
    });
    expect(queued).toEqual([]);
    expect(parked).toHaveLength(1);
    const [letter] = parked;
    expect(letter).toMatchObject({
      reason: 'payload_too_large',
      tenant: 'acme',
      source: source.name,
      context: { payloadBytes: big.length, payloadSha256: sha256(Buffer.from(big)) },
      parkedAt: NOW.toISOString(),
    });
    expect(letter?.payload).toBe(big.slice(0, PAYLOAD_EXCERPT_BYTES));
  });

  it('takes a body of exactly the limit', async () => {
    const { deps } = setUp();
    const exact = validBody.padEnd(source.maxBodyBytes, ' ');
    expect((await receive(deps, request(exact, 'acme', oldSecret))).statusCode).toBe(
      sourceCase.acceptedStatus,
    );
  });

  it('accepts the new secret of a rotation after one fresh read, and the old one from the cache', async () => {
    const { deps, get, queued } = setUp();
    get.mockImplementation(async (_tenant, options) =>
      sourceCase.secretWith(options?.fresh ? [newSecret, oldSecret] : [oldSecret]),
    );
    expect((await receive(deps, request(validBody, 'acme', newSecret))).statusCode).toBe(
      sourceCase.acceptedStatus,
    );
    expect(get.mock.calls).toEqual([['acme'], ['acme', { fresh: true }]]);
    get.mockClear();
    expect((await receive(deps, request(validBody, 'acme', oldSecret))).statusCode).toBe(
      sourceCase.acceptedStatus,
    );
    expect(get.mock.calls).toEqual([['acme']]);
    expect(queued).toHaveLength(2);
  });

  it('answers 503 when Secrets Manager fails for now, so the sender retries', async () => {
    const { deps, queued } = setUp();
    deps.secrets.get = async () => Promise.reject(new TransientError('tenant_secret_unavailable', 'down'));
    expect(await receive(deps, request(validBody, 'acme', oldSecret))).toEqual({
      statusCode: 503,
      body: { error: 'temporarily unable to verify' },
    });
    expect(queued).toEqual([]);
  });

  it('answers 500 when the tenant’s secret is malformed: ours to fix, and the retries will then pass', async () => {
    const { deps } = setUp();
    deps.secrets.get = async () => Promise.reject(new PermanentError('tenant_secret_invalid', 'malformed'));
    expect((await receive(deps, request(validBody, 'acme', oldSecret))).statusCode).toBe(500);
  });

  it('answers 503 when the queue fails, rather than losing the change', async () => {
    const { deps } = setUp();
    deps.queue.enqueue = async () => Promise.reject(new TransientError('queue_unavailable', 'down'));
    expect(await receive(deps, request(validBody, 'acme', oldSecret))).toEqual({
      statusCode: 503,
      body: { error: 'temporarily unable to queue' },
    });
  });
});

describe('Shopify intake', () => {
  const setUp = () => fakeIntake({ acme: shopify.secretWith([shopify.oldSecret]) });

  it('keeps a signed but unusable payload whole, with the topic and shop, and answers 200', async () => {
    const { deps, parked, queued } = setUp();
    const body = '{"email":"no-id@example.com"}';
    const response = await receiveWebhook(
      shopify.source,
      shopify.request(body, 'acme', shopify.oldSecret),
      deps,
    );
    expect(response).toEqual({
      statusCode: 200,
      body: { status: 'dead-lettered', reason: expect.any(String) },
    });
    expect(queued).toEqual([]);
    expect(parked).toEqual([
      expect.objectContaining({
        reason: 'invalid_payload',
        sourceEventId: 'wh-unit-1',
        payload: body,
        context: { topic: 'customers/update', shop: 'acme.myshopify.com' },
      }),
    ]);
  });

  const withHeaders = (request: WebhookRequest, headers: Record<string, string>) => ({
    ...request,
    headers: { ...request.headers, ...headers },
  });

  it('orders by the signed updated_at, whatever X-Shopify-Triggered-At says', async () => {
    const { deps, queued } = setUp();
    const body = customerPayload({ id: '1001', updatedAt: '2026-05-01T07:59:00-04:00' });
    const request = shopify.request(body, 'acme', shopify.oldSecret);
    await receiveWebhook(
      shopify.source,
      withHeaders(request, { 'x-shopify-triggered-at': '2100-01-01T00:00:00Z' }),
      deps,
    );
    expect(queued).toEqual([expect.objectContaining({ occurredAt: '2026-05-01T11:59:00.000Z' })]);
    expect(queued[0]).not.toHaveProperty('occurredAtUnsigned');
  });

  it('without updated_at, takes X-Shopify-Triggered-At as unsigned, and not beyond 5 minutes ahead', async () => {
    const { deps, queued } = setUp();
    const body = JSON.stringify({ id: 1001, email: 'a@example.com' });
    const request = shopify.request(body, 'acme', shopify.oldSecret);
    const forged = withHeaders(request, { 'x-shopify-triggered-at': '2100-01-01T00:00:00Z' });
    await receiveWebhook(shopify.source, forged, deps);
    const honest = withHeaders(request, { 'x-shopify-triggered-at': '2026-05-01T11:58:00Z' });
    await receiveWebhook(shopify.source, honest, deps);
    expect(queued).toEqual([
      expect.objectContaining({ occurredAt: NOW.toISOString(), occurredAtUnsigned: true }),
      expect.objectContaining({ occurredAt: '2026-05-01T11:58:00.000Z', occurredAtUnsigned: true }),
    ]);
  });

  describe('replays: a captured signed body sent again with fresh ids', () => {
    const setUpSeen = () => {
      const seenBodies = createMemorySeenBodies(24 * 3600);
      const claims: string[] = [];
      const counted = {
        claim: (key: string, deliveryId: string, now: Date) => {
          claims.push(deliveryId);
          return seenBodies.claim(key, deliveryId, now);
        },
      };
      return {
        ...fakeIntake({ acme: shopify.secretWith([shopify.oldSecret]) }, { seenBodies: counted }),
        claims,
      };
    };
    /** Cut to the identifiers (include_fields): no updated_at, so ordered by an unsigned header. */
    const unsignedOrder = withHeaders(
      shopify.request(
        JSON.stringify({ id: 1001, email: 'a@example.com', phone: null }),
        'acme',
        shopify.oldSecret,
      ),
      { 'x-shopify-triggered-at': '2026-05-01T11:58:00Z' },
    );
    const fresh = {
      'x-shopify-webhook-id': 'wh-fresh',
      'x-shopify-event-id': 'evt-fresh',
      'x-shopify-triggered-at': '2100-01-01T00:00:00Z',
    };

    it('of a change ordered by an unsigned time are answered 200 and not queued again', async () => {
      const { deps, queued, log } = setUpSeen();
      expect(await receiveWebhook(shopify.source, unsignedOrder, deps)).toMatchObject({ statusCode: 200 });
      const replay = withHeaders(unsignedOrder, fresh);
      expect(await receiveWebhook(shopify.source, replay, deps)).toEqual({
        statusCode: 200,
        body: { status: 'ignored', reason: REPLAY_REASON },
      });
      expect(queued).toHaveLength(1);
      expect(log.warn).toHaveBeenCalledWith(
        'Webhook ignored: a replay',
        expect.objectContaining({ deliveryId: 'wh-fresh' }),
      );
    });

    it('of a change ordered by its signed updated_at are queued without a claim: the worker finds them stale or unchanged', async () => {
      const { deps, queued, claims } = setUpSeen();
      const original = shopify.request(shopify.validBody, 'acme', shopify.oldSecret);
      await receiveWebhook(shopify.source, original, deps);
      const replay = withHeaders(original, fresh);
      expect(await receiveWebhook(shopify.source, replay, deps)).toMatchObject({
        body: { status: 'queued' },
      });
      // The replay carries the signed time of the original, whatever its headers say.
      expect(queued).toEqual([
        expect.objectContaining({ sourceEventId: 'wh-unit-1', occurredAt: '2026-05-01T16:00:00.000Z' }),
        expect.objectContaining({ sourceEventId: 'wh-fresh', occurredAt: '2026-05-01T16:00:00.000Z' }),
      ]);
      expect(queued[1]).not.toHaveProperty('occurredAtUnsigned');
      expect(claims).toEqual([]);
    });

    it('while Shopify’s retry of a delivery (the same webhook id) is taken again: nothing is lost', async () => {
      const { deps, queued, claims } = setUpSeen();
      const failing = {
        ...deps,
        queue: { enqueue: async () => Promise.reject(new TransientError('queue_unavailable', 'down')) },
      };
      expect((await receiveWebhook(shopify.source, unsignedOrder, failing)).statusCode).toBe(503);
      expect(await receiveWebhook(shopify.source, unsignedOrder, deps)).toMatchObject({
        statusCode: 200,
        body: { status: 'queued' },
      });
      expect(queued).toHaveLength(1);
      expect(claims).toEqual(['wh-unit-1', 'wh-unit-1']);
    });

    it('as is a different change of the same customer (other bytes)', async () => {
      const { deps, queued } = setUpSeen();
      await receiveWebhook(shopify.source, unsignedOrder, deps);
      const next = JSON.stringify({ id: 1001, email: 'b@example.com', phone: null });
      const other = withHeaders(shopify.request(next, 'acme', shopify.oldSecret), {
        'x-shopify-webhook-id': 'wh-2',
        'x-shopify-triggered-at': '2026-05-01T11:59:00Z',
      });
      expect(await receiveWebhook(shopify.source, other, deps)).toMatchObject({ body: { status: 'queued' } });
      expect(queued).toHaveLength(2);
    });

    it('answers 503 when the seen bodies cannot be read, so Shopify retries', async () => {
      const { deps, queued } = setUpSeen();
      const down = {
        ...deps,
        seenBodies: { claim: async () => Promise.reject(new TransientError('state_unavailable', 'down')) },
      };
      expect((await receiveWebhook(shopify.source, unsignedOrder, down)).statusCode).toBe(503);
      expect(queued).toEqual([]);
    });
  });

  /** The same delivery (signed with the app's secret, as Shopify signs for every shop) from `shop`. */
  const fromShop = (shop: string, secret = shopify.oldSecret) => {
    const signed = shopify.request(shopify.validBody, 'acme', secret);
    return { ...signed, headers: { ...signed.headers, 'x-shopify-shop-domain': shop } };
  };

  it.each([
    'stranger.myshopify.com',
    'https://acme.myshopify.com',
    'acme.myshopify.com.',
    'shop.acme.example',
  ])(
    'keeps a signed delivery from a shop of no tenant (%s) as unknown_tenant, applies nothing, answers 200',
    async (shop) => {
      const { deps, parked, queued } = setUp();
      const response = await receiveWebhook(shopify.source, fromShop(shop), deps);
      expect(response).toEqual({
        statusCode: 200,
        body: { status: 'dead-lettered', reason: 'maps to no tenant' },
      });
      expect(queued).toEqual([]);
      expect(parked).toEqual([
        expect.objectContaining({
          reason: 'unknown_tenant',
          tenant: undefined,
          source: 'shopify',
          sourceEventId: 'wh-unit-1',
          payload: shopify.validBody,
          context: { topic: 'customers/update', shop },
        }),
      ]);
    },
  );

  it('refuses a delivery from a shop of no tenant signed with no tenant’s secret, keeping nothing', async () => {
    const { deps, parked, queued } = setUp();
    const response = await receiveWebhook(shopify.source, fromShop('stranger.myshopify.com', 'forged'), deps);
    expect(response).toEqual(NOT_AUTHENTICATED);
    expect([...parked, ...queued]).toEqual([]);
  });

  it('answers 503 for a shop of no tenant when no secret can be read for now, keeping nothing', async () => {
    const { deps, parked } = setUp();
    deps.secrets.get = async () => Promise.reject(new TransientError('tenant_secret_unavailable', 'down'));
    const response = await receiveWebhook(shopify.source, fromShop('stranger.myshopify.com'), deps);
    expect(response.statusCode).toBe(503);
    expect(parked).toEqual([]);
  });

  it('answers 200 to another topic and queues nothing', async () => {
    const { deps, queued } = setUp();
    const signed = shopify.request('{"id":1}', 'acme', shopify.oldSecret);
    const response = await receiveWebhook(
      shopify.source,
      { ...signed, headers: { ...signed.headers, 'x-shopify-topic': 'orders/create' } },
      deps,
    );
    expect(response).toEqual({
      statusCode: 200,
      body: { status: 'ignored', reason: 'topic orders/create is not processed' },
    });
    expect(queued).toEqual([]);
  });
});

describe('letterWithPayload', () => {
  const letter = {
    reason: 'invalid_payload',
    detail: 'unusable',
    tenant: 'acme',
    source: 'shopify' as const,
    sourceEventId: 'wh-1',
    parkedAt: NOW.toISOString(),
  };

  it('keeps a payload whole when the letter fits one message', () => {
    expect(letterWithPayload(letter, 'x'.repeat(200_000)).payload).toHaveLength(200_000);
  });

  it('cuts a payload whose escaping makes the letter too large, keeping its length and hash', () => {
    // Under the limit as bytes, over it once each quote is escaped in the letter's JSON.
    const quotes = '"'.repeat(200_000);
    const kept = letterWithPayload(letter, quotes);
    expect(Buffer.byteLength(JSON.stringify(kept))).toBeLessThanOrEqual(DEAD_LETTER_MAX_BYTES);
    expect(kept.payload).toBe(quotes.slice(0, PAYLOAD_EXCERPT_BYTES));
    expect(kept.context).toEqual({
      payloadBytes: 200_000,
      payloadSha256: sha256(Buffer.from(quotes)),
      payloadKeptBytes: PAYLOAD_EXCERPT_BYTES,
    });
  });
});
