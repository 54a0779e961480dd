import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { send } from '../../cli/commands/send.js';
import { EXIT_USAGE } from '../../cli/io.js';
import { parseShopifyComplianceRequest } from '../../lib/shopify/customer-payload.js';
import { signShopifyBody } from '../../lib/shopify/signature.js';
import { captureIo } from '../support/cli.js';
import { useTempDir } from '../support/temp-dir.js';

const erpSendDir = useTempDir('erp-send');

/**
 * The send command against a stand-in endpoint on loopback, which checks each request's
 * signature with the reference library (standardwebhooks) and answers as told.
 */
const SECRET = `whsec_${Buffer.from('cli-test-signing-key').toString('base64')}`;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  signedCorrectly: boolean;
}

let server: Server;
let baseUrl: string;
let received: Received[] = [];
let answer: { status: number; body: string } = { status: 202, body: '' };
let tempDir: string;

beforeAll(async () => {
  server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    let signedCorrectly = true;
    try {
      new Webhook(SECRET).verify(body, request.headers as Record<string, string>);
    } catch {
      signedCorrectly = false;
    }
    received.push({ path: String(request.url), headers: request.headers, body, signedCorrectly });
    response.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tempDir = erpSendDir();
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  received = [];
  answer = { status: 202, body: JSON.stringify({ results: [{ index: 0, status: 'accepted' }] }) };
});

/** The options that address the test tenant's endpoint on the loopback server. */
const toAcme = (url = baseUrl) => ['--url', url, '--tenant', 'acme', '--secret', SECRET];

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const { io, written } = captureIo(env);
  const code = await send(args, io);
  return { code, ...written };
}

