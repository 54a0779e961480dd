import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { signErpRequest } from '../lib/erp/sign.js';
import { httpApiEvent } from '../local/lambda-events.js';
import { customerPayload, shopifyHeaders } from '../local/shopify-deliveries.js';
import { shopifyEvent } from '../local/shopify-events.js';
import { DEMO_TENANT } from '../scripts/local-stack/demo-tenant.js';

/** Signed webhook deliveries for the demo tenant of the local stack, as API Gateway hands them over. */
export interface CustomerChange {
  externalId: string;
  email: string;
  phone: string | null;
}

/** A signed Shopify customers/update. */
export function shopifyDelivery(change: CustomerChange): APIGatewayProxyEventV2 {
  const body = customerPayload({ id: change.externalId, email: change.email, phone: change.phone });
  return httpApiEvent(body, shopifyHeaders(body, { secret: DEMO_TENANT.shopifyWebhookSecret }));
}

/** A signed ERP change (Standard Webhooks) to POST /webhooks/erp/{tenant}. */
function erpDelivery(change: CustomerChange): APIGatewayProxyEventV2 {
  const body = JSON.stringify({
    externalId: change.externalId,
    email: change.email,
    phoneNumber: change.phone,
    occurredAt: new Date().toISOString(),
  });
  const path = `/webhooks/erp/${DEMO_TENANT.tenant}`;
  return httpApiEvent(
    body,
    { 'content-type': 'application/json', ...signErpRequest(body, DEMO_TENANT.erpWebhookSecret) },
    false,
    { routeKey: 'POST /webhooks/erp/{tenant}', path, pathParameters: { tenant: DEMO_TENANT.tenant } },
  );
}

/** A Shopify customers/update from Shopify's EventBridge partner event source. */
function shopifyEventBridgeEvent(change: CustomerChange) {
  const body = customerPayload({ id: change.externalId, email: change.email, phone: change.phone });
  return shopifyEvent(body, {
    shop: DEMO_TENANT.shopDomain,
    source: 'aws.partner/shopify.com/1234567/bench',
    triggeredAt: new Date().toISOString(),
    account: '000000000000',
  });
}

/** The first event each intake function is given in the benchmarks, by function name. */
export const INTAKE_EVENTS: Record<string, (change: CustomerChange) => unknown> = {
  'shopify-webhook': shopifyDelivery,
  'erp-webhook': erpDelivery,
  'shopify-eventbridge': shopifyEventBridgeEvent,
};

/** Whether an intake took the change: an HTTP 200/202, or an EventBridge intake's `queued`. */
export function accepted(result: unknown): boolean {
  const { statusCode, status } = (result ?? {}) as { statusCode?: number; status?: string };
  return statusCode === 200 || statusCode === 202 || status === 'queued';
}
