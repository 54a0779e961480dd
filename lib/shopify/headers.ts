import type { WebhookRequest } from '../http.js';

/**
 * The X-Shopify-* headers of a delivery: the one place their names are written and read. An
 * HTTPS webhook carries them as headers, an EventBridge event in `detail.metadata`; both reach
 * this module lower-cased (lib/http.ts, lowerCaseHeaders).
 */
const HEADER_NAMES = {
  topic: 'X-Shopify-Topic',
  shop: 'X-Shopify-Shop-Domain',
  apiVersion: 'X-Shopify-API-Version',
  webhookId: 'X-Shopify-Webhook-Id',
  eventId: 'X-Shopify-Event-Id',
  triggeredAt: 'X-Shopify-Triggered-At',
  signature: 'X-Shopify-Hmac-Sha256',
} as const;

export type ShopifyHeader = keyof typeof HEADER_NAMES;

/** A header's name as Shopify's documentation writes it, for messages. */
export const shopifyHeaderName = (header: ShopifyHeader): string => HEADER_NAMES[header];

/** One header's value, from lower-cased headers. */
export const shopifyHeader = (
  headers: WebhookRequest['headers'],
  header: ShopifyHeader,
): string | undefined => headers[HEADER_NAMES[header].toLowerCase()];

/**
 * A delivery's headers read once, as Shopify's own `webhooks.validate` answers: the delivery's
 * facts when its topic is one we process, else why it is not (it is then answered and ignored).
 * Whether it is authentic is not said here: the signature is checked over the body (signature.ts),
 * or the transport vouches for it (EventBridge).
 */
export type ShopifyDelivery =
  | {
      valid: true;
      topic: string;
      shop?: string;
      webhookId?: string;
      eventId?: string;
      triggeredAt?: string;
      apiVersion?: string;
    }
  | { valid: false; reason: string };

export function readShopifyDelivery(
  headers: WebhookRequest['headers'],
  processedTopics: ReadonlySet<string>,
): ShopifyDelivery {
  const topic = shopifyHeader(headers, 'topic');
  if (!topic || !processedTopics.has(topic)) {
    return { valid: false, reason: `topic ${topic ?? '(none)'} is not processed` };
  }
  const facts = {
    shop: shopifyHeader(headers, 'shop'),
    webhookId: shopifyHeader(headers, 'webhookId'),
    eventId: shopifyHeader(headers, 'eventId'),
    triggeredAt: shopifyHeader(headers, 'triggeredAt'),
    apiVersion: shopifyHeader(headers, 'apiVersion'),
  };
  return {
    valid: true,
    topic,
    ...Object.fromEntries(Object.entries(facts).filter(([, value]) => value !== undefined)),
  };
}
