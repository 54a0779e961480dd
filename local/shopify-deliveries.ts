import type { ComplianceTopic } from '../lib/shopify/customer-payload.js';
import { signShopifyBody } from '../lib/shopify/signature.js';

/**
 * Shopify customer payloads shaped after Shopify's published samples (API 2024-10 to 2026-04;
 * 2026-07 and 2026-10 are assumed the same for the fields we read, unconfirmed), written as raw
 * JSON text so ids beyond 2^53 keep their exact digits.
 */
export const BIG_CUSTOMER_ID = '706405506930370084';

/** The newest Shopify API version, what the deliveries carry unless told otherwise. */
export const LATEST_API_VERSION = '2026-10';

export interface CustomerFields {
  id?: string;
  email?: string | null;
  phone?: string | null;
  updatedAt?: string;
  /** 2024-10 and earlier also carry tags and consent objects. */
  legacyFields?: boolean;
  /** Leave out admin_graphql_api_id, so the numeric id is all there is. */
  withoutGraphqlId?: boolean;
}

export function customerPayload(fields: CustomerFields = {}): string {
  const id = fields.id ?? BIG_CUSTOMER_ID;
  const json = (value: unknown) => JSON.stringify(value);
  const members = [
    `"id":${id}`,
    `"created_at":"2025-03-01T09:00:00-05:00"`,
    `"updated_at":${json(fields.updatedAt ?? '2026-05-01T12:00:00-04:00')}`,
    `"first_name":"Ada"`,
    `"last_name":"Lovelace"`,
    `"state":"enabled"`,
    `"note":null`,
    `"verified_email":true`,
    `"multipass_identifier":null`,
    `"tax_exempt":false`,
    `"email":${json(fields.email === undefined ? 'ada@example.com' : fields.email)}`,
    `"phone":${json(fields.phone === undefined ? '+14155550123' : fields.phone)}`,
    `"currency":"USD"`,
    `"addresses":[{"id":9876543210,"customer_id":${id},"phone":"555-555-5555","default":true}]`,
    `"tax_exemptions":[]`,
    ...(fields.withoutGraphqlId ? [] : [`"admin_graphql_api_id":"gid://shopify/Customer/${id}"`]),
    `"default_address":{"id":9876543210,"customer_id":${id},"phone":"555-555-5555","default":true}`,
    ...(fields.legacyFields
      ? [
          `"tags":"vip"`,
          `"orders_count":3`,
          `"email_marketing_consent":{"state":"subscribed","opt_in_level":"single_opt_in","consent_updated_at":null}`,
          `"sms_marketing_consent":null`,
        ]
      : []),
  ];
  return `{${members.join(',')}}`;
}

/** Shopify's mandatory compliance payloads, shaped after its documentation (FACTS: "Privacy"). */
export function compliancePayload(
  topic: ComplianceTopic,
  {
    shop,
    customerId = BIG_CUSTOMER_ID,
    requestId = '9999',
  }: { shop: string; customerId?: string; requestId?: string },
): string {
  const shopPart = `"shop_id":954889,"shop_domain":${JSON.stringify(shop)}`;
  // Shopify names the customer's email and phone too; nothing of ours reads them.
  const customer = `"customer":{"id":${customerId},"email":null,"phone":null}`;
  if (topic === 'shop/redact') return `{${shopPart}}`;
  if (topic === 'customers/redact') return `{${shopPart},${customer},"orders_to_redact":[]}`;
  return `{${shopPart},"orders_requested":[],${customer},"data_request":{"id":${requestId}}}`;
}

export interface DeliveryOptions {
  secret: string;
  shop?: string;
  topic?: string;
  webhookId?: string;
  eventId?: string;
  apiVersion?: string;
  signature?: string | null;
}

/** The headers Shopify sends with a delivery, signed over the exact body. */
export function shopifyHeaders(body: string, options: DeliveryOptions): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-shopify-topic': options.topic ?? 'customers/update',
    'x-shopify-shop-domain': options.shop ?? 'demo-shop.myshopify.com',
    'x-shopify-api-version': options.apiVersion ?? LATEST_API_VERSION,
    'x-shopify-webhook-id': options.webhookId ?? crypto.randomUUID(),
    'x-shopify-event-id': options.eventId ?? crypto.randomUUID(),
    'x-shopify-triggered-at': new Date().toISOString(),
  };
  const signature =
    options.signature === undefined ? signShopifyBody(body, options.secret) : options.signature;
  if (signature !== null) headers['x-shopify-hmac-sha256'] = signature;
  return headers;
}
