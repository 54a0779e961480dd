import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { erpReceiptSchema, erpRefusalSchema, MAX_BODY_BYTES } from '../../lib/erp/contract.js';
import { signErpRequest } from '../../lib/erp/sign.js';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { putTenantSecrets, TENANT_SECRET_PREFIX } from '../../scripts/local-stack/peers.js';
import { type Harness, useHarness } from '../support/harness.js';
import { capturedOutput } from '../support/output.js';

/**
 * The ERP path through the real handlers, SDK clients and adapters, against fauxqs, dynalite,
 * the local Secrets Manager endpoint and the Klaviyo sandbox on loopback.
 */
let harness: Harness;
let klaviyo: KlaviyoSandbox;
const { tenant, erpWebhookSecret: secret } = DEMO_TENANT;
let serial = 0;
let clock = Date.parse('2026-05-01T12:00:00Z');

/** A moment after every one handed out before, and never ahead of the real clock. */
function later() {
  clock += 60_000;
  return new Date(Math.min(clock, Date.now())).toISOString();
}

/** A customer of this test only, with a profile: identifiers are unique across the shared sandbox. */
function seedCustomer(phone?: string) {
  const n = ++serial;
  const externalId = `ERP-${n}-${Date.now()}`;
  const email = (label: string) => `${label}.${n}@example.com`;
  const profile = klaviyo.seedProfile({
    external_id: externalId,
    email: email('before'),
    ...(phone && { phone_number: phone }),
  });
  return { externalId, email, profileId: profile.id };
}

function send(body: unknown, options: { tenant?: string; secret?: string; id?: string; now?: Date } = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers = signErpRequest(text, options.secret ?? secret, options);
  return harness.deliverErp(options.tenant ?? tenant, text, {
    'content-type': 'application/json',
    ...headers,
  });
}

useHarness({}, (started) => {
  harness = started;
  klaviyo = started.peers.klaviyo as KlaviyoSandbox;
});

describe('a signed batch', () => {
  it('queues the usable changes, keeps the others with their reason, and answers for each', async () => {
    const ada = seedCustomer();
    const bob = seedCustomer();
    const cy = seedCustomer();
    const webhookId = `msg_batch_${serial}`;
    const badChange = { externalId: bob.externalId, phoneNumber: 'n/a', occurredAt: later() };
    const response = await send(
      {
        changes: [
          { externalId: ada.externalId, email: ada.email('after'), occurredAt: later(), id: 'erp-1' },
          badChange,
          { externalId: cy.externalId, email: 'cy at example', occurredAt: later() },
          { externalId: cy.externalId, phoneNumber: '(212) 555-0147', occurredAt: later() },
        ],
      },
      { id: webhookId },
    );

    expect(response.statusCode).toBe(202);
    expect(erpReceiptSchema.parse(response.body)).toEqual({
      results: [
        { index: 0, id: 'erp-1', externalId: ada.externalId, status: 'accepted' },
        {
          index: 1,
          externalId: bob.externalId,
          status: 'rejected',
          errors: [{ path: '/phoneNumber', message: expect.stringMatching(/not a valid phone number/) }],
        },
        {
          index: 2,
          externalId: cy.externalId,
          status: 'rejected',
          errors: [{ path: '/email', message: 'must be an email address' }],
        },
        { index: 3, externalId: cy.externalId, status: 'accepted' },
      ],
    });

    await harness.drain();
    expect(klaviyo.getProfile(ada.profileId)?.email).toBe(ada.email('after'));
    expect(klaviyo.getProfile(bob.profileId)?.email).toBe(bob.email('before'));
    expect(klaviyo.getProfile(cy.profileId)).toMatchObject({
      email: cy.email('before'),
      phone_number: '+12125550147',
    });

    const parked = await harness.takeDeadLetters();
    expect(parked.map((entry) => entry.reason)).toEqual(['invalid_change', 'invalid_change']);
    expect(parked.map((entry) => entry.letter)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          tenant,
          source: 'erp',
          sourceEventId: `${webhookId}:1`,
          externalId: bob.externalId,
          detail: expect.stringContaining('/phoneNumber'),
          payload: JSON.stringify(badChange),
          context: { webhookId, index: 1, errors: [expect.objectContaining({ path: '/phoneNumber' })] },
        }),
        expect.objectContaining({
          sourceEventId: `${webhookId}:2`,
          context: expect.objectContaining({ index: 2 }),
        }),
      ]),
    );
  });

  it('applies the changes of one customer in the order of the batch', async () => {
    const ada = seedCustomer();
    const changes = ['one', 'two', 'three'].map((label) => ({
      externalId: ada.externalId,
      email: ada.email(label),
      occurredAt: later(),
    }));
    expect((await send({ changes })).statusCode).toBe(202);
    await harness.drain();
    const patched = klaviyo.requests
      .filter((request) => request.method === 'PATCH' && request.path === `/api/profiles/${ada.profileId}`)
      .map((request) => (request.body as { data: { attributes: { email?: string } } }).data.attributes.email);
    expect(patched).toEqual([ada.email('one'), ada.email('two'), ada.email('three')]);
  });
});

