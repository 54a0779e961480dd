import type { SQSClient } from '@aws-sdk/client-sqs';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { httpApiResponse, webhookRequestOf } from '../../functions/http-api.js';
import { createSqsChangeQueue, createSqsDeadLetters } from '../../lib/adapters/sqs-queues.js';
import { MAX_EMAIL_LENGTH, readErpRequest } from '../../lib/erp/contract.js';
import { erpWebhookSource } from '../../lib/erp/receive-webhook.js';
import { signErpRequest } from '../../lib/erp/sign.js';
import { TIMESTAMP_TOLERANCE_SECONDS } from '../../lib/erp/signature.js';
import type { WebhookRequest } from '../../lib/http.js';
import { NOT_AUTHENTICATED, receiveWebhook } from '../../lib/intake/receive.js';
import type { WebhookSource } from '../../lib/intake/source.js';
import { maskIdentifiersInText } from '../../lib/observability/mask.js';
import { shopifyWebhookSource } from '../../lib/shopify/receive-webhook.js';
import { signShopifyBody } from '../../lib/shopify/signature.js';
import { httpApiEvent } from '../../local/lambda-events.js';
import { customerPayload } from '../../local/shopify-deliveries.js';
import { fakeIntake, NOW, tenantSecret } from '../support/intake.js';

/**
 * Both intakes under random input (fast-check): bodies of any bytes, size and encoding, headers of
 * any names and values. Input alone never makes them throw or answer 5xx; nothing unsigned is ever
 * queued; every signed body ends queued, or kept on the dead-letter queue with a reason, or is
 * answered with the reason it is not (a topic not processed, a body that is no ERP change).
 * The queues are the real SQS adapters over a client that checks what SQS itself would refuse.
 */
const crypto = vi.hoisted(() => ({ comparisons: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  const timingSafeEqual: typeof original.timingSafeEqual = (a, b) => {
    crypto.comparisons++;
    return original.timingSafeEqual(a, b);
  };
  return { ...original, default: { ...original, timingSafeEqual }, timingSafeEqual };
});

const TENANT = 'acme';
const SHOP = 'acme.myshopify.com';
const SHOPIFY_SECRETS = ['shpss_fuzz_old', 'shpss_fuzz_new'];
const ERP_SECRETS = ['old', 'new'].map(
  (key) => `whsec_${Buffer.from(`fuzz-key-${key}-0123456789`).toString('base64')}`,
);
const SECRETS = {
  [TENANT]: tenantSecret({ shopifyWebhookSecrets: SHOPIFY_SECRETS, erpWebhookSecrets: ERP_SECRETS }),
};
const RUNS = { numRuns: 200 };

const shopify = shopifyWebhookSource({
  shopTenants: { [SHOP]: TENANT },
  defaultPhoneRegion: 'US',
});
const erp = erpWebhookSource({ defaultPhoneRegion: 'US' });

/** SQS's own limits on a SendMessage to a FIFO queue, checked as SQS would (it answers 400). */
const SQS_ALLOWED_BODY = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;
const FIFO_ID = /^[\x21-\x7e]{1,128}$/;
function strictSqs(sent: string[]): SQSClient {
  const send = async (command: { input: Record<string, string> }) => {
    const { MessageBody = '', MessageGroupId = '', MessageDeduplicationId = '' } = command.input;
    if (Buffer.byteLength(MessageBody) > 256 * 1024) throw new Error('MessageTooLong');
    if (!SQS_ALLOWED_BODY.test(MessageBody)) throw new Error('InvalidMessageContents');
    if (!FIFO_ID.test(MessageGroupId) || !FIFO_ID.test(MessageDeduplicationId))
      throw new Error('InvalidParameterValue');
    sent.push(MessageBody);
    return {};
  };
  return { send } as unknown as SQSClient;
}

/** The intake of `source` with in-memory secrets and the real queue adapters over `strictSqs`. */
function intake(source: WebhookSource) {
  const queued: string[] = [];
  const parked: string[] = [];
  const { deps, get } = fakeIntake(SECRETS, {
    queue: createSqsChangeQueue(strictSqs(queued), 'https://sqs.local/q.fifo'),
    deadLetters: createSqsDeadLetters(strictSqs(parked), 'https://sqs.local/dlq.fifo'),
  });
  return {
    queued,
    parked,
    secretReads: get,
    receive: (request: WebhookRequest) => receiveWebhook(source, request, deps),
  };
}

/** Bodies of any bytes: text, JSON, binary, and now and then past the 256 KiB limit. */
const anyBody = fc.oneof(
  fc.string({ maxLength: 300 }).map((text) => Buffer.from(text)),
  fc.jsonValue({ maxDepth: 3 }).map((json) => Buffer.from(JSON.stringify(json) ?? 'null')),
  fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes)),
  fc.integer({ min: 256 * 1024 - 2, max: 256 * 1024 + 2 }).map((size) => Buffer.alloc(size, 0x7b)),
);
const headerValue = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.constantFrom('', ' ', 'customers/update', SHOP, '0'),
);
/** Headers of any names, the ones both intakes read among them. */
const anyHeaders = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      'x-shopify-hmac-sha256',
      'x-shopify-shop-domain',
      'x-shopify-topic',
      'x-shopify-webhook-id',
      'x-shopify-triggered-at',
      'webhook-id',
      'webhook-timestamp',
      'webhook-signature',
    ),
    fc.string({ minLength: 1, maxLength: 20 }).map((name) => name.toLowerCase()),
  ),
  headerValue,
  { maxKeys: 8 },
);
const anyTenant = fc.oneof(fc.constant(TENANT), fc.string({ maxLength: 40 }));

