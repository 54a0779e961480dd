import * as z from 'zod';
import { type Config, tenantForShop } from '../config.js';
import { TransientError } from '../errors.js';
import { lowerCaseHeaders, type WebhookRequest } from '../http.js';
import { contentIdOf, letterWithPayload } from '../intake/letters.js';
import { type IntakeDependencies, takeVerified } from '../intake/receive.js';
import { Reason } from '../reasons.js';
import { describeIssues } from '../validation.js';
import { shopifyHeader } from './headers.js';
import { shopifyWebhookSource } from './receive-webhook.js';

/** Every Shopify partner event source, and so its events' `source`, is named like this. */
const SHOPIFY_PARTNER_SOURCE_PREFIX = 'aws.partner/shopify.com/';

/**
 * A Shopify webhook delivered by Amazon EventBridge: the EventBridge envelope, and in `detail`
 * the topic's payload (already parsed JSON) and `metadata`, the delivery's headers (headers.ts).
 */
const shopifyEventSchema = z.object({
  id: z.string().min(1),
  'detail-type': z.string(),
  source: z.string().startsWith(SHOPIFY_PARTNER_SOURCE_PREFIX, 'must be a Shopify partner event source'),
  time: z.string(),
  detail: z.object({
    payload: z.record(z.string(), z.unknown()),
    metadata: z.record(z.string(), z.string()),
  }),
});

export type ShopifyEventOutcome = { status: 'queued' | 'ignored' | 'dead-lettered'; reason?: string };

/** Takes one EventBridge event; throws (a TransientError) only when trying again may help. */
export type ShopifyEventIntake = (event: unknown) => Promise<ShopifyEventOutcome>;

/**
 * Shopify's deliveries through Amazon EventBridge, taken like its HTTPS webhooks (the same
 * topics, parsing, normalisation, queue and dead letters: lib/shopify/receive-webhook.ts through
 * lib/intake/receive.ts), but for what EventBridge changes:
 * - no HMAC: AWS delivered the event from Shopify's partner event source, so it is taken as
 *   verified (past the intake's signature checks) and no secret is read;
 * - the payload arrives parsed, so ids above 2^53 have lost digits: the GraphQL ids are required
 *   then (a customer payload without `admin_graphql_api_id` and with such an id is unusable);
 * - nobody gets an answer: what cannot be used (not a Shopify event, another partner source than
 *   the configured bus's, a shop of no tenant) is kept on the dead-letter queue.
 */
export function shopifyEventBridgeIntake(
  config: Pick<Config, 'shopTenants' | 'defaultPhoneRegion' | 'shopifyEventBusName'>,
  deps: Omit<IntakeDependencies, 'secrets'>,
): ShopifyEventIntake {
  // The metadata came with the event from Shopify's partner source: its time is Shopify's word.
  const source = shopifyWebhookSource(config, { headersAuthentic: true });

  /** Keeps the whole event with the reason it cannot be used. */
  const keep = async (
    event: unknown,
    reason: string,
    detail: string,
    facts: { tenant?: string; shop?: string },
  ) => {
    const eventId = (event as { id?: unknown } | null)?.id;
    const payload = JSON.stringify(event) ?? String(event);
    await deps.deadLetters.park(
      letterWithPayload(
        {
          reason,
          detail,
          tenant: facts.tenant,
          source: 'shopify',
          // Events without an id are told apart by their bytes, as webhooks without a delivery id are.
          sourceEventId: typeof eventId === 'string' && eventId ? eventId : contentIdOf(payload),
          context: { via: 'eventbridge', ...(facts.shop && { shop: facts.shop }) },
          parkedAt: deps.clock().toISOString(),
        },
        payload,
      ),
    );
    deps.telemetry.count('WebhookDeadLettered');
    deps.telemetry.log.warn('EventBridge event kept on the dead-letter queue', { reason, detail, ...facts });
    return { status: 'dead-lettered', reason: detail } as const;
  };

  return async (event) => {
    const parsed = shopifyEventSchema.safeParse(event);
    if (!parsed.success) {
      return keep(
        event,
        Reason.InvalidPayload,
        `not a Shopify EventBridge event: ${describeIssues(parsed.error, 'event')}`,
        {},
      );
    }
    const { source: partnerSource, detail } = parsed.data;
    const headers = lowerCaseHeaders(detail.metadata);
    const shop = shopifyHeader(headers, 'shop');
    if (config.shopifyEventBusName && partnerSource !== config.shopifyEventBusName) {
      return keep(event, Reason.InvalidPayload, `from ${partnerSource}, not ${config.shopifyEventBusName}`, {
        shop,
      });
    }
    const tenant = tenantForShop(config, shop);
    if (!tenant)
      return keep(event, Reason.UnknownTenant, `shop ${shop ?? '(none)'} maps to no tenant`, { shop });
    const lost = lostDigits(detail.payload);
    if (lost) return keep(event, Reason.InvalidPayload, lost, { tenant, shop });

    const request: WebhookRequest = { headers, body: Buffer.from(JSON.stringify(detail.payload)) };
    const deliveryId = source.deliveryIdOf(request) ?? contentIdOf(request.body);
    const answer = await takeVerified(
      source,
      request,
      { tenant, deliveryId, receivedAt: deps.clock() },
      deps,
    );
    if (answer.statusCode >= 500) {
      throw new TransientError(
        'queue_unavailable',
        `Shopify event ${parsed.data.id} not queued: ${answer.statusCode}`,
      );
    }
    const { status, reason } = answer.body as { status?: ShopifyEventOutcome['status']; reason?: string };
    return { status: status ?? 'dead-lettered', ...(reason && { reason }) };
  };
}

/**
 * Why a parsed payload's customer id cannot be trusted: a numeric id above 2^53 without the
 * GraphQL id beside it was rounded on the way (706405506930370084 arrives as 706405506930370000).
 */
function lostDigits(payload: Record<string, unknown>): string | undefined {
  const { id, admin_graphql_api_id: graphqlId } = payload;
  if (typeof id !== 'number' || Number.isSafeInteger(id) || typeof graphqlId === 'string') return undefined;
  return `id ${id} is above 2^53 and lost digits in transit: include admin_graphql_api_id in the subscription's fields`;
}