describe('a single change', () => {
  it('gets the same answer as a batch of one, and is applied', async () => {
    const ada = seedCustomer();
    const response = await send({
      externalId: ada.externalId,
      email: ` ${ada.email('single')} `,
      occurredAt: later(),
    });
    expect(response).toEqual({
      statusCode: 202,
      body: { results: [{ index: 0, externalId: ada.externalId, status: 'accepted' }] },
    });
    await harness.drain();
    expect(klaviyo.getProfile(ada.profileId)?.email).toBe(ada.email('single'));
  });

  it('clears the phone number when it is null, and leaves the absent email', async () => {
    const ada = seedCustomer('+14155550177');
    const response = await send({ externalId: ada.externalId, phoneNumber: null, occurredAt: later() });
    expect(response.statusCode).toBe(202);
    await harness.drain();
    expect(klaviyo.getProfile(ada.profileId)).toMatchObject({
      phone_number: null,
      email: ada.email('before'),
    });
  });
});

describe('redeliveries', () => {
  it('applies a message delivered twice under one webhook-id once', async () => {
    const ada = seedCustomer();
    const body = { changes: [{ externalId: ada.externalId, email: ada.email('once'), occurredAt: later() }] };
    const webhookId = `msg_dup_${serial}`;
    // A redelivery is signed anew (a later timestamp) but keeps the webhook-id.
    expect((await send(body, { id: webhookId })).statusCode).toBe(202);
    expect((await send(body, { id: webhookId, now: new Date(Date.now() + 30_000) })).statusCode).toBe(202);
    await harness.drain();
    const patches = klaviyo.requests.filter(
      (request) => request.method === 'PATCH' && request.path === `/api/profiles/${ada.profileId}`,
    );
    expect(patches).toHaveLength(1);
    expect(klaviyo.getProfile(ada.profileId)?.email).toBe(ada.email('once'));
  });
});

describe('what is refused as a whole', () => {
  const anyChange = () => ({ externalId: 'ERP-refused', email: 'refused@example.com', occurredAt: later() });
  const wrongSecret = `whsec_${Buffer.from('not the demo key').toString('base64')}`;

  async function expectNothingQueued() {
    expect(await harness.queueDepth()).toBe(0);
    expect(await harness.takeDeadLetters()).toEqual([]);
  }

  it('answers a tenant that does not exist, or cannot, exactly as a wrong signature', async () => {
    const forged = await send(anyChange(), { secret: wrongSecret });
    expect(forged).toEqual({ statusCode: 401, body: { error: 'invalid signature' } });
    for (const name of ['nobody', 'demo..%2F..', 'a b']) {
      expect(await send(anyChange(), { tenant: name })).toEqual(forged);
    }
    await expectNothingQueued();
  });

  it('asks Secrets Manager about an unknown tenant once, not on every request', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await send(anyChange(), { tenant: 'stranger' })).statusCode).toBe(401);
    }
    expect(harness.peers.secrets.reads(`${TENANT_SECRET_PREFIX}stranger/webhook`)).toBe(1);
  });

  it('answers a 600-character tenant name with 401, asking Secrets Manager nothing', async () => {
    const long = 't'.repeat(600);
    expect(await send(anyChange(), { tenant: long })).toEqual({
      statusCode: 401,
      body: { error: 'invalid signature' },
    });
    expect(harness.peers.secrets.reads(`${TENANT_SECRET_PREFIX}${long}/webhook`)).toBe(0);
    await expectNothingQueued();
  });

  it('answers a signed batch with a 60 KB adversarial email within 2 s, rejecting that change', async () => {
    const email = `a@${'.'.repeat(60 * 1024)}@`;
    const start = performance.now();
    const response = await send({ changes: [{ ...anyChange(), email }] });
    expect(performance.now() - start).toBeLessThan(2_000);
    expect(response.statusCode).toBe(202);
    expect(response.body).toMatchObject({ results: [{ status: 'rejected', errors: [{ path: '/email' }] }] });
    await harness.takeDeadLetters();
  });

  it('answers a tenant with no ERP secret as a wrong signature', async () => {
    putTenantSecrets(harness.peers.secrets, 'shopify-only', {
      klaviyoPrivateKey: DEMO_TENANT.klaviyoPrivateKey,
      shopifyWebhookSecrets: ['shpss_x'],
    });
    expect(await send(anyChange(), { tenant: 'shopify-only' })).toEqual({
      statusCode: 401,
      body: { error: 'invalid signature' },
    });
  });

  it('answers 401 for a wrong secret, a missing signature and an expired timestamp', async () => {
    expect((await send(anyChange(), { secret: wrongSecret })).body).toEqual({ error: 'invalid signature' });

    const body = JSON.stringify(anyChange());
    const { 'webhook-signature': _, ...unsigned } = signErpRequest(body, secret);
    expect(await harness.deliverErp(tenant, body, unsigned)).toEqual({
      statusCode: 401,
      body: { error: 'webhook-id, webhook-timestamp and webhook-signature are required' },
    });

    const expired = await send(anyChange(), { now: new Date(Date.now() - 6 * 60_000) });
    expect(expired.statusCode).toBe(401);
    expect(expired.body.error).toMatch(/more than 5 minutes old/);
    await expectNothingQueued();
  });

  it('answers 413 to an unsigned body above the size limit, without reading the tenant secret', async () => {
    const unsigned = await harness.deliverErp('unread', ' '.repeat(MAX_BODY_BYTES + 1), {});
    expect(unsigned).toEqual({
      statusCode: 413,
      body: { error: `body larger than ${MAX_BODY_BYTES} bytes` },
    });
    expect(harness.peers.secrets.reads(`${TENANT_SECRET_PREFIX}unread/webhook`)).toBe(0);
    await expectNothingQueued();
  });

  it.each([
    ['not JSON', 'externalId=ERP-1'],
    ['a list', JSON.stringify([{ externalId: 'ERP-1' }])],
    ['an object of neither shape', JSON.stringify({ customer: { id: 'ERP-1' } })],
    [
      'a batch of 101',
      JSON.stringify({ changes: Array.from({ length: 101 }, () => ({ externalId: 'ERP-1' })) }),
    ],
  ])('answers 400 with field errors for %s', async (_, body) => {
    const response = await send(body);
    expect(response.statusCode).toBe(400);
    expect(erpRefusalSchema.parse(response.body)).toEqual({
      error: 'not a change or a batch of changes',
      errors: [{ path: expect.any(String), message: expect.any(String) }],
    });
    await expectNothingQueued();
  });
});

