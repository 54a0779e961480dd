import { type AttributeValue, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { identitySync } from '../../cli/identity-sync.js';
import { createDynamoSyncState } from '../../lib/adapters/dynamo-sync-state.js';
import { createSqsDeadLetters } from '../../lib/adapters/sqs-queues.js';
import { createSyncWorker } from '../../lib/composition.js';
import { loadConfig } from '../../lib/config.js';
import { letterOfQueued } from '../../lib/dead-letter.js';
import { processQueuedBatch } from '../../lib/sync/receive-batch.js';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { customerPayload, shopifyHeaders } from '../../local/shopify-deliveries.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { TABLE_NAME } from '../../scripts/local-stack/peers.js';
import { captureIo } from '../support/cli.js';
import { aChange } from '../support/factories.js';
import { type Harness, useHarness } from '../support/harness.js';

/**
 * Shopify's mandatory compliance webhooks end to end: the real handlers, SDK clients and adapters
 * against fauxqs, dynalite, the local Secrets Manager endpoint and the Klaviyo sandbox. After an
 * erasure, the whole table is scanned for anything naming the customer.
 */
let harness: Harness;
let klaviyo: KlaviyoSandbox;
let nextCustomer = 7_100_000_000_000;
const customer = () => String(nextCustomer++);
const SHOP = DEMO_TENANT.shopDomain;

useHarness({}, (started) => {
  harness = started;
  klaviyo = started.peers.klaviyo as KlaviyoSandbox;
});

const send = (body: string, topic: string, signature?: string) =>
  harness.deliver(
    body,
    shopifyHeaders(body, {
      secret: DEMO_TENANT.shopifyWebhookSecret,
      topic,
      shop: SHOP,
      ...(signature !== undefined && { signature }),
    }),
  );

const emailOf = (id: string) => `c.${id}@example.com`;
const phoneOf = (id: string) => `+1646555${id.slice(-4)}`;
const update = (id: string, email = emailOf(id), updatedAt = new Date().toISOString()) =>
  send(customerPayload({ id, email, phone: phoneOf(id), updatedAt }), 'customers/update');
const redact = (id: string) =>
  send(
    `{"shop_id":954889,"shop_domain":"${SHOP}","customer":{"id":${id},"email":"${emailOf(id)}","phone":"${phoneOf(id)}"},"orders_to_redact":[]}`,
    'customers/redact',
  );
const dataRequest = (id: string, requestId: string) =>
  `{"shop_id":954889,"shop_domain":"${SHOP}","orders_requested":[],"customer":{"id":${id},"email":"${emailOf(id)}","phone":null},"data_request":{"id":${requestId}}}`;

/** Every item of the table, every attribute as text. */
async function tableText(): Promise<string[]> {
  const items: string[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await harness.peers.dynamodb.send(
      new ScanCommand({ TableName: TABLE_NAME, ExclusiveStartKey: start, ConsistentRead: true }),
    );
    items.push(...(page.Items ?? []).map((item) => JSON.stringify(item)));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The items that name the customer: its id, email or phone, in any attribute. */
const naming = (items: string[], id: string) =>
  items.filter((item) =>
    [id, emailOf(id), phoneOf(id), emailOf(id).split('@')[0]].some((value) => item.includes(value as string)),
  );

describe('the compliance webhooks', () => {
  it.each([
    [
      'customers/redact',
      `{"shop_id":1,"shop_domain":"${SHOP}","customer":{"id":1,"email":null,"phone":null},"orders_to_redact":[]}`,
    ],
    ['customers/data_request', dataRequest('1', '2')],
    ['shop/redact', `{"shop_id":1,"shop_domain":"${SHOP}"}`],
  ])('answer 401 to a %s with a bad HMAC', async (topic, body) => {
    const answer = await send(body, topic, 'bm90IHRoZSBzaWduYXR1cmU=');
    expect(answer).toEqual({ statusCode: 401, body: { error: 'invalid signature' } });
    expect(await harness.queueDepth()).toBe(0);
  });
});

describe('customers/redact', () => {
  it('leaves no item naming five erased customers, and keeps the five others', async () => {
    const ids = Array.from({ length: 10 }, customer);
    for (const id of ids) klaviyo.seedProfile({ external_id: id, email: `before.${id}@example.com` });
    for (const id of ids) expect((await update(id)).statusCode).toBe(200);
    await harness.drain();
    const before = await tableText();
    for (const id of ids) expect(naming(before, id).length).toBeGreaterThan(0);

    const [erased, kept] = [ids.slice(0, 5), ids.slice(5)];
    for (const id of erased)
      expect(await redact(id)).toEqual({ statusCode: 200, body: { status: 'queued' } });
    await harness.drain();

    const after = await tableText();
    for (const id of erased) expect(naming(after, id)).toEqual([]);
    for (const id of kept) expect(naming(after, id).length).toBeGreaterThan(0);
    // One erasure record per customer, naming no one.
    expect(after.filter((item) => item.includes('"erased#demo#')).length).toBeGreaterThanOrEqual(5);
    // Klaviyo keeps the profiles (the default policy).
    expect(klaviyo.findProfile({ external_id: erased[0] as string })).toBeDefined();
  });

  it('applies nothing of the customer after the redact, whether queued before it or after', async () => {
    const id = customer();
    const profile = klaviyo.seedProfile({ external_id: id, email: `before.${id}@example.com` });
    await update(id, `first.${id}@example.com`, '2026-05-01T10:00:00Z');
    await redact(id);
    // A late delivery (Shopify retries for hours) with a newer time, after the redact.
    await update(id, `late.${id}@example.com`, '2026-05-01T11:00:00Z');
    await harness.drain();
    expect(klaviyo.getProfile(profile.id)?.email).toBe(`first.${id}@example.com`);
    expect(naming(await tableText(), id)).toEqual([]);
    expect(await harness.takeDeadLetters()).toEqual([]);
  });

  it("drops the customer's parked letters and keeps the others'", async () => {
    const [erased, other] = [customer(), customer()];
    const parked = createSqsDeadLetters(harness.peers.sqs, harness.peers.deadLetterQueueUrl);
    const failure = {
      reason: 'klaviyo_invalid',
      detail: 'refused',
      attempts: 1,
      parkedAt: new Date().toISOString(),
    };
    for (const [id, n] of [
      [erased, 1],
      [erased, 2],
      [other, 1],
    ] as const) {
      const change = aChange({ tenant: DEMO_TENANT.tenant, externalId: id, sourceEventId: `p-${id}-${n}` });
      await parked.park(letterOfQueued(change, failure), { messageId: `m-${id}-${n}` });
    }
    await redact(erased);
    await harness.drain();
    const left = await harness.takeDeadLetters();
    expect(left.map(({ letter }) => letter.externalId)).toEqual([other]);
  });
});

describe('customers/data_request', () => {
  it("is answered 200 at once, and the export holds the customer's record", async () => {
    const id = customer();
    klaviyo.seedProfile({ external_id: id, email: `before.${id}@example.com` });
    await update(id);
    await harness.drain();

    expect(await send(dataRequest(id, '4242'), 'customers/data_request')).toEqual({
      statusCode: 200,
      body: { status: 'queued' },
    });
    // The worker with the stack's adapters, delivering to a destination in memory.
    const exported: { key: string; json: string }[] = [];
    const worker = createSyncWorker(loadConfig());
    const deps = {
      ...worker,
      compliance: {
        ...(worker.compliance as NonNullable<typeof worker.compliance>),
        exports: {
          put: async (key: string, json: string) => {
            exported.push({ key, json });
            return { location: `memory://${key}` };
          },
        },
      },
    };
    const { Messages = [] } = await harness.peers.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: harness.peers.queueUrl,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    const records = Messages.map((message) => ({
      id: message.MessageId ?? '',
      groupId: message.Attributes?.MessageGroupId ?? '',
      body: message.Body ?? '',
      attempt: 1,
    }));
    expect((await processQueuedBatch(records, deps)).failed).toEqual([]);
    for (const message of Messages) {
      await harness.peers.sqs.send(
        new DeleteMessageCommand({ QueueUrl: harness.peers.queueUrl, ReceiptHandle: message.ReceiptHandle }),
      );
    }

    expect(exported.map((put) => put.key)).toEqual(['data-requests/demo/4242.json']);
    const record = JSON.parse(exported[0]?.json ?? '{}');
    expect(record).toMatchObject({
      tenant: 'demo',
      externalId: id,
      requestId: '4242',
      requestedBy: 'shopify',
    });
    expect(record.state).toMatchObject({
      profileId: expect.any(String),
      identifierDigests: expect.any(Object),
    });
    expect(record.audit).toMatchObject([{ externalId: id, outcome: 'applied' }]);
    expect(JSON.stringify(record)).not.toContain(emailOf(id));
  });
});

describe('identity-sync export and forget', () => {
  it("export prints the customer's record without writing; forget --yes erases it through the same core", async () => {
    const id = customer();
    klaviyo.seedProfile({ external_id: id, email: `before.${id}@example.com` });
    await update(id);
    await harness.drain();
    const before = await tableText();

    const exported = captureIo(harness.peers.env);
    expect(await identitySync(['export', id, '--tenant', 'demo'], exported.io)).toBe(0);
    expect(JSON.parse(exported.written.stdout)).toMatchObject({
      tenant: 'demo',
      externalId: id,
      requestedBy: 'cli',
      state: { profileId: expect.any(String) },
      audit: [{ externalId: id, outcome: 'applied' }],
    });
    expect(await tableText()).toEqual(before);

    const forgot = captureIo(harness.peers.env);
    expect(await identitySync(['forget', id, '--tenant', 'demo'], forgot.io)).toBe(2);
    expect(naming(await tableText(), id).length).toBeGreaterThan(0);
    expect(
      await identitySync(['forget', id, '--tenant', 'demo', '--yes', '--settle-seconds', '0'], forgot.io),
    ).toBe(0);
    expect(forgot.written.stdout).toMatch(/1 state item\(s\), 1 audit item\(s\), 0 parked letter/);
    expect(naming(await tableText(), id)).toEqual([]);
  });

  it('forget sweeps again what a change being applied at that moment wrote after the erasure', async () => {
    const id = customer();
    klaviyo.seedProfile({ external_id: id });
    await update(id);
    await harness.drain();
    const forgot = captureIo(harness.peers.env);
    const forgetting = identitySync(
      ['forget', id, '--tenant', 'demo', '--yes', '--settle-seconds', '2'],
      forgot.io,
    );
    while (!forgot.written.stdout.includes('Waiting'))
      await new Promise((resolve) => setTimeout(resolve, 20));
    // A change the worker read the customer's state for before the erasure records it after.
    await createDynamoSyncState(harness.peers.dynamodb, TABLE_NAME).recordApplied({
      tenant: 'demo',
      externalId: id,
      occurredAt: '2026-12-05T12:00:00.000Z',
      sourceEventId: 'in-flight',
      profileId: 'p-in-flight',
    });
    expect(naming(await tableText(), id).length).toBeGreaterThan(0);
    expect(await forgetting).toBe(0);
    expect(forgot.written.stdout).toMatch(/Swept again: 1 state item\(s\)/);
    expect(naming(await tableText(), id)).toEqual([]);
  });
});

describe('shop/redact', () => {
  it("leaves nothing of the shop's tenant", async () => {
    const ids = [customer(), customer()];
    for (const id of ids) {
      klaviyo.seedProfile({ external_id: id });
      await update(id);
    }
    await harness.drain();
    expect(await send(`{"shop_id":954889,"shop_domain":"${SHOP}"}`, 'shop/redact')).toEqual({
      statusCode: 200,
      body: { status: 'queued' },
    });
    await harness.drain();
    const items = await tableText();
    expect(items.filter((item) => item.includes('"customer#demo#'))).toEqual([]);
    expect(items.filter((item) => item.includes('"erased#demo#'))).toEqual([]);
    expect(items.filter((item) => item.includes('"erased#demo"'))).toHaveLength(1);
  });
});