describe('send', () => {
  it('signs a change built from the options and posts it to the tenant’s endpoint', async () => {
    const result = await run([
      ...toAcme(),
      '--external-id',
      'C-1',
      '--email',
      'ada@example.com',
      '--phone',
      'null',
      '--previous-email',
      'ada.old@example.com',
      '--occurred-at',
      '2026-05-01T12:00:00Z',
    ]);
    expect(result.code).toBe(0);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ path: '/webhooks/erp/acme', signedCorrectly: true });
    expect(JSON.parse(received[0]?.body ?? '')).toEqual({
      externalId: 'C-1',
      email: 'ada@example.com',
      phoneNumber: null,
      previous: { email: 'ada.old@example.com' },
      occurredAt: '2026-05-01T12:00:00Z',
    });
    expect(result.stdout).toContain('HTTP 202');
    expect(result.stdout).toContain('"status": "accepted"');
  });

  it('leaves out identifiers not given, dates the change now, and takes the secret from the environment', async () => {
    const before = Date.now();
    const result = await run(
      ['--url', `${baseUrl}/`, '--tenant', 'acme', '--external-id', 'C-2', '--phone', '+14155550123'],
      {
        ERP_WEBHOOK_SECRET: SECRET,
      },
    );
    expect(result.code).toBe(0);
    const body = JSON.parse(received[0]?.body ?? '');
    expect(body).not.toHaveProperty('email');
    expect(body).not.toHaveProperty('previous');
    expect(Date.parse(body.occurredAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(received[0]).toMatchObject({ path: '/webhooks/erp/acme', signedCorrectly: true });
  });

  it('takes every default from the environment npm start prints', async () => {
    const result = await run(['--external-id', 'C-7', '--email', 'ada@example.com'], {
      IDENTITY_SYNC_API_URL: baseUrl,
      DEFAULT_TENANT: 'acme',
      ERP_WEBHOOK_SECRET: SECRET,
    });
    expect(result.code).toBe(0);
    expect(received[0]).toMatchObject({ path: '/webhooks/erp/acme', signedCorrectly: true });
  });

  it('sends a Shopify customers/update and customers/merge, signed as Shopify signs them', async () => {
    const env = {
      IDENTITY_SYNC_API_URL: baseUrl,
      SHOPIFY_WEBHOOK_SECRET: 'shpss_test',
      SHOPIFY_SHOP_DOMAIN: 'acme.myshopify.com',
    };
    answer = { status: 200, body: '' };
    const update = await run(
      ['--as', 'shopify', '--external-id', '706405506930370084', '--email', 'ada@example.com'],
      env,
    );
    const merge = await run(
      ['--as', 'shopify', '--topic', 'customers/merge', '--external-id', '11', '--deleted-id', '22'],
      env,
    );
    expect([update.code, merge.code]).toEqual([0, 0]);
    const [updated, merged] = received;
    expect(updated).toMatchObject({
      path: '/webhooks/shopify',
      headers: {
        'x-shopify-topic': 'customers/update',
        'x-shopify-shop-domain': 'acme.myshopify.com',
        'x-shopify-api-version': '2026-10',
      },
    });
    expect(updated?.headers['x-shopify-hmac-sha256']).toBe(
      signShopifyBody(updated?.body ?? '', 'shpss_test'),
    );
    // The id's digits as they are, beyond 2^53.
    expect(updated?.body).toContain('"id":706405506930370084');
    expect(updated?.body).toContain('"email":"ada@example.com"');
    expect(merged?.headers['x-shopify-topic']).toBe('customers/merge');
    expect(JSON.parse(merged?.body ?? '')).toMatchObject({
      admin_graphql_api_customer_kept_id: 'gid://shopify/Customer/11',
      admin_graphql_api_customer_deleted_id: 'gid://shopify/Customer/22',
    });
  });

  it.each([
    ['customers/redact', ['--external-id', '706405506930370084'], { customerId: '706405506930370084' }],
    [
      'customers/data_request',
      ['--external-id', '11', '--request-id', '77'],
      { customerId: '11', requestId: '77' },
    ],
    ['shop/redact', [], {}],
  ] as const)(
    'sends the compliance topic %s, signed, in a payload the intake reads',
    async (topic, args, asked) => {
      answer = { status: 200, body: '' };
      const env = {
        IDENTITY_SYNC_API_URL: baseUrl,
        SHOPIFY_WEBHOOK_SECRET: 'shpss_test',
        SHOPIFY_SHOP_DOMAIN: 'acme.myshopify.com',
      };
      const result = await run(['--as', 'shopify', '--topic', topic, ...args], env);
      expect(result.code).toBe(0);
      const [sent] = received;
      expect(sent?.headers['x-shopify-topic']).toBe(topic);
      expect(sent?.headers['x-shopify-hmac-sha256']).toBe(signShopifyBody(sent?.body ?? '', 'shpss_test'));
      expect(parseShopifyComplianceRequest(sent?.body ?? '', topic)).toEqual({
        ok: true,
        request: expect.objectContaining({ shopDomain: 'acme.myshopify.com', ...asked }),
      });
    },
  );

  it('invokes the EventBridge function with an event of the partner event source', async () => {
    answer = { status: 200, body: JSON.stringify({ status: 'queued' }) };
    const result = await run(['--as', 'eventbridge', '--external-id', '42', '--email', 'ada@example.com'], {
      SHOPIFY_EVENTBRIDGE_INVOKE_URL: `${baseUrl}/2015-03-31/functions/f/invocations`,
      SHOPIFY_SHOP_DOMAIN: 'acme.myshopify.com',
    });
    expect(result.code).toBe(0);
    expect(received[0]?.path).toBe('/2015-03-31/functions/f/invocations');
    expect(JSON.parse(received[0]?.body ?? '')).toMatchObject({
      'detail-type': 'shopifyWebhook',
      source: expect.stringMatching(/^aws\.partner\/shopify\.com\//),
      detail: {
        payload: { id: 42, email: 'ada@example.com' },
        metadata: { 'X-Shopify-Topic': 'customers/update', 'X-Shopify-Shop-Domain': 'acme.myshopify.com' },
      },
    });
  });

  it('sends a file’s bytes as they are', async () => {
    const file = join(tempDir, 'batch.json');
    const text =
      '{ "changes": [ {"externalId": "C-3", "email": null, "occurredAt": "2026-05-01T12:00:00Z"} ] }\n';
    await writeFile(file, text);
    const result = await run(['--url', baseUrl, '--tenant', 'acme', '--secret', SECRET, '--file', file]);
    expect(result.code).toBe(0);
    expect(received[0]?.body).toBe(text);
    expect(received[0]?.signedCorrectly).toBe(true);
  });

  it('exits 1 when a change was rejected, printing why', async () => {
    answer.body = JSON.stringify({
      results: [
        { index: 0, status: 'accepted' },
        {
          index: 1,
          status: 'rejected',
          errors: [{ path: '/phoneNumber', message: 'is not a phone number' }],
        },
      ],
    });
    const result = await run([...toAcme(), '--external-id', 'C-4', '--email', 'a@example.com']);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('is not a phone number');
  });

  it.each([
    [401, '{"error":"invalid signature"}'],
    [400, '{"error":"not a change or a batch of changes","errors":[]}'],
    [503, '{"error":"temporarily unable to queue"}'],
    [200, '{"status":"queued"}'],
  ])('exits 1 on HTTP %i with %s', async (status, body) => {
    answer = { status, body };
    const result = await run([...toAcme(), '--external-id', 'C-5', '--email', 'a@example.com']);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`HTTP ${status}`);
  });

  it('exits 1 when the endpoint cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const result = await run([
      ...toAcme(`http://127.0.0.1:${port}`),
      '--external-id',
      'C-6',
      '--email',
      'a@example.com',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/failed/);
  });

  it.each([
    [
      'no --url',
      ['--tenant', 'acme', '--secret', SECRET, '--external-id', 'C'],
      '--url (or IDENTITY_SYNC_API_URL) is required',
    ],
    [
      'no --tenant',
      ['--url', 'http://127.0.0.1:9', '--secret', SECRET, '--external-id', 'C'],
      '--tenant (or DEFAULT_TENANT) is required',
    ],
    ['an unknown source', ['--as', 'kafka'], "--as must be erp, shopify or eventbridge, got 'kafka'"],
    [
      'an unknown topic',
      ['--as', 'shopify', '--topic', 'orders/create'],
      "--topic must be one of customers/update, customers/merge, customers/redact, customers/data_request, shop/redact, got 'orders/create'",
    ],
    ['no secret', ['--url', 'http://127.0.0.1:9', '--tenant', 'acme', '--external-id', 'C'], 'whsec_'],
    [
      'a secret of another kind',
      ['--url', 'http://127.0.0.1:9', '--tenant', 'a', '--secret', 'shpss_x', '--external-id', 'C'],
      'whsec_',
    ],
    [
      'no change',
      ['--url', 'http://127.0.0.1:9', '--tenant', 'acme', '--secret', SECRET],
      '--file or --external-id',
    ],
    [
      'a relative --url',
      ['--url', 'localhost', '--tenant', 'acme', '--secret', SECRET, '--external-id', 'C'],
      'absolute URL',
    ],
    ['an unknown option', ['--url', 'http://127.0.0.1:9', '--bogus', 'x'], "'--bogus'"],
    [
      'a missing file',
      ['--url', 'http://127.0.0.1:9', '--tenant', 'a', '--secret', SECRET, '--file', '/nonexistent/x.json'],
      'cannot read --file',
    ],
  ])('exits 2 with one line and where the help is on %s, sending nothing', async (_, args, message) => {
    const result = await run(args);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toMatch(/^identity-sync: [^\n]+\nsee identity-sync send --help\n$/);
    expect(received).toEqual([]);
  });

  it('prints its usage on --help, sending nothing', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: identity-sync send');
    expect(received).toEqual([]);
  });
});
