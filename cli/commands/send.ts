import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { erpReceiptSchema } from '../../lib/erp/contract.js';
import { signErpRequest } from '../../lib/erp/sign.js';
import {
  compliancePayload,
  customerPayload,
  LATEST_API_VERSION,
  shopifyHeaders,
} from '../../local/shopify-deliveries.js';
import { customerMergePayload, shopifyEvent } from '../../local/shopify-events.js';
import { type CliIo, EXIT_ATTENTION, EXIT_OK, runCommand, UsageError } from '../io.js';
import { printableLines } from '../terminal.js';

/**
 * The Shopify topics `send` builds a body for, from its options. Adding a topic is one line here
 * (its builder gets the parsed options and returns the payload's JSON text).
 */
const SHOPIFY_TOPICS: Record<string, (change: SendOptions, shop: string) => string> = {
  'customers/update': (change) =>
    customerPayload({
      id: required(change['external-id'], '--external-id'),
      email: orNull(change.email),
      phone: orNull(change.phone),
      updatedAt: change['occurred-at'] ?? new Date().toISOString(),
    }),
  'customers/merge': (change) =>
    customerMergePayload({
      kept: required(change['external-id'], '--external-id (the customer kept)'),
      deleted: required(change['deleted-id'], '--deleted-id (the customer merged away)'),
    }),
  'customers/redact': (change, shop) =>
    compliancePayload('customers/redact', {
      shop,
      customerId: required(change['external-id'], '--external-id'),
    }),
  'customers/data_request': (change, shop) =>
    compliancePayload('customers/data_request', {
      shop,
      customerId: required(change['external-id'], '--external-id'),
      requestId: change['request-id'] ?? String(Date.now()),
    }),
  'shop/redact': (_change, shop) => compliancePayload('shop/redact', { shop }),
};

const USAGE = `Usage: identity-sync send [--as erp|shopify|eventbridge] [options] (--file PATH | CHANGE)

Signs a change and delivers it as its source would, then prints the answer:
  erp          POST URL/webhooks/erp/T, signed with the tenant's ERP secret (Standard Webhooks)
  shopify      POST URL/webhooks/shopify, a Shopify webhook signed with the app's secret
  eventbridge  a Shopify event as Amazon EventBridge hands it to the shopify-eventbridge
               function, invoked through a Lambda endpoint (serverless-offline's, locally)
Every default comes from the environment npm start prints: against the local stack only the
change is needed.

Options:
  --as SOURCE            erp (default), shopify or eventbridge
  --topic TOPIC          shopify, eventbridge, one of: ${Object.keys(SHOPIFY_TOPICS)
    .map((topic, i) => (i === 0 ? `${topic} (default)` : topic))
    .join(', ')}
  --url URL              base URL of the API, e.g. http://127.0.0.1:3000
                         (default: IDENTITY_SYNC_API_URL)
  --invoke-url URL       eventbridge: the function's invocation URL
                         (default: SHOPIFY_EVENTBRIDGE_INVOKE_URL)
  --tenant T             erp: tenant whose endpoint and secret apply (default: DEFAULT_TENANT)
  --secret S             erp: the tenant's whsec_… secret (default: ERP_WEBHOOK_SECRET);
                         shopify: the app's secret (default: SHOPIFY_WEBHOOK_SECRET)
  --shop DOMAIN          shopify, eventbridge: the shop (default: SHOPIFY_SHOP_DOMAIN)
  --api-version V        shopify, eventbridge: X-Shopify-API-Version (default: ${LATEST_API_VERSION})
  --file PATH            send this JSON as it is (erp: one change, or {"changes": [...]};
                         shopify, eventbridge: the topic's payload)
  -h, --help             this help
CHANGE, built from options instead of a file:
  --external-id ID       the customer's id (required; customers/merge: the customer kept)
  --deleted-id ID        customers/merge: the customer merged into it
  --request-id N         customers/data_request: Shopify's data_request id (default: now in ms)
  --email E, --phone P   new identifiers; the value null clears one, leaving it out keeps it
                         (shopify, eventbridge: left out, a sample value)
  --previous-email E     erp: the email before the change, to find the profile by
  --occurred-at T        when it changed, ISO 8601 with offset (default: now; shopify: updated_at)

Exit code: 0 when the answer is 2xx (erp: and every change was accepted), 1 when not, 2 for
usage errors. See docs/erp.md.`;

