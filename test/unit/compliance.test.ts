import { describe, expect, it, vi } from 'vitest';
import { createMemorySyncState } from '../../lib/adapters/memory-sync-state.js';
import { letterOfQueued, readQueuedMessage } from '../../lib/dead-letter.js';
import {
  type CustomerDataRequest,
  type CustomerRedact,
  messageGroupOf,
  type ShopRedact,
  serializeQueuedChange,
} from '../../lib/identity-change.js';
import { receiveWebhook } from '../../lib/intake/receive.js';
import { defaultPolicies } from '../../lib/policies.js';
import type { DeadLetter, ParkedLetters } from '../../lib/ports.js';
import {
  erasureSubject,
  isLetterOfCustomer,
  isLetterOfTenant,
  klaviyoDeletionOf,
} from '../../lib/privacy/erasure.js';
import { parseShopifyComplianceRequest } from '../../lib/shopify/customer-payload.js';
import { shopifyWebhookSource } from '../../lib/shopify/receive-webhook.js';
import { processQueuedChange, type WorkerDependencies } from '../../lib/sync/handle-message.js';
import { shopifyHeaders } from '../../local/shopify-deliveries.js';
import {
  aChange,
  aCustomerMerge,
  aDeadLetterRecorder,
  aRecordingTelemetry,
  TEST_IDENTIFIER_KEY,
  testIdentifierKeyFor,
} from '../support/factories.js';
import { fakeIntake, tenantSecret } from '../support/intake.js';
import { createMemoryKlaviyo } from '../support/memory-klaviyo.js';

/**
 * Shopify's mandatory compliance webhooks (customers/redact, customers/data_request, shop/redact)
 * and the erasure and export they queue: parsing, intake, the pure decisions, and the worker's
 * handling with state, letters and Klaviyo in memory.
 */
const BIG_ID = '706405506930370084';
const SHOP = 'demo-shop.myshopify.com';

/** Payloads shaped after Shopify's compliance webhook samples (shopify.dev, "Privacy law compliance"). */
const redactPayload = (id = BIG_ID, shop = SHOP) =>
  `{"shop_id":954889,"shop_domain":"${shop}","customer":{"id":${id},"email":"john@example.com","phone":"555-625-1199"},"orders_to_redact":[299938,280263]}`;
const dataRequestPayload = (id = BIG_ID) =>
  `{"shop_id":954889,"shop_domain":"${SHOP}","orders_requested":[299938],"customer":{"id":${id},"email":"john@example.com","phone":"555-625-1199"},"data_request":{"id":9999}}`;
const shopRedactPayload = (shop = SHOP) => `{"shop_id":954889,"shop_domain":"${shop}"}`;

describe('parseShopifyComplianceRequest', () => {
  it('takes the customer id as its exact digits, and the request id; never the email or phone', () => {
    expect(parseShopifyComplianceRequest(redactPayload(), 'customers/redact')).toEqual({
      ok: true,
      request: { kind: 'customerRedact', shopDomain: SHOP, customerId: BIG_ID },
    });
    expect(parseShopifyComplianceRequest(dataRequestPayload(), 'customers/data_request')).toEqual({
      ok: true,
      request: { kind: 'customerDataRequest', shopDomain: SHOP, customerId: BIG_ID, requestId: '9999' },
    });
    expect(parseShopifyComplianceRequest(shopRedactPayload(), 'shop/redact')).toEqual({
      ok: true,
      request: { kind: 'shopRedact', shopDomain: SHOP },
    });
  });

  it.each([
    ['customers/redact', '{"shop_domain":"x.myshopify.com"}', /customer/],
    ['customers/data_request', redactPayload(), /data_request/],
    ['shop/redact', '{"shop_id":1}', /shop_domain/],
    ['customers/redact', 'not json', /not JSON/],
  ] as const)('refuses a %s body that is not one, saying why', (topic, body, why) => {
    const parsed = parseShopifyComplianceRequest(body, topic);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toMatch(why);
  });
});

