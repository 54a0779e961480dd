import * as z from 'zod';
import { describeIssues } from '../validation.js';

/**
 * The parts of a Shopify `customers/create` / `customers/update` payload we use, from API
 * versions 2024-10 through 2026-04 (older versions add tags and consent objects, which we ignore).
 */
const customerPayloadSchema = z.object({
  id: z.string().regex(/^\d+$/, 'must be a positive integer'),
  admin_graphql_api_id: z.string().nullish(),
  email: z.string().nullish(),
  phone: z.string().nullish(),
  updated_at: z.string().nullish(),
});

const GRAPHQL_CUSTOMER_ID = /^gid:\/\/shopify\/Customer\/(\d+)$/;

export type ShopifyCustomer = {
  /** The customer id as its exact decimal digits (ids can exceed 2^53). */
  customerId: string;
  email: string | null;
  phone: string | null;
  updatedAt: string | null;
};

export type CustomerParseResult = { ok: true; customer: ShopifyCustomer } | { ok: false; reason: string };

type ReviverContext = { source?: string };

/**
 * Keeps every numeric `id` as the digits that were sent: a JS number would round ids above 2^53
 * (Shopify's own sample has id 706405506930370000 for gid .../706405506930370084).
 */
function keepIdDigits(this: unknown, key: string, value: unknown, context?: ReviverContext): unknown {
  if (key === 'id' && typeof value === 'number') return context?.source ?? String(value);
  return value;
}

/** The body as JSON (numeric ids kept as their digits) read with `schema`; or why it cannot be. */
function parseBody<T>(
  rawBody: string,
  schema: z.ZodType<T>,
  what: string,
): { ok: true; data: T } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(rawBody, keepIdDigits as (key: string, value: unknown) => unknown);
  } catch (error) {
    return { ok: false, reason: `body is not JSON: ${(error as Error).message}` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: `not a ${what}: ${describeIssues(parsed.error, 'body')}` };
  return { ok: true, data: parsed.data };
}

/** The decimal id in a `gid://shopify/Customer/<id>`. */
const customerIdOfGid = (gid: string | null | undefined) => GRAPHQL_CUSTOMER_ID.exec(gid ?? '')?.[1];

export function parseShopifyCustomer(rawBody: string): CustomerParseResult {
  const parsed = parseBody(rawBody, customerPayloadSchema, 'Shopify customer payload');
  if (!parsed.ok) return parsed;
  const payload = parsed.data;
  // The GraphQL id is loss-free even where a serialiser rounded the numeric id.
  const customerId = customerIdOfGid(payload.admin_graphql_api_id) ?? payload.id;
  return {
    ok: true,
    customer: {
      customerId,
      email: payload.email ?? null,
      phone: payload.phone ?? null,
      updatedAt: payload.updated_at ?? null,
    },
  };
}

const customerGid = z.string().regex(GRAPHQL_CUSTOMER_ID, 'must be a gid://shopify/Customer/<id>');

/**
 * The parts of a Shopify `customers/merge` payload we use: which customer was kept, which was
 * deleted (as GraphQL ids: the payload has no numeric ones), and how the merge ended.
 */
const customerMergePayloadSchema = z
  .object({
    admin_graphql_api_customer_kept_id: customerGid,
    admin_graphql_api_customer_deleted_id: customerGid,
    status: z.string().min(1).max(64),
  })
  .refine(
    (merge) => merge.admin_graphql_api_customer_kept_id !== merge.admin_graphql_api_customer_deleted_id,
    'the kept and the deleted customer are the same',
  );

export type ShopifyCustomerMerge = {
  keptCustomerId: string;
  deletedCustomerId: string;
  /** `completed`, `failed`, …: only a completed merge is carried over to Klaviyo. */
  status: string;
};

export type CustomerMergeParseResult =
  | { ok: true; merge: ShopifyCustomerMerge }
  | { ok: false; reason: string };

export function parseShopifyCustomerMerge(rawBody: string): CustomerMergeParseResult {
  const parsed = parseBody(rawBody, customerMergePayloadSchema, 'Shopify customer merge');
  if (!parsed.ok) return parsed;
  // Both ids passed the gid pattern, so each has its digits.
  const idOf = (gid: string) => customerIdOfGid(gid) ?? gid;
  return {
    ok: true,
    merge: {
      keptCustomerId: idOf(parsed.data.admin_graphql_api_customer_kept_id),
      deletedCustomerId: idOf(parsed.data.admin_graphql_api_customer_deleted_id),
      status: parsed.data.status,
    },
  };
}

/** Shopify's mandatory compliance topics: what each asks of the app. */
export const COMPLIANCE_TOPICS = {
  'customers/redact': 'customerRedact',
  'customers/data_request': 'customerDataRequest',
  'shop/redact': 'shopRedact',
} as const;

export type ComplianceTopic = keyof typeof COMPLIANCE_TOPICS;

const digitsId = z.string().regex(/^\d+$/, 'must be a positive integer');
/** The customer as compliance payloads name it; its email and phone are not read (nothing needs them). */
const complianceCustomer = z.object({ id: digitsId });
const shopDomain = z.string().min(1).max(255);

const COMPLIANCE_PAYLOADS = {
  'customers/redact': z.object({ shop_domain: shopDomain, customer: complianceCustomer }),
  'customers/data_request': z.object({
    shop_domain: shopDomain,
    customer: complianceCustomer,
    data_request: z.object({ id: digitsId }),
  }),
  'shop/redact': z.object({ shop_domain: shopDomain }),
} satisfies Record<ComplianceTopic, z.ZodType>;

/** What a compliance payload asks: the shop (as signed), the customer's exact id, the request's id. */
export type ShopifyComplianceRequest = {
  kind: (typeof COMPLIANCE_TOPICS)[ComplianceTopic];
  shopDomain: string;
  customerId?: string;
  requestId?: string;
};

export function parseShopifyComplianceRequest(
  rawBody: string,
  topic: ComplianceTopic,
): { ok: true; request: ShopifyComplianceRequest } | { ok: false; reason: string } {
  const parsed = parseBody(
    rawBody,
    COMPLIANCE_PAYLOADS[topic] as z.ZodType<Record<string, unknown>>,
    `Shopify ${topic} payload`,
  );
  if (!parsed.ok) return parsed;
  const payload = parsed.data as {
    shop_domain: string;
    customer?: { id: string };
    data_request?: { id: string };
  };
  return {
    ok: true,
    request: {
      kind: COMPLIANCE_TOPICS[topic],
      shopDomain: payload.shop_domain,
      ...(payload.customer && { customerId: payload.customer.id }),
      ...(payload.data_request && { requestId: payload.data_request.id }),
    },
  };
}