const parseSendArgs = (args: string[]) =>
  parseArgs({
    args,
    strict: true,
    options: {
      as: { type: 'string', default: 'erp' },
      topic: { type: 'string', default: 'customers/update' },
      url: { type: 'string' },
      'invoke-url': { type: 'string' },
      tenant: { type: 'string' },
      secret: { type: 'string' },
      shop: { type: 'string' },
      'api-version': { type: 'string', default: LATEST_API_VERSION },
      file: { type: 'string' },
      'external-id': { type: 'string' },
      'deleted-id': { type: 'string' },
      'request-id': { type: 'string' },
      email: { type: 'string' },
      phone: { type: 'string' },
      'previous-email': { type: 'string' },
      'occurred-at': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;

type SendOptions = ReturnType<typeof parseSendArgs>;

/** What to POST where, and how to read the answer. */
interface Delivery {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Whether the answer (2xx already) says the change was taken. */
  taken: (text: string, response: Response) => boolean;
}

/** `identity-sync send`: delivers a change as an ERP, Shopify or EventBridge would. */
export async function send(args: string[], io: CliIo): Promise<number> {
  return runCommand(io, USAGE, async () => {
    const options = parseSendArgs(args);
    if (options.help) {
      io.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    }
    const delivery = await deliveryOf(options, io.env);
    let response: Response;
    try {
      response = await fetch(delivery.url, {
        method: 'POST',
        headers: delivery.headers,
        body: delivery.body,
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      const { cause, message } = error as Error;
      throw new Error(`POST ${delivery.url} failed: ${cause instanceof Error ? cause.message : message}`);
    }
    const text = await response.text();
    io.stdout.write(`HTTP ${response.status}\n${printableLines(pretty(text))}\n`);
    return response.ok && delivery.taken(text, response) ? EXIT_OK : EXIT_ATTENTION;
  });
}

async function deliveryOf(options: SendOptions, env: NodeJS.ProcessEnv): Promise<Delivery> {
  if (options.as === 'erp') return erpDelivery(options, env);
  if (options.as !== 'shopify' && options.as !== 'eventbridge')
    throw new UsageError(`--as must be erp, shopify or eventbridge, got '${options.as}'`);
  const topic = options.topic;
  const build = SHOPIFY_TOPICS[topic];
  if (!build)
    throw new UsageError(`--topic must be one of ${Object.keys(SHOPIFY_TOPICS).join(', ')}, got '${topic}'`);
  const shop = required(options.shop ?? env.SHOPIFY_SHOP_DOMAIN, '--shop (or SHOPIFY_SHOP_DOMAIN)');
  const body = options.file ? await fileOf(options) : build(options, shop);
  const apiVersion = options['api-version'];

  if (options.as === 'shopify') {
    const secret = required(
      options.secret ?? env.SHOPIFY_WEBHOOK_SECRET,
      '--secret (or SHOPIFY_WEBHOOK_SECRET)',
    );
    return {
      url: endpointOf(baseUrlOf(options, env), 'webhooks/shopify'),
      headers: shopifyHeaders(body, { secret, shop, topic, apiVersion }),
      body,
      taken: () => true,
    };
  }
  const invokeUrl = required(
    options['invoke-url'] ?? env.SHOPIFY_EVENTBRIDGE_INVOKE_URL,
    '--invoke-url (or SHOPIFY_EVENTBRIDGE_INVOKE_URL)',
  );
  return {
    url: absolute(invokeUrl, '--invoke-url'),
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(
      shopifyEvent(body, { topic, shop, apiVersion, triggeredAt: new Date().toISOString() }),
    ),
    // Lambda answers 200 with the error as the body when the function throws.
    taken: (_text, response) => !response.headers.has('x-amz-function-error'),
  };
}

async function erpDelivery(options: SendOptions, env: NodeJS.ProcessEnv): Promise<Delivery> {
  const tenant = required(options.tenant ?? env.DEFAULT_TENANT, '--tenant (or DEFAULT_TENANT)');
  const secret = options.secret ?? env.ERP_WEBHOOK_SECRET;
  if (!secret?.startsWith('whsec_'))
    throw new UsageError('a whsec_… secret is required (--secret or ERP_WEBHOOK_SECRET)');
  const url = endpointOf(baseUrlOf(options, env), `webhooks/erp/${encodeURIComponent(tenant)}`);
  const body = options.file ? await fileOf(options) : erpChangeOf(options);
  return {
    url,
    headers: { 'content-type': 'application/json', ...signErpRequest(body, secret) },
    body,
    taken(text) {
      const receipt = erpReceiptSchema.safeParse(parseJson(text));
      return receipt.success && receipt.data.results.every((result) => result.status === 'accepted');
    },
  };
}

function erpChangeOf(options: SendOptions): string {
  const change = {
    externalId: required(options['external-id'], '--file or --external-id'),
    email: orNull(options.email),
    phoneNumber: orNull(options.phone),
    ...(options['previous-email'] && { previous: { email: options['previous-email'] } }),
    occurredAt: options['occurred-at'] ?? new Date().toISOString(),
  };
  // JSON.stringify leaves out the identifiers not given: absent leaves them as they are.
  return JSON.stringify(change);
}

async function fileOf(options: SendOptions): Promise<string> {
  if (options['external-id']) throw new UsageError('give --file or --external-id, not both');
  return readFile(options.file as string, 'utf8').catch((error: Error) => {
    throw new UsageError(`cannot read --file: ${error.message}`);
  });
}

const baseUrlOf = (options: SendOptions, env: NodeJS.ProcessEnv) =>
  required(options.url ?? env.IDENTITY_SYNC_API_URL, '--url (or IDENTITY_SYNC_API_URL)');

function required(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`${what} is required`);
  return value;
}

const orNull = (value: string | undefined) => (value === 'null' ? null : value);

function endpointOf(baseUrl: string, path: string): string {
  const base = absolute(baseUrl, '--url');
  return new URL(path, base.endsWith('/') ? base : `${base}/`).href;
}

function absolute(url: string, option: string): string {
  if (!URL.canParse(url)) {
    throw new UsageError(`${option} must be an absolute URL such as http://127.0.0.1:3000, got '${url}'`);
  }
  return url;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const pretty = (text: string) => {
  const json = parseJson(text);
  return json === undefined ? text : JSON.stringify(json, null, 2);
};