/** What a Shopify customer payload may carry in its fields: anything JSON, and odd strings. */
const oddValue = fc.oneof(
  fc.jsonValue({ maxDepth: 1 }),
  fc.string({ maxLength: 200 }),
  fc.constantFrom('', ' ', '+1 (415) 555-0100', 'not a date', '9'.repeat(40), 'ü@例え.jp', '\u0000'),
);
const shopifyLikeBody = fc
  .record({
    id: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String), oddValue),
    email: oddValue,
    phone: oddValue,
    updated_at: oddValue,
  })
  .map(({ id, ...fields }) => {
    const json = JSON.parse(customerPayload({ id: '1' })) as Record<string, unknown>;
    // As text whatever it is: an object such as {"toString": 0} has no string form of its own.
    const idText = typeof id === 'string' ? id : JSON.stringify(id);
    return Buffer.from(
      JSON.stringify({ ...json, id, admin_graphql_api_id: `gid://shopify/Customer/${idText}`, ...fields }),
    );
  });
/** A customer payload as Shopify sends it, but for its id. */
const wellFormedShopifyBody = fc
  .bigInt({ min: 1n, max: 2n ** 63n })
  .map((id) => Buffer.from(customerPayload({ id: String(id) })));
const erpChange = fc.record(
  {
    externalId: oddValue,
    email: oddValue,
    phoneNumber: oddValue,
    occurredAt: oddValue,
    id: oddValue,
    previous: oddValue,
  },
  { requiredKeys: [] },
);
/** An ERP change the contract accepts. */
const wellFormedErpChange = fc.record({
  externalId: fc.integer({ min: 1, max: 1e9 }).map(String),
  email: fc.constantFrom('a@example.com', 'b.c@example.org'),
  occurredAt: fc.constant(NOW.toISOString()),
});
const anyErpChange = fc.oneof(wellFormedErpChange, erpChange);
const erpLikeBody = fc
  .oneof(
    anyErpChange,
    fc.record({ changes: fc.array(anyErpChange, { maxLength: 120 }) }),
    fc.jsonValue({ maxDepth: 3 }),
  )
  .map((json) => Buffer.from(JSON.stringify(json) ?? 'null'));

const shopifyRequest = (body: Buffer, headers: Record<string, string>, secret?: string): WebhookRequest => ({
  headers: {
    'x-shopify-shop-domain': SHOP,
    'x-shopify-topic': 'customers/update',
    ...headers,
    ...(secret !== undefined && { 'x-shopify-hmac-sha256': signShopifyBody(body, secret) }),
  },
  body,
});
const erpRequest = (
  body: Buffer,
  tenant: string,
  now: Date,
  secret = ERP_SECRETS[1] as string,
): WebhookRequest => ({
  headers: signErpRequest(body, secret, { now }),
  body,
  pathParameters: { tenant },
});

