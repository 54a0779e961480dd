import { createHash } from 'node:crypto';
import { type Config, tenantForShop } from '../config.js';
import { isTransient } from '../errors.js';
import type { WebhookRequest, WebhookResponse } from '../http.js';
import type { IdentityChange } from '../identity-change.js';
import { normalizeEmail, normalizePhone } from '../normalize.js';
import { maskIdentifiers, maskPhone } from '../observability/mask.js';
import type { Telemetry } from '../observability/telemetry.js';
import type { ChangeQueue, Clock, DeadLetters, TenantSecrets } from '../ports.js';
import { parseShopifyCustomer, type ShopifyCustomer } from './customer-payload.js';
import { isValidShopifySignature } from './signature.js';

export const PROCESSED_TOPICS = new Set(['customers/create', 'customers/update']);

export interface ShopifyIntakeDependencies {
  config: Pick<Config, 'shopTenants' | 'defaultTenant' | 'defaultPhoneRegion'>;
  secrets: TenantSecrets;
  queue: ChangeQueue;
  deadLetters: DeadLetters;
  telemetry: Telemetry;
  clock: Clock;
}

const answer = (statusCode: number, body: Record<string, unknown>): WebhookResponse => ({ statusCode, body });

/**
 * Takes one Shopify webhook delivery: refuses it unless correctly signed, queues the identity
 * change it carries, and keeps an unusable but signed payload on the dead-letter queue. It never
 * calls Klaviyo, so Shopify gets its answer well inside its 5 seconds.
 */
export async function receiveShopifyWebhook(
  request: WebhookRequest,
  deps: ShopifyIntakeDependencies,
): Promise<WebhookResponse> {
  const { headers, body } = request;
  const { log, count } = deps.telemetry;
  const shop = headers['x-shopify-shop-domain'];
  const topic = headers['x-shopify-topic'];
  const webhookId =
    headers['x-shopify-webhook-id'] ?? `sha256:${createHash('sha256').update(body).digest('hex')}`;

  const tenant = tenantForShop(deps.config, shop);
  if (!tenant) {
    count('WebhookRejected');
    log.warn('Webhook refused: shop has no tenant', { shop, webhookId });
    return answer(401, { error: 'unknown shop' });
  }

  try {
    if (!(await isSignedByTenant(request, tenant, deps.secrets))) {
      count('WebhookRejected');
      log.warn('Webhook refused: signature missing or invalid', { shop, tenant, topic, webhookId });
      return answer(401, { error: 'invalid signature' });
    }
  } catch (error) {
    // Without the secret we cannot tell a good delivery from a forged one; Shopify will retry.
    log.error('Webhook not verified: tenant secret unavailable', {
      tenant,
      webhookId,
      error: error as Error,
    });
    return answer(503, { error: 'temporarily unable to verify' });
  }

  if (!topic || !PROCESSED_TOPICS.has(topic)) {
    count('WebhookIgnored');
    log.info('Webhook ignored: topic not processed', { tenant, topic, webhookId });
    return answer(200, { status: 'ignored', reason: `topic ${topic ?? '(none)'} is not processed` });
  }

  const rawBody = body.toString('utf8');
  const parsed = parseShopifyCustomer(rawBody);
  const change = parsed.ok ? toIdentityChange(parsed.customer, tenant, headers, webhookId, deps) : parsed;
  try {
    if ('reason' in change) {
      await deps.deadLetters.park({
        reason: 'invalid_payload',
        detail: change.reason,
        tenant,
        source: 'shopify',
        sourceEventId: webhookId,
        payload: rawBody,
        context: { topic, shop },
        parkedAt: deps.clock().toISOString(),
      });
      count('WebhookDeadLettered');
      log.warn('Webhook kept on the dead-letter queue: payload unusable', {
        tenant,
        topic,
        webhookId,
        reason: change.reason,
      });
      // 200: a retry would carry the same bytes, and failures make Shopify delete the subscription.
      return answer(200, { status: 'dead-lettered', reason: change.reason });
    }
    await deps.queue.enqueue(change);
  } catch (error) {
    log.error('Webhook not queued', { tenant, webhookId, error: error as Error });
    return answer(isTransient(error) ? 503 : 500, { error: 'temporarily unable to queue' });
  }
  count('WebhookAccepted');
  log.info('Identity change queued', { tenant, topic, webhookId, change: maskIdentifiers(change) });
  return answer(200, { status: 'queued' });
}

/** Tries the cached secrets first, then fresh ones once: a rotation may have added a secret. */
async function isSignedByTenant(request: WebhookRequest, tenant: string, secrets: TenantSecrets) {
  const signature = request.headers['x-shopify-hmac-sha256'];
  if (!signature) return false;
  const cached = await secrets.get(tenant);
  if (isValidShopifySignature(request.body, signature, cached.shopifyWebhookSecrets)) return true;
  const fresh = await secrets.get(tenant, { fresh: true });
  return isValidShopifySignature(request.body, signature, fresh.shopifyWebhookSecrets);
}

function toIdentityChange(
  customer: ShopifyCustomer,
  tenant: string,
  headers: WebhookRequest['headers'],
  webhookId: string,
  deps: ShopifyIntakeDependencies,
): IdentityChange | { reason: string } {
  const occurredAt = toIsoInstant(customer.updatedAt ?? headers['x-shopify-triggered-at']);
  if (!occurredAt) return { reason: 'updated_at (or X-Shopify-Triggered-At) is missing or not a date' };

  // Shopify sends null for "none" and never a previous value; clearing Klaviyo's identifier on
  // that is not safe, so a missing value leaves Klaviyo's as it is.
  const change: IdentityChange = {
    tenant,
    source: 'shopify',
    externalId: customer.customerId,
    occurredAt,
    sourceEventId: webhookId,
    receivedAt: deps.clock().toISOString(),
  };
  const eventId = headers['x-shopify-event-id'];
  if (eventId) change.eventId = eventId;
  const email = normalizeEmail(customer.email);
  if (email) change.email = email;
  if (customer.phone?.trim()) {
    const phone = normalizePhone(customer.phone, deps.config.defaultPhoneRegion);
    if (phone.ok) change.phoneNumber = phone.e164;
    else {
      deps.telemetry.log.warn('Phone dropped from the change: not a usable number', {
        tenant,
        webhookId,
        phone: maskPhone(customer.phone),
        why: phone.reason,
      });
    }
  }
  return change;
}

function toIsoInstant(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}
