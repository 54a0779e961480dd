import { z } from 'zod';
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

export function parseShopifyCustomer(rawBody: string): CustomerParseResult {
  let json: unknown;
  try {
    json = JSON.parse(rawBody, keepIdDigits as (key: string, value: unknown) => unknown);
  } catch (error) {
    return { ok: false, reason: `body is not JSON: ${(error as Error).message}` };
  }
  const parsed = customerPayloadSchema.safeParse(json);
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