describe('the compliance webhooks', () => {
  const source = shopifyWebhookSource({ shopTenants: { [SHOP]: 'acme' }, defaultPhoneRegion: 'US' });
  const secret = 'shpss_compliance';
  const deliver = (body: string, topic: string, options: { signature?: string; shop?: string } = {}) => {
    const fake = fakeIntake({ acme: tenantSecret({ shopifyWebhookSecrets: [secret] }) });
    const headers = shopifyHeaders(body, {
      secret,
      topic,
      webhookId: `wh-${topic}`,
      shop: options.shop ?? SHOP,
      ...(options.signature !== undefined && { signature: options.signature }),
    });
    return { ...fake, answer: receiveWebhook(source, { headers, body: Buffer.from(body) }, fake.deps) };
  };

  it.each([
    ['customers/redact', redactPayload()],
    ['customers/data_request', dataRequestPayload()],
    ['shop/redact', shopRedactPayload()],
  ])('answers 401 to a %s with a bad HMAC, and queues nothing', async (topic, body) => {
    const { answer, queued, parked } = deliver(body, topic, { signature: 'bm90IHRoZSBzaWduYXR1cmU=' });
    expect((await answer).statusCode).toBe(401);
    expect(queued).toEqual([]);
    expect(parked).toEqual([]);
  });

  it('queues a customers/redact with the customer id, who asked and when: no email, no phone', async () => {
    const { answer, queued } = deliver(redactPayload(), 'customers/redact');
    expect(await answer).toEqual({ statusCode: 200, body: { status: 'queued' } });
    expect(queued).toEqual([
      {
        kind: 'customerRedact',
        tenant: 'acme',
        source: 'shopify',
        externalId: BIG_ID,
        requestedAt: '2026-05-01T12:00:00.000Z',
        sourceEventId: 'wh-customers/redact',
        receivedAt: '2026-05-01T12:00:00.000Z',
      },
    ]);
    expect(JSON.stringify(queued)).not.toMatch(/john|555/);
  });

  it("queues a customers/data_request with the request's id, in the customer's message group", async () => {
    const { answer, queued } = deliver(dataRequestPayload(), 'customers/data_request');
    expect((await answer).statusCode).toBe(200);
    expect(queued).toMatchObject([{ kind: 'customerDataRequest', externalId: BIG_ID, requestId: '9999' }]);
    const [request] = queued as unknown as CustomerDataRequest[];
    expect(messageGroupOf(request as CustomerDataRequest)).toBe(
      messageGroupOf(aChange({ externalId: BIG_ID })),
    );
  });

  it('queues a shop/redact in a message group of its own', async () => {
    const { queued, answer } = deliver(shopRedactPayload(), 'shop/redact');
    expect((await answer).statusCode).toBe(200);
    const [request] = queued as unknown as ShopRedact[];
    expect(request).toMatchObject({ kind: 'shopRedact', tenant: 'acme', shopDomain: SHOP });
    expect(messageGroupOf(request as ShopRedact)).toBe('acme:shop-redact:wh-shop/redact');
  });

  it("keeps a body whose signed shop_domain is not the header's shop, and queues nothing", async () => {
    const { answer, queued, parked } = deliver(
      redactPayload(BIG_ID, 'other.myshopify.com'),
      'customers/redact',
    );
    expect(await answer).toMatchObject({ statusCode: 200, body: { status: 'dead-lettered' } });
    expect(queued).toEqual([]);
    expect(parked).toMatchObject([{ reason: 'invalid_payload' }]);
  });
});

describe('the queued compliance kinds', () => {
  const redact: CustomerRedact = {
    kind: 'customerRedact',
    tenant: 'acme',
    source: 'erp',
    externalId: 'C-1',
    requestedAt: '2026-05-01T12:00:00.000Z',
    sourceEventId: 'wh-1',
    receivedAt: '2026-05-01T12:00:00.000Z',
  };

  it('read back as queued, and parked and read in their own letter field', () => {
    expect(readQueuedMessage(serializeQueuedChange(redact))).toEqual({ kind: 'queued', queued: redact });
    const letter = letterOfQueued(redact, {
      reason: 'retries_exhausted',
      detail: 'x',
      attempts: 3,
      parkedAt: '2026-05-01T12:00:00.000Z',
    });
    expect(letter).toMatchObject({ redact, externalId: 'C-1' });
    expect(readQueuedMessage(JSON.stringify(letter))).toMatchObject({ kind: 'letter', letter: { redact } });
  });
});