/** No 5xx from input alone: what is left is 2xx, 400 (not a change), 401 and 413. */
const INPUT_STATUSES = [200, 202, 400, 401, 413];

describe('the intakes under random input', () => {
  it.each([
    ['Shopify', shopify],
    ['ERP', erp],
  ] as const)(
    '%s: any headers and body, unsigned or forged: a 4xx or 2xx, nothing queued',
    async (_name, source) => {
      await fc.assert(
        fc.asyncProperty(anyHeaders, anyBody, anyTenant, async (headers, body, tenant) => {
          const { receive, queued, parked } = intake(source);
          const answer = await receive({ headers, body, pathParameters: { tenant } });
          expect(INPUT_STATUSES).toContain(answer.statusCode);
          expect(answer.statusCode === 200 || answer.statusCode === 202).toBe(false);
          expect(queued).toEqual([]);
          expect(parked).toEqual([]);
        }),
        RUNS,
      );
    },
  );

  it('Shopify: every signed body is queued, kept with a reason, or ignored with one', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(wellFormedShopifyBody, shopifyLikeBody, anyBody),
        anyHeaders,
        fc.constantFrom(...SHOPIFY_SECRETS),
        async (body, headers, secret) => {
          const { receive, queued, parked } = intake(shopify);
          const { 'x-shopify-hmac-sha256': _forged, 'x-shopify-shop-domain': _shop, ...rest } = headers;
          const answer = await receive(shopifyRequest(body, rest, secret));
          expect(answer.statusCode).toBe(200);
          const { status, reason } = answer.body as { status: string; reason?: string };
          seen.add(status);
          if (status === 'queued') expect(queued).toHaveLength(1);
          else if (status === 'dead-lettered') expect([parked.length, typeof reason]).toEqual([1, 'string']);
          else
            expect([status, typeof reason, queued.length + parked.length]).toEqual(['ignored', 'string', 0]);
        },
      ),
      RUNS,
    );
    // Each way out was taken: random bodies alone are all kept or ignored, never queued.
    expect([...seen].sort(), 'how the signed bodies ended').toEqual(['dead-lettered', 'ignored', 'queued']);
  });

  it('ERP: every signed body is queued or kept change by change, or refused with its errors', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.oneof(erpLikeBody, anyBody), async (body) => {
        const { receive, queued, parked } = intake(erp);
        const answer = await receive(erpRequest(body, TENANT, NOW));
        seen.add(String(answer.statusCode));
        if (body.length > 256 * 1024) {
          expect([answer.statusCode, parked.length]).toEqual([200, 1]);
          return;
        }
        expect([202, 400]).toContain(answer.statusCode);
        if (answer.statusCode === 400) {
          expect((answer.body as { errors: unknown[] }).errors.length).toBeGreaterThan(0);
          expect(queued.length + parked.length).toBe(0);
          return;
        }
        const results = (answer.body as { results: { status: string }[] }).results;
        for (const { status } of results) seen.add(status);
        expect(queued).toHaveLength(results.filter((result) => result.status === 'accepted').length);
        expect(parked).toHaveLength(results.filter((result) => result.status === 'rejected').length);
      }),
      RUNS,
    );
    // Each way out was taken: random changes alone are all rejected, never queued.
    expect([...seen].sort(), 'how the signed bodies ended').toEqual([
      '200',
      '202',
      '400',
      'accepted',
      'rejected',
    ]);
  });

  it('takes the exact bytes whatever the encoding API Gateway hands them in', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 500, unit: 'binary' }), fc.boolean(), async (text, base64) => {
        const { receive } = intake(shopify);
        const body = customerPayload({ id: '1001', email: null, phone: null }).replace(
          '"Ada"',
          JSON.stringify(text),
        );
        const event = httpApiEvent(
          body,
          shopifyRequest(Buffer.from(body), {}, SHOPIFY_SECRETS[0]).headers as Record<string, string>,
          base64,
        );
        const answer = await receive({
          ...webhookRequestOf(event),
          headers: { ...webhookRequestOf(event).headers },
        });
        expect(answer).toEqual({ statusCode: 200, body: { status: 'queued' } });
      }),
      { numRuns: 60 },
    );
  });
});

