/**
 * When a Shopify change happened, for ordering it, from what can be trusted. The HMAC covers only
 * the body: `updated_at` in it is Shopify's word, while the triggered-at header is one anyone
 * replaying a captured body can set. So the body's time wins; a header time is taken only when no
 * signed one exists, is not believed beyond a little clock skew ahead of receipt, and is marked
 * unsigned so that it never makes a later change stale (lib/sync/plan.ts, watermarkAfter).
 */

/** How far ahead of our clock an unsigned time may be (clock skew between Shopify and AWS). */
export const MAX_UNSIGNED_TIME_AHEAD_MS = 5 * 60_000;

export interface OrderTime {
  /** ISO 8601 instant. */
  occurredAt: string;
  /** True when no signature (or authenticated transport) vouches for `occurredAt`. */
  unsigned: boolean;
}

export interface OrderTimeInputs {
  /** The body's `updated_at` (signed: the HMAC covers the body). */
  signedTime: string | null | undefined;
  /** The delivery's triggered-at header (headers.ts). */
  headerTime: string | undefined;
  receivedAt: Date;
  /**
   * The headers came through an authenticated transport (EventBridge's partner event source:
   * only Shopify puts events on it), so the header time is as trustworthy as the body.
   */
  headersAuthentic: boolean;
}

/**
 * The time that orders the change: the signed time; else the header time, capped (a time more
 * than MAX_UNSIGNED_TIME_AHEAD_MS ahead of receipt is replaced by the receipt time); else, when
 * `orReceipt`, the receipt time (unsigned). Undefined when there is no usable time, or when the
 * signed time is there but not a date (the body is then unusable: no header stands in for it).
 */
export function orderTimeOf(inputs: OrderTimeInputs, { orReceipt = false } = {}): OrderTime | undefined {
  if (inputs.signedTime) {
    const signed = isoInstant(inputs.signedTime);
    return signed ? { occurredAt: signed, unsigned: false } : undefined;
  }
  const received = inputs.receivedAt.toISOString();
  const header = isoInstant(inputs.headerTime);
  if (!header) return orReceipt ? { occurredAt: received, unsigned: true } : undefined;
  const tooFarAhead = Date.parse(header) > inputs.receivedAt.getTime() + MAX_UNSIGNED_TIME_AHEAD_MS;
  return { occurredAt: tooFarAhead ? received : header, unsigned: !inputs.headersAuthentic };
}

function isoInstant(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}
