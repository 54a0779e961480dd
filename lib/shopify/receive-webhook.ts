import { type Config, tenantForShop } from '../config.js';
import type { WebhookRequest } from '../http.js';
import type { ComplianceRequest, CustomerMerge, IdentityChange, QueuedChange } from '../identity-change.js';
import { contentIdOf } from '../intake/letters.js';
import type { Reading, VerifiedDelivery, WebhookSource } from '../intake/source.js';
import { normalizeEmail, normalizePhone } from '../normalize.js';
import { maskPhone } from '../observability/mask.js';
import {
  COMPLIANCE_TOPICS,
  type ComplianceTopic,
  parseShopifyComplianceRequest,
  parseShopifyCustomer,
  parseShopifyCustomerMerge,
  type ShopifyCustomer,
  type ShopifyCustomerMerge,
} from './customer-payload.js';
import { readShopifyDelivery, type ShopifyDelivery, shopifyHeader, shopifyHeaderName } from './headers.js';
import { type OrderTimeInputs, orderTimeOf } from './order-time.js';
import { isValidShopifySignature } from './signature.js';

const CUSTOMER_MERGE_TOPIC = 'customers/merge';
export const PROCESSED_TOPICS = new Set([
  'customers/create',
  'customers/update',
  CUSTOMER_MERGE_TOPIC,
  ...Object.keys(COMPLIANCE_TOPICS),
]);
const isComplianceTopic = (topic: string): topic is ComplianceTopic =>
  Object.hasOwn(COMPLIANCE_TOPICS, topic);
/**
 * Shopify customer payloads take a few KiB (a customer with hundreds of addresses, tens): far
 * larger is not a customer payload, and is not read.
 */
export const SHOPIFY_MAX_BODY_BYTES = 256 * 1024;

/**
 * Shopify's webhooks `customers/create`, `customers/update` and `customers/merge` (other topics
 * are answered and ignored): signed with the app's client secret over the raw body, the tenant
 * found from the shop's domain through SHOP_TENANTS (a shop not there is kept as unknown_tenant
 * when signed, never given a tenant by default), one identity change (or customer merge) per delivery.
 * `headersAuthentic`: the headers came through an authenticated transport (EventBridge), so their
 * time is trusted as the body is (lib/shopify/order-time.ts).
 */
export function shopifyWebhookSource(
  config: Pick<Config, 'shopTenants' | 'defaultPhoneRegion'>,
  { headersAuthentic = false }: { headersAuthentic?: boolean } = {},
): WebhookSource {
  // One app's client secret signs for every shop that installs it: a delivery from a shop of no
  // tenant may still be the app's own, signed with the secret of a tenant it does serve.
  const mappedTenants = [...new Set(Object.values(config.shopTenants))];
  return {
    name: 'shopify',
    maxBodyBytes: SHOPIFY_MAX_BODY_BYTES,
    tenantOf: (request) => tenantForShop(config, shopifyHeader(request.headers, 'shop')),
    signersWhenUnknown: () => mappedTenants,
    deliveryIdOf: (request) => shopifyHeader(request.headers, 'webhookId'),
    unsignedReason: (request) =>
      shopifyHeader(request.headers, 'signature')
        ? undefined
        : `${shopifyHeaderName('signature')} is required`,
    secretsOf: (secret) => secret.shopifyWebhookSecrets,
    isSignedWith: (request, secrets) =>
      isValidShopifySignature(request.body, shopifyHeader(request.headers, 'signature'), secrets),
    // Only the body is signed: its bytes, not the (unsigned) webhook or event id, name a delivery's content.
    replayKeyOf: (request) => contentIdOf(request.body),
    letterContext: (request) => ({
      topic: shopifyHeader(request.headers, 'topic'),
      shop: shopifyHeader(request.headers, 'shop'),
    }),
    read: (request, delivery) => readDelivery(request, delivery, config.defaultPhoneRegion, headersAuthentic),
  };
}

/** The facts a processed delivery's headers carry. */
type ShopifyFacts = Extract<ShopifyDelivery, { valid: true }>;

function readDelivery(
  { headers, body }: WebhookRequest,
  delivery: VerifiedDelivery,
  defaultPhoneRegion: string,
  headersAuthentic: boolean,
): Reading {
  const facts = readShopifyDelivery(headers, PROCESSED_TOPICS);
  if (!facts.valid) return { kind: 'ignored', reason: facts.reason };
  const { topic } = facts;
  const times = {
    headerTime: facts.triggeredAt,
    receivedAt: delivery.receivedAt,
    headersAuthentic,
  };
  const change = isComplianceTopic(topic)
    ? readComplianceRequest(body.toString('utf8'), topic, facts, delivery)
    : topic === CUSTOMER_MERGE_TOPIC
      ? readCustomerMerge(body.toString('utf8'), facts, delivery, times)
      : readCustomerChange(body.toString('utf8'), facts, delivery, defaultPhoneRegion, times);
  if ('reason' in change) return { kind: 'unusable', reason: change.reason };
  return {
    kind: 'changes',
    changes: [change],
    rejected: [],
    answer: { statusCode: 200, body: { status: 'queued' } },
  };
}

