import type { Identifiers } from '../identity-change.js';
import type { CustomerState } from '../ports.js';
import {
  customerRecordKey,
  type IdentifierKey,
  openIdentifiers,
  SealedIdentifiersError,
} from '../privacy/identifier-digest.js';
import type { KlaviyoContext } from './context.js';
import { contestedField, type FoundProfile, lookupOrder, otherCustomerOf, resolved } from './identifiers.js';
import type { Facts } from './plan.js';
import { livePending } from './staleness.js';

/** What the facts start from before any lookup: when the customer last changed, and what the change wants. */
type Known = Pick<Facts, 'lastAppliedAt' | 'attempt' | 'wanted'>;

/** Looks the customer's profile up in resolution order, stopping at the first that is ours. */
export async function resolveProfiles({ klaviyo, change }: KlaviyoContext, known: Known): Promise<Facts> {
  const facts: Facts = { ...known, found: [] };
  for (const lookup of lookupOrder(change)) {
    const [profile] = await klaviyo.findProfiles(lookup.field, lookup.value);
    if (profile) facts.found.push({ lookup, profile });
    if (resolved(facts.found, change.externalId)) break;
  }
  return facts;
}

/**
 * The `verifyUnchanged` policy: the recorded profile is read back (one request) and trusted only
 * if it is still the customer's; otherwise the customer is looked up as if there were no record.
 */
export async function verifyRecorded(
  ctx: KlaviyoContext,
  recorded: FoundProfile,
  known: Known,
): Promise<Facts> {
  const profile = await ctx.klaviyo.getProfile(recorded.profile.id);
  if (profile?.external_id !== ctx.change.externalId) return resolveProfiles(ctx, known);
  return { ...known, found: [{ lookup: recorded.lookup, profile }] };
}

/**
 * Klaviyo's 409 named the profile holding an identifier we want: fetch it and, when it belongs to
 * another customer, that customer's blocked change. A holder gone meanwhile (merged or deleted)
 * teaches nothing: the facts stay as they were and the plan is simply tried again.
 */
export async function learnHolder(
  { klaviyo, state, change, identifierKey }: KlaviyoContext,
  facts: Facts,
  holderId: string,
): Promise<Facts> {
  const profile = await klaviyo.getProfile(holderId);
  if (!profile) return facts;
  const otherCustomer = otherCustomerOf(profile, change.externalId);
  const holderPending = otherCustomer
    ? pendingOf(
        identifierKey,
        change.tenant,
        otherCustomer,
        await state.getState(change.tenant, otherCustomer),
      )
    : undefined;
  return { ...facts, holder: { field: contestedField(change, profile), profile }, holderPending };
}

/**
 * What a customer's blocked change wants, opened from its record. One sealed with another key (a
 * rotation), recorded before sealing, or that fails to open, is as good as none: that change
 * records it again at its next delivery, and the swap can happen then.
 */
function pendingOf(
  key: IdentifierKey,
  tenant: string,
  externalId: string,
  state: CustomerState,
): Identifiers | undefined {
  const sealed = livePending(state)?.sealedIdentifiers;
  if (!sealed) return undefined;
  try {
    return openIdentifiers(key, sealed, customerRecordKey(tenant, externalId));
  } catch (error) {
    if (error instanceof SealedIdentifiersError) return undefined;
    throw error;
  }
}
