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

/** The body as JSON, numeric ids kept as their digits; or why it is not JSON. */
function parseJson(rawBody: string): { ok: true; json: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, json: JSON.parse(rawBody, keepIdDigits as (key: string, value: unknown) => unknown) };
  } catch (error) {
    return { ok: false, reason: `body is not JSON: ${(error as Error).message}` };
  }
}

export function parseShopifyCustomer(rawBody: string): CustomerParseResult {
  const body = parseJson(rawBody);
  if (!body.ok) return body;
  const parsed = customerPayloadSchema.safeParse(body.json);
  if (!parsed.success) {
    return { ok: false, reason: `not a Shopify customer payload: ${describeIssues(parsed.error, 'body')}` };
  }
  const payload = parsed.data;
  // The GraphQL id is loss-free even where a serialiser rounded the numeric id.
  const customerId = GRAPHQL_CUSTOMER_ID.exec(payload.admin_graphql_api_id ?? '')?.[1] ?? payload.id;
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
  const body = parseJson(rawBody);
  if (!body.ok) return body;
  const parsed = customerMergePayloadSchema.safeParse(body.json);
  if (!parsed.success) {
    return { ok: false, reason: `not a Shopify customer merge: ${describeIssues(parsed.error, 'body')}` };
  }
  const idOf = (gid: string) => GRAPHQL_CUSTOMER_ID.exec(gid)?.[1] ?? gid;
  return {
    ok: true,
    merge: {
      keptCustomerId: idOf(parsed.data.admin_graphql_api_customer_kept_id),
      deletedCustomerId: idOf(parsed.data.admin_graphql_api_customer_deleted_id),
      status: parsed.data.status,
    },
  };
}