describe('signatures', () => {
  it('refuses an ERP delivery signed outside the 5-minute tolerance, before reading any secret', async () => {
    const tolerance = TIMESTAMP_TOLERANCE_SECONDS;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.integer({ min: tolerance + 1, max: 10 ** 9 }),
          fc.integer({ min: -(10 ** 9), max: -tolerance - 1 }),
        ),
        async (offsetSeconds) => {
          const { receive, queued, secretReads } = intake(erp);
          const body = Buffer.from(
            JSON.stringify({ externalId: '1', email: 'a@example.com', occurredAt: NOW.toISOString() }),
          );
          const answer = await receive(
            erpRequest(body, TENANT, new Date(NOW.getTime() + offsetSeconds * 1000)),
          );
          expect(answer.statusCode).toBe(401);
          expect(queued).toEqual([]);
          expect(secretReads).not.toHaveBeenCalled();
        },
      ),
      RUNS,
    );
  });

  it('answers an unknown tenant exactly as a wrong signature, headers included', async () => {
    const answerTo = async (source: WebhookSource, request: WebhookRequest) =>
      httpApiResponse(await intake(source).receive(request));
    const body = Buffer.from(customerPayload({ id: '1001' }));
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[A-Za-z0-9_.-]{1,30}$/), async (stranger) => {
        fc.pre(stranger !== TENANT);
        const wrong = httpApiResponse(NOT_AUTHENTICATED);
        expect(await answerTo(shopify, shopifyRequest(body, {}, 'shpss_not_ours'))).toEqual(wrong);
        expect(
          await answerTo(
            shopify,
            shopifyRequest(body, { 'x-shopify-shop-domain': `${stranger}.myshopify.com` }, 'shpss_not_ours'),
          ),
        ).toEqual(wrong);
        expect(
          await answerTo(
            erp,
            erpRequest(body, TENANT, NOW, `whsec_${Buffer.from('not ours').toString('base64')}`),
          ),
        ).toEqual(wrong);
        expect(await answerTo(erp, erpRequest(body, stranger, NOW))).toEqual(wrong);
      }),
      { numRuns: 50 },
    );
  });

  it('compares every signature with every secret in constant time (crypto.timingSafeEqual)', async () => {
    const body = Buffer.from(customerPayload({ id: '1001' }));
    crypto.comparisons = 0;
    // Signed with the first of two secrets: both are still compared, so timing tells nothing.
    expect((await intake(shopify).receive(shopifyRequest(body, {}, SHOPIFY_SECRETS[0]))).statusCode).toBe(
      200,
    );
    expect(crypto.comparisons).toBe(SHOPIFY_SECRETS.length);
    crypto.comparisons = 0;
    const change = Buffer.from(
      JSON.stringify({ externalId: '1', email: 'a@example.com', occurredAt: NOW.toISOString() }),
    );
    expect((await intake(erp).receive(erpRequest(change, TENANT, NOW, ERP_SECRETS[0]))).statusCode).toBe(202);
    expect(crypto.comparisons).toBe(ERP_SECRETS.length);
  });
});

describe('a shop of no tenant', () => {
  it('is never given a tenant: signed with the app’s secret it is kept as unknown_tenant, nothing queued', async () => {
    const body = Buffer.from(customerPayload({ id: '1001' }));
    await fc.assert(
      fc.asyncProperty(headerValue, fc.constantFrom(...SHOPIFY_SECRETS), async (shop, secret) => {
        fc.pre(shop.toLowerCase() !== SHOP);
        const { receive, queued, parked } = intake(shopify);
        const answer = await receive(shopifyRequest(body, { 'x-shopify-shop-domain': shop }, secret));
        expect(answer).toEqual({
          statusCode: 200,
          body: { status: 'dead-lettered', reason: 'maps to no tenant' },
        });
        expect(queued).toEqual([]);
        expect(parked).toHaveLength(1);
      }),
      { numRuns: 50 },
    );
  });
});