describe('the erasure decisions', () => {
  const letter = (fields: Partial<DeadLetter>): DeadLetter => ({
    reason: 'invalid_payload',
    detail: '',
    source: 'shopify',
    sourceEventId: 'e',
    parkedAt: '2026-05-01T12:00:00.000Z',
    tenant: 'acme',
    ...fields,
  });

  it("tells a customer's letters: named, in a merge either way, or as a whole token of a raw payload", () => {
    const of1001 = isLetterOfCustomer('acme', '1001');
    expect(of1001(letter({ externalId: '1001' }))).toBe(true);
    expect(of1001(letter({ externalId: '1001', tenant: 'other' }))).toBe(false);
    expect(
      of1001(letter({ merge: aCustomerMerge({ keptExternalId: '1001', deletedExternalId: '7' }) })),
    ).toBe(true);
    expect(of1001(letter({ payload: '{"customer":{"id":1001}}' }))).toBe(true);
    expect(of1001(letter({ payload: '{"customer":{"id":91001}}' }))).toBe(false);
    expect(of1001(letter({ externalId: '1002' }))).toBe(false);
    expect(isLetterOfTenant('acme')(letter({}))).toBe(true);
    expect(isLetterOfTenant('acme')(letter({ tenant: undefined }))).toBe(false);
  });

  it('asks Klaviyo to delete the profile only when the policy says so, not in a dry run, for a known profile', () => {
    expect(klaviyoDeletionOf({ dryRun: false }, 'P1')).toHaveProperty('keep');
    expect(klaviyoDeletionOf({ dryRun: false, onCustomerRedact: 'delete-klaviyo-profile' }, 'P1')).toEqual({
      deleteProfile: 'P1',
    });
    expect(
      klaviyoDeletionOf({ dryRun: true, onCustomerRedact: 'delete-klaviyo-profile' }, 'P1'),
    ).toHaveProperty('keep');
    expect(
      klaviyoDeletionOf({ dryRun: false, onCustomerRedact: 'delete-klaviyo-profile' }, undefined),
    ).toHaveProperty('keep');
  });

  it('names an erased customer by a keyed digest: not the id, and another per tenant', () => {
    const subject = erasureSubject(TEST_IDENTIFIER_KEY, 'acme', '1001');
    expect(subject).not.toContain('1001');
    expect(subject).not.toBe(erasureSubject(TEST_IDENTIFIER_KEY, 'other', '1001'));
  });
});

