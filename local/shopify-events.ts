import { LATEST_API_VERSION } from './shopify-deliveries.js';

/**
 * Shopify's `customers/merge` payload and its deliveries through Amazon EventBridge, shaped after
 * Shopify's documentation (the merge payload's fields; an EventBridge event's envelope, with the
 * topic's payload already parsed and the X-Shopify-* headers in `detail.metadata`). One envelope
 * for the tests, the benchmarks and `identity-sync send --as eventbridge`.
 */
export const PARTNER_EVENT_SOURCE = 'aws.partner/shopify.com/1234567/identity-sync';

export interface MergeFields {
  kept: string;
  deleted: string;
  status?: string;
}

/** A `customers/merge` body as Shopify sends it, as raw JSON text (ids only as GraphQL ids). */
export function customerMergePayload({ kept, deleted, status = 'completed' }: MergeFields): string {
  return JSON.stringify({
    admin_graphql_api_customer_kept_id: `gid://shopify/Customer/${kept}`,
    admin_graphql_api_customer_deleted_id: `gid://shopify/Customer/${deleted}`,
    admin_graphql_api_job_id:
      status === 'completed' ? 'gid://shopify/Job/4e7ab7b4-0a1c-4b7e-9d47-0c1d2e3f4a5b' : null,
    status,
    errors:
      status === 'failed'
        ? [{ customer_ids: [Number(kept), Number(deleted)], field: 'email', message: 'Email is invalid' }]
        : [],
  });
}

export interface ShopifyEventOptions {
  topic?: string;
  shop?: string;
  webhookId?: string;
  triggeredAt?: string;
  source?: string;
  /** X-Shopify-API-Version. */
  apiVersion?: string;
  /** The partner event's AWS account (the bus's). */
  account?: string;
  /** The metadata's header names as given (Shopify's own capitalisation) or lower-cased. */
  lowerCaseMetadata?: boolean;
}

/**
 * An EventBridge event from Shopify's partner event source carrying `body` (a payload's JSON text):
 * parsed as EventBridge delivers it, so a numeric id above 2^53 loses digits just as it does there.
 */
export function shopifyEvent(body: string, options: ShopifyEventOptions = {}) {
  const triggeredAt = options.triggeredAt ?? '2026-05-01T11:59:58.000Z';
  const metadata: Record<string, string> = {
    'Content-Type': 'application/json',
    'X-Shopify-Topic': options.topic ?? 'customers/update',
    'X-Shopify-Shop-Domain': options.shop ?? 'demo-shop.myshopify.com',
    'X-Shopify-API-Version': options.apiVersion ?? LATEST_API_VERSION,
    'X-Shopify-Webhook-Id': options.webhookId ?? crypto.randomUUID(),
    'X-Shopify-Event-Id': crypto.randomUUID(),
    'X-Shopify-Triggered-At': triggeredAt,
    'X-Shopify-Hmac-SHA256': 'c2lnbmVkIGJ5IHNob3BpZnksIG5vdCBjaGVja2VkIGhlcmU=',
  };
  return {
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'shopifyWebhook',
    source: options.source ?? PARTNER_EVENT_SOURCE,
    account: options.account ?? '123456789012',
    time: triggeredAt.replace(/\.\d+Z$/, 'Z'),
    region: 'us-east-1',
    resources: [],
    detail: {
      payload: JSON.parse(body) as Record<string, unknown>,
      metadata: options.lowerCaseMetadata
        ? Object.fromEntries(Object.entries(metadata).map(([name, value]) => [name.toLowerCase(), value]))
        : metadata,
    },
  };
}