/**
 * Inputs that cost nothing to send cost us nothing: every pattern run on input is linear and
 * bounded, and a tenant name no tenant can have is refused before any secret is read.
 */
describe('adversarial inputs', () => {
  const KB60 = 60 * 1024;
  /** Strings that made the former email pattern backtrack for seconds (quadratic in their length). */
  const ADVERSARIAL_EMAILS = [
    `a@${'.'.repeat(KB60)}`,
    `a@${'.'.repeat(KB60)}@`,
    `a@${'.'.repeat(KB60)} x`,
    `a@b${'.'.repeat(KB60)}\u0000`,
    `${' '.repeat(KB60)}x`,
    `${'a'.repeat(KB60)}@`,
  ];

  it.each(ADVERSARIAL_EMAILS.map((email, index) => [index, email]))(
    'answers a signed ERP batch with adversarial email #%i within 2 s, the change rejected',
    async (_, email) => {
      const { receive, queued, parked } = intake(erp);
      const change = { externalId: 'C-1', occurredAt: NOW.toISOString() };
      const body = Buffer.from(
        JSON.stringify({
          changes: [
            { ...change, email },
            { ...change, email: 'a@example.com', previous: { email } },
          ],
        }),
      );
      const start = performance.now();
      const answer = await receive(erpRequest(body, TENANT, NOW));
      expect(performance.now() - start).toBeLessThan(2_000);
      expect(answer.statusCode).toBe(202);
      const { results } = answer.body as { results: { status: string; errors?: { path: string }[] }[] };
      expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
      expect(results.map((result) => result.errors?.[0]?.path)).toEqual(['/email', '/previous/email']);
      expect([queued.length, parked.length]).toEqual([0, 2]);
    },
  );

  it('checks an email of up to 254 characters, and refuses a longer one before any pattern', () => {
    const local = 'a'.repeat(64);
    const at254 = `${local}@${'b'.repeat(254 - 64 - 1 - 4)}.com`;
    const read = (email: string) =>
      readErpRequest(JSON.stringify({ externalId: '1', email, occurredAt: NOW.toISOString() }), {
        tenant: TENANT,
        webhookId: 'msg_1',
        receivedAt: NOW,
        defaultPhoneRegion: 'US',
      });
    expect(at254).toHaveLength(MAX_EMAIL_LENGTH);
    expect(read(at254)).toMatchObject({ ok: true, changes: [{ result: { status: 'accepted' } }] });
    expect(read(`a${at254}`)).toMatchObject({
      ok: true,
      changes: [
        {
          result: {
            status: 'rejected',
            errors: [{ path: '/email', message: expect.stringMatching(/at most 254/) }],
          },
        },
      ],
    });
  });

  it('masks identifiers in 60 KB of text without an email in well under a second', () => {
    for (const text of [
      'a'.repeat(KB60),
      `${'a'.repeat(KB60)}@`,
      'a@'.repeat(KB60 / 2),
      `+1${'1 '.repeat(KB60 / 2)}`,
    ]) {
      const start = performance.now();
      maskIdentifiersInText(text);
      expect(performance.now() - start, text.slice(0, 8)).toBeLessThan(250);
    }
  });

  it('refuses an ERP tenant name no tenant can have (600 characters, not a name) with 401, reading no secret', async () => {
    for (const tenant of ['t'.repeat(600), 'a'.repeat(65), '-acme', 'acme/../x']) {
      const { receive, secretReads, parked } = intake(erp);
      const body = Buffer.from(
        JSON.stringify({ externalId: '1', email: 'a@example.com', occurredAt: NOW.toISOString() }),
      );
      expect(await receive(erpRequest(body, tenant, NOW))).toEqual(NOT_AUTHENTICATED);
      expect(secretReads).not.toHaveBeenCalled();
      expect(parked).toEqual([]);
    }
  });
});
