import type { IdentityChange } from '../identity-change.js';
import type { CustomerState, PendingChange } from '../ports.js';
import { Reason } from '../reasons.js';

/**
 * When a change is too late to apply: its customer was merged away, or a newer change was applied
 * already. Decided here once, from the customer's record, before any lookup (so a skipped change
 * costs no secret or Klaviyo request); plan.ts's first row asks the same.
 */

/**
 * A change older than the last one applied for the same customer must not overwrite it.
 * `lastAppliedAt` is the staleness watermark: only signed times move it (watermarkAfter), so a
 * change is stale only when signed data says something newer was applied.
 */
export function isStale(occurredAt: string, lastAppliedAt: string | undefined): boolean {
  return lastAppliedAt !== undefined && Date.parse(occurredAt) < Date.parse(lastAppliedAt);
}

/**
 * The staleness watermark once `change` is applied. A signed time moves it forward. A time no
 * signature covers (`occurredAtUnsigned`: a Shopify header) orders its own change, which is stale
 * against the watermark like any, but never moves it: a replayed body with
 * a Shopify triggered-at header of 2100 would otherwise make every later real change stale, for ever.
 */
export function watermarkAfter(
  change: Pick<IdentityChange, 'occurredAt' | 'occurredAtUnsigned'>,
  lastAppliedAt: string | undefined,
): string | undefined {
  if (change.occurredAtUnsigned || isStale(change.occurredAt, lastAppliedAt)) return lastAppliedAt;
  return change.occurredAt;
}

/** A customer's blocked change, unless a newer change was applied since (its identifiers sealed). */
export const livePending = ({ pending, lastAppliedAt }: CustomerState): PendingChange | undefined =>
  pending && !isStale(pending.occurredAt, lastAppliedAt) ? pending : undefined;

/** A change skipped before anything is looked up, with why in words. */
export interface EarlySkip {
  outcome: 'skipped' | 'stale';
  reason: typeof Reason.MergedIntoOtherCustomer | typeof Reason.Stale;
  why: string;
}

/**
 * Whether `change` is skipped as things stand: Shopify merged its customer away (the kept
 * customer's own changes speak for it now), or it is stale. Undefined when it is to be planned.
 */
export function earlySkipOf(
  change: Pick<IdentityChange, 'occurredAt'>,
  state: Pick<CustomerState, 'lastAppliedAt' | 'mergedInto' | 'mergedAt'>,
): EarlySkip | undefined {
  if (state.mergedInto) {
    return {
      outcome: 'skipped',
      reason: Reason.MergedIntoOtherCustomer,
      why: `merged into customer ${state.mergedInto} at ${state.mergedAt}`,
    };
  }
  if (isStale(change.occurredAt, state.lastAppliedAt)) {
    return {
      outcome: 'stale',
      reason: Reason.Stale,
      why: `a change from ${state.lastAppliedAt} was applied already`,
    };
  }
  return undefined;
}