describe('the worker and compliance requests', () => {
  function worker(policies: { onCustomerRedact?: 'keep-klaviyo' | 'delete-klaviyo-profile' } = {}) {
    const klaviyo = {
      ...createMemoryKlaviyo(),
      requestProfileDeletion: vi.fn(async (_id: string) => undefined),
    };
    const store = createMemorySyncState();
    const parkedLetters: DeadLetter[] = [];
    const letters: ParkedLetters = {
      read: async (picks) => ({ letters: parkedLetters.filter(picks) }),
      drop: async (picks) => {
        const dropped = parkedLetters.filter(picks);
        for (const gone of dropped) parkedLetters.splice(parkedLetters.indexOf(gone), 1);
        return { dropped: dropped.length, complete: true };
      },
    };
    const exported: { key: string; json: string }[] = [];
    const { telemetry, logs, counts } = aRecordingTelemetry();
    const deadLetters = aDeadLetterRecorder();
    const deps: WorkerDependencies = {
      state: store,
      audit: store,
      policiesFor: () => ({ ...defaultPolicies, dryRun: false, ...policies }),
      identifierKeyFor: testIdentifierKeyFor,
      klaviyoFor: async () => klaviyo,
      deadLetters,
      telemetry,
      clock: () => new Date('2026-05-01T12:00:09.000Z'),
      compliance: {
        records: store,
        letters,
        exports: {
          put: async (key, json) => {
            exported.push({ key, json });
            return { location: `memory://${key}` };
          },
        },
      },
    };
    const process = (message: object) => processQueuedChange(serializeQueuedChange(message as never), deps);
    return { klaviyo, store, letters, parkedLetters, exported, logs, counts, deadLetters, deps, process };
  }
  const asked = {
    tenant: 'acme',
    source: 'shopify',
    requestedAt: '2026-05-01T12:00:05.000Z',
    sourceEventId: 'wh-redact',
    receivedAt: '2026-05-01T12:00:05.000Z',
  } as const;
  const redactOf = (externalId: string): CustomerRedact => ({ kind: 'customerRedact', ...asked, externalId });

  it("erases the customer's state, audit and letters, keeps others', and then applies none of its changes", async () => {
    const world = worker();
    world.klaviyo.seed({ external_id: '1001', email: 'old.1001@example.com' });
    world.klaviyo.seed({ external_id: '1002', email: 'old.1002@example.com' });
    await world.process(aChange({ externalId: '1001', email: 'ada.1001@example.com' }));
    await world.process(
      aChange({ externalId: '1002', email: 'bob.1002@example.com', phoneNumber: '+14155550102' }),
    );
    world.parkedLetters.push(
      letterOfQueued(aChange({ externalId: '1001' }), {
        reason: 'x',
        detail: '',
        attempts: 1,
        parkedAt: asked.requestedAt,
      }),
      letterOfQueued(aChange({ externalId: '1002' }), {
        reason: 'x',
        detail: '',
        attempts: 1,
        parkedAt: asked.requestedAt,
      }),
    );

    expect(await world.process(redactOf('1001'))).toMatchObject({ outcome: 'erased' });

    expect(await world.store.readCustomer('acme', '1001')).toEqual({ state: undefined, audit: [] });
    expect((await world.store.readCustomer('acme', '1002')).state).toBeDefined();
    expect(world.parkedLetters.map((letter) => letter.externalId)).toEqual(['1002']);
    expect(world.store.erasures).toEqual([
      {
        tenant: 'acme',
        scope: 'customer',
        subject: erasureSubject(TEST_IDENTIFIER_KEY, 'acme', '1001'),
        keyId: TEST_IDENTIFIER_KEY.id,
        source: 'shopify',
        sourceEventId: 'wh-redact',
        requestedAt: asked.requestedAt,
        erasedAt: '2026-05-01T12:00:09.000Z',
        counts: { stateItems: 1, auditItems: 1, letters: 1, klaviyoDeletions: 0 },
      },
    ]);
    expect(JSON.stringify(world.store.erasures)).not.toContain('1001');
    expect(world.counts.get('CustomerErased')).toBe(1);
    expect(world.klaviyo.requestProfileDeletion).not.toHaveBeenCalled();

    // A change of theirs queued after the redact (a retry, a late delivery): nothing applied, nothing recorded.
    const late = await world.process(
      aChange({ externalId: '1001', email: 'late.1001@example.com', sourceEventId: 'late' }),
    );
    expect(late).toMatchObject({ outcome: 'skipped', plan: { reason: 'customer_erased' } });
    expect(await world.store.readCustomer('acme', '1001')).toEqual({ state: undefined, audit: [] });
    expect(await world.klaviyo.findProfiles('email', 'late.1001@example.com')).toEqual([]);
    const skipped = world.logs.find((line) => line.attributes.reason?.toString().includes('erased'));
    expect(skipped?.attributes).not.toHaveProperty('externalId');
    // A merge naming them (kept or deleted) applies nothing either.
    expect(
      await world.process(aCustomerMerge({ keptExternalId: '1001', deletedExternalId: '1002' })),
    ).toMatchObject({ outcome: 'skipped', plan: { reason: 'customer_erased' } });
  });

  it('reads the erasure record only for a customer with no state item, and the state once', async () => {
    const world = worker();
    const reads = { getState: 0, isErased: 0 };
    const counted = {
      ...world.store,
      getState: (tenant: string, externalId: string) => {
        reads.getState++;
        return world.store.getState(tenant, externalId);
      },
      isErased: (tenant: string, subject: string) => {
        reads.isErased++;
        return world.store.isErased(tenant, subject);
      },
    };
    const deps = {
      ...world.deps,
      state: counted,
      compliance: { letters: world.letters, records: counted },
    };
    const process = (message: object) => processQueuedChange(serializeQueuedChange(message as never), deps);
    world.klaviyo.seed({ external_id: '1001', email: 'old@example.com' });

    // A new customer: no state item, so it may have been erased.
    await process(aChange({ externalId: '1001', email: 'ada@example.com', sourceEventId: 'first' }));
    expect(reads).toEqual({ getState: 1, isErased: 1 });
    // A known customer: its state item proves it was not erased.
    reads.getState = reads.isErased = 0;
    const second = aChange({
      externalId: '1001',
      email: 'ada.b@example.com',
      sourceEventId: 'second',
      occurredAt: '2026-05-01T12:30:00.000Z',
    });
    expect(await process(second)).toMatchObject({ outcome: 'applied' });
    expect(reads).toEqual({ getState: 1, isErased: 0 });
    // A merge: each customer's state read once; the record only of the one never seen.
    reads.getState = reads.isErased = 0;
    await process(aCustomerMerge({ keptExternalId: '1001', deletedExternalId: '1003' }));
    expect(reads.isErased).toBe(1);

    // Erased: the state item goes with it, so the customer's next change reads the record again.
    await world.process(redactOf('1001'));
    reads.getState = reads.isErased = 0;
    const late = aChange({ externalId: '1001', email: 'late@example.com', sourceEventId: 'late' });
    expect(await process(late)).toMatchObject({ outcome: 'skipped', plan: { reason: 'customer_erased' } });
    expect(reads).toEqual({ getState: 1, isErased: 1 });
  });

  it('asks Klaviyo to delete the profile when the tenant’s policy says delete-klaviyo-profile', async () => {
    const world = worker({ onCustomerRedact: 'delete-klaviyo-profile' });
    const profile = world.klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    await world.process(aChange({ externalId: '1001', email: 'ada@example.com' }));
    await world.process(redactOf('1001'));
    expect(world.klaviyo.requestProfileDeletion).toHaveBeenCalledWith(profile.id);
    expect(world.store.erasures[0]?.counts.klaviyoDeletions).toBe(1);
  });

  it('erases every customer of the tenant on shop/redact, with one record for the tenant', async () => {
    const world = worker();
    for (const id of ['1001', '1002']) {
      world.klaviyo.seed({ external_id: id });
      await world.process(
        aChange({ externalId: id, email: `x.${id}@example.com`, phoneNumber: `+1415555${id}` }),
      );
    }
    await world.process(
      aChange({
        tenant: 'other',
        externalId: '1003',
        email: 'x.1003@example.com',
        phoneNumber: '+14155551003',
      }),
    );
    await world.process({ kind: 'shopRedact', ...asked, shopDomain: SHOP });
    expect((await world.store.readCustomer('acme', '1001')).state).toBeUndefined();
    expect((await world.store.readCustomer('acme', '1002')).audit).toEqual([]);
    expect((await world.store.readCustomer('other', '1003')).audit).not.toEqual([]);
    expect(world.store.erasures).toMatchObject([{ scope: 'shop', counts: { stateItems: 2, auditItems: 2 } }]);
  });

  it("delivers a data request's export of the customer's record, and counts it", async () => {
    const world = worker();
    world.klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    await world.process(aChange({ externalId: '1001', email: 'ada@example.com' }));
    const request: CustomerDataRequest = {
      kind: 'customerDataRequest',
      ...asked,
      externalId: '1001',
      requestId: '9999',
    };
    expect(await world.process(request)).toMatchObject({ outcome: 'exported' });
    expect(world.exported.map((put) => put.key)).toEqual(['data-requests/acme/9999.json']);
    const exported = JSON.parse(world.exported[0]?.json ?? '{}');
    expect(exported).toMatchObject({
      tenant: 'acme',
      externalId: '1001',
      requestId: '9999',
      requestedBy: 'shopify',
    });
    expect(exported.state).toHaveProperty('profileId');
    expect(exported.audit).toHaveLength(1);
    expect(JSON.stringify(exported)).not.toContain('ada@example.com');
    expect(world.counts.get('DataRequestExported')).toBe(1);
    expect(world.logs.find((line) => line.message === 'Data request exported')?.attributes).toMatchObject({
      location: 'memory://data-requests/acme/9999.json',
    });
  });

  it('parks a data request when there is nowhere to deliver the export', async () => {
    const world = worker();
    if (world.deps.compliance) world.deps.compliance.exports = undefined;
    const request: CustomerDataRequest = { kind: 'customerDataRequest', ...asked, externalId: '1001' };
    expect(await world.process(request)).toEqual({ outcome: 'parked', reason: 'export_destination_missing' });
    expect(world.deadLetters.letters).toMatchObject([{ dataRequest: request }]);
  });
});