/**
 * A mandatory compliance request (customers/redact, customers/data_request, shop/redact), queued
 * with as little as it needs: the customer's exact id, the request's id, who asked and when; not
 * the email or phone the payload carries. Its signed `shop_domain` must be the header's (unsigned)
 * shop, the one the tenant was found by: a body replayed under another shop's header erases nothing.
 */
function readComplianceRequest(
  body: string,
  topic: ComplianceTopic,
  facts: ShopifyFacts,
  { tenant, deliveryId, receivedAt }: VerifiedDelivery,
): ComplianceRequest | { reason: string } {
  const parsed = parseShopifyComplianceRequest(body, topic);
  if (!parsed.ok) return parsed;
  const { request } = parsed;
  if (request.shopDomain.toLowerCase() !== facts.shop?.toLowerCase()) {
    return { reason: `the payload's shop_domain is not ${shopifyHeaderName('shop')}'s shop` };
  }
  const asked = {
    tenant,
    source: 'shopify',
    requestedAt: receivedAt.toISOString(),
    sourceEventId: deliveryId,
    receivedAt: receivedAt.toISOString(),
  } as const;
  switch (request.kind) {
    case 'shopRedact':
      return { kind: 'shopRedact', ...asked, shopDomain: request.shopDomain };
    case 'customerRedact':
      return { kind: 'customerRedact', ...asked, externalId: request.customerId as string };
    case 'customerDataRequest':
      return {
        kind: 'customerDataRequest',
        ...asked,
        externalId: request.customerId as string,
        ...(request.requestId && { requestId: request.requestId }),
      };
  }
}

/** The delivery's times, but for the body's own (`updated_at`), which only customer payloads have. */
type DeliveryTimes = Omit<OrderTimeInputs, 'signedTime'>;

function readCustomerChange(
  body: string,
  facts: ShopifyFacts,
  delivery: VerifiedDelivery,
  defaultPhoneRegion: string,
  times: DeliveryTimes,
): QueuedChange | { reason: string } {
  const parsed = parseShopifyCustomer(body);
  return parsed.ok ? toIdentityChange(parsed.customer, facts, delivery, defaultPhoneRegion, times) : parsed;
}

function readCustomerMerge(
  body: string,
  facts: ShopifyFacts,
  delivery: VerifiedDelivery,
  times: DeliveryTimes,
): QueuedChange | { reason: string } {
  const parsed = parseShopifyCustomerMerge(body);
  return parsed.ok ? toCustomerMerge(parsed.merge, facts, delivery, times) : parsed;
}

/**
 * The payload has no time of its own: the time Shopify's headers say it was triggered (capped: order-time.ts),
 * else when it arrived. A merge never moves a staleness watermark, whatever its time.
 */
function toCustomerMerge(
  merge: ShopifyCustomerMerge,
  { eventId }: ShopifyFacts,
  { tenant, deliveryId, receivedAt }: VerifiedDelivery,
  times: DeliveryTimes,
): CustomerMerge {
  const orderTime = orderTimeOf({ ...times, signedTime: undefined }, { orReceipt: true });
  return {
    kind: 'customerMerge',
    tenant,
    source: 'shopify',
    keptExternalId: merge.keptCustomerId,
    deletedExternalId: merge.deletedCustomerId,
    status: merge.status,
    occurredAt: orderTime?.occurredAt ?? receivedAt.toISOString(),
    sourceEventId: deliveryId,
    ...(eventId && { eventId }),
    receivedAt: receivedAt.toISOString(),
  };
}

function toIdentityChange(
  customer: ShopifyCustomer,
  { eventId }: ShopifyFacts,
  { tenant, deliveryId, receivedAt, log }: VerifiedDelivery,
  defaultPhoneRegion: string,
  times: DeliveryTimes,
): IdentityChange | { reason: string } {
  const orderTime = orderTimeOf({ ...times, signedTime: customer.updatedAt });
  if (!orderTime) {
    return { reason: `updated_at (or ${shopifyHeaderName('triggeredAt')}) is missing or not a date` };
  }

  // Shopify sends null for "none" and never a previous value; clearing Klaviyo's identifier on
  // that is not safe, so a missing value leaves Klaviyo's as it is.
  const change: IdentityChange = {
    tenant,
    source: 'shopify',
    externalId: customer.customerId,
    occurredAt: orderTime.occurredAt,
    ...(orderTime.unsigned && { occurredAtUnsigned: true }),
    sourceEventId: deliveryId,
    receivedAt: receivedAt.toISOString(),
  };
  if (eventId) change.eventId = eventId;
  const email = normalizeEmail(customer.email);
  if (email) change.email = email;
  if (customer.phone?.trim()) {
    const phone = normalizePhone(customer.phone, defaultPhoneRegion);
    if (phone.ok) change.phoneNumber = phone.e164;
    else {
      log.warn('Phone dropped from the change: not a usable number', {
        tenant,
        deliveryId,
        phone: maskPhone(customer.phone),
        why: phone.reason,
      });
    }
  }
  return change;
}