describe('a signed body above the size limit', () => {
  it('is kept unread, as its hash, length and first 4 KiB, and answered 200', async () => {
    const ada = seedCustomer();
    const change = { externalId: ada.externalId, email: ada.email('too-large'), occurredAt: later() };
    const body = JSON.stringify(change).padEnd(1024 * 1024, ' ');
    const response = await send(body, { id: `msg_too_large_${serial}` });
    expect(response).toEqual({
      statusCode: 200,
      body: { status: 'dead-lettered', reason: `body larger than ${MAX_BODY_BYTES} bytes` },
    });
    expect(await harness.queueDepth()).toBe(0);
    const [parked, ...others] = await harness.takeDeadLetters();
    expect(others).toEqual([]);
    expect(parked?.reason).toBe('payload_too_large');
    expect(parked?.letter).toMatchObject({
      tenant,
      source: 'erp',
      sourceEventId: `msg_too_large_${serial}`,
      payload: body.slice(0, 4096),
      context: {
        payloadBytes: body.length,
        payloadSha256: createHash('sha256').update(body).digest('hex'),
      },
    });
    expect(klaviyo.getProfile(ada.profileId)?.email).toBe(ada.email('before'));
  });
});

describe('secret rotation', () => {
  it('accepts a request signed with a secret added after the cache was filled', async () => {
    const ada = seedCustomer();
    const rotated = `whsec_${Buffer.from('rotated-erp-signing-key-0002').toString('base64')}`;
    putTenantSecrets(harness.peers.secrets, tenant, {
      shopifyWebhookSecrets: [DEMO_TENANT.shopifyWebhookSecret],
      erpWebhookSecrets: [secret, rotated],
    });
    const response = await send(
      { externalId: ada.externalId, email: ada.email('rotated'), occurredAt: later() },
      { secret: rotated },
    );
    expect(response.statusCode).toBe(202);
    await harness.drain();
    expect(klaviyo.getProfile(ada.profileId)?.email).toBe(ada.email('rotated'));
  });
});

describe('logs', () => {
  it('tell what happened without showing an email or phone number', async () => {
    const ada = seedCustomer();
    const output = await capturedOutput(async () => {
      await send({
        changes: [
          { externalId: ada.externalId, email: ada.email('logged'), occurredAt: later() },
          {
            externalId: ada.externalId,
            phoneNumber: '+1 212 555 01',
            email: ada.email('bad'),
            occurredAt: later(),
          },
        ],
      });
    });
    expect(output).toContain('Identity change queued');
    expect(output).toContain('Change rejected: kept on the dead-letter queue');
    expect(output).toMatch(/"WebhookAccepted":\s*1/);
    expect(output).toMatch(/"WebhookDeadLettered":\s*1/);
    expect(output).not.toContain(ada.email('logged'));
    expect(output).not.toContain(ada.email('bad'));
    expect(output).not.toContain('555 01');
  });
});
