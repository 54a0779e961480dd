import type { Identifiers, IdentityChange } from '../identity-change.js';
import { defaultPolicies, type Policies } from '../policies.js';
import type {
  CustomerState,
  IdentifierField,
  KlaviyoProfile,
  PendingChange,
  RecordedDigests,
} from '../ports.js';
import type { IdentifierDigests } from '../privacy/identifier-digest.js';
import { Reason } from '../reasons.js';

export { defaultPolicies, type Policies };

/**
 * How a change is applied, decided from plain data: the change, what the lookups found, and the
 * tenant's policies. Carrying the plan out is execute.ts's job, the lookups resolve.ts's. The
 * README's "How a change is applied" says the same in words; keep them together.
 */

/**
 * Where a profile may be found, in the order we look. `recorded`: the profile our last applied
 * (or seen) change left the customer with, as the state table keeps it: known without a request.
 */
export type LookupKey = 'recorded' | 'external_id' | 'previous_email' | 'previous_phone' | 'email' | 'phone';

export interface Lookup {
  key: LookupKey;
  field: IdentifierField;
  value: string;
}

export interface FoundProfile {
  lookup: Lookup;
  profile: KlaviyoProfile;
  /**
   * Set when the profile comes from our record: digests of what it held. Its email and phone are
   * then not known (null in `profile`); the change is compared with it by digest.
   */
  recorded?: RecordedDigests;
}

/** A profile that holds an identifier the change wants, seen in resolution or named by a 409. */
export interface Holder {
  field: 'email' | 'phone_number';
  profile: KlaviyoProfile;
}

export interface Facts {
  /** When the last change applied for this customer happened. */
  lastAppliedAt?: string;
  /** The lookups made, in order, with the profile each found. */
  found: FoundProfile[];
  /** Digests of the change's email and phone with the tenant's key: what a recorded profile is compared with. */
  wanted?: IdentifierDigests;
  holder?: Holder;
  /** What the holder's own customer is waiting to change, if its change was blocked too. */
  holderPending?: Identifiers;
  /**
   * How many deliveries of this change have met another customer's identifier, this one included
   * (1 at first): deliveries spent waiting out an outage do not count.
   */
  attempt: number;
}

export type SkipReason =
  | typeof Reason.MergedIntoOtherCustomer
  | typeof Reason.Stale
  | typeof Reason.Unchanged
  | typeof Reason.NoProfile
  | typeof Reason.NothingToCreate
  | typeof Reason.DuplicateProfile;

export type SyncPlan =
  | { action: 'skip'; reason: SkipReason; profileId?: string; holderId?: string }
  /** `bind`: the profile was found by an identifier and gets our external_id in the same PATCH. */
  | { action: 'patch'; profileId: string; attributes: Identifiers; bind: boolean }
  | { action: 'create'; attributes: Identifiers }
  | { action: 'merge-then-patch'; profileId: string; sourceId: string }
  /** Both customers are mid-change and each holds what the other wants: trade in three PATCHes. */
  | {
      action: 'swap';
      profileId: string;
      attributes: Identifiers;
      holderId: string;
      holderExternalId: string;
      release: Identifiers;
      holderAttributes: Identifiers;
    }
  | {
      action: 'retry';
      reason: typeof Reason.IdentifierHeldByOtherCustomer;
      profileId?: string;
      holderId: string;
    }
  | {
      action: 'park';
      reason: typeof Reason.IdentifierHeldByOtherCustomer | typeof Reason.DuplicateProfile;
      profileId?: string;
      holderId: string;
    };

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
 * a triggered-at header of 2100 would otherwise make every later real change stale, for ever.
 */
export function watermarkAfter(
  change: Pick<IdentityChange, 'occurredAt' | 'occurredAtUnsigned'>,
  lastAppliedAt: string | undefined,
): string | undefined {
  if (change.occurredAtUnsigned || isStale(change.occurredAt, lastAppliedAt)) return lastAppliedAt;
  return change.occurredAt;
}

/**
 * The lookups in resolution order: external_id; the previous email and phone when the source
 * gave them; the new email and phone. A value already looked up is not looked up again.
 */
export function lookupOrder(change: IdentityChange): Lookup[] {
  const candidates: Lookup[] = [
    { key: 'external_id', field: 'external_id', value: change.externalId },
    { key: 'previous_email', field: 'email', value: change.previous?.email ?? '' },
    { key: 'previous_phone', field: 'phone_number', value: change.previous?.phoneNumber ?? '' },
    { key: 'email', field: 'email', value: change.email ?? '' },
    { key: 'phone', field: 'phone_number', value: change.phoneNumber ?? '' },
  ];
  const seen = new Set<string>();
  return candidates.filter((lookup) => {
    const id = `${lookup.field}:${lookup.value.toLowerCase()}`;
    if (!lookup.value || seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * The customer's profile as recorded after its last applied or seen change, when the record names
 * one: a change can then be planned with no lookup at all (none, when nothing differs).
 */
export function recordedProfile(
  change: Pick<IdentityChange, 'externalId'>,
  state: Pick<CustomerState, 'profileId' | 'digests'>,
  /** The tenant key's id, when known: digests made with another key tell nothing (as if no record). */
  keyId?: string,
): FoundProfile | undefined {
  if (!state.profileId || !state.digests) return undefined;
  if (keyId !== undefined && state.digests.keyId !== keyId) return undefined;
  return {
    lookup: { key: 'recorded', field: 'id', value: state.profileId },
    profile: { id: state.profileId, email: null, phone_number: null, external_id: change.externalId },
    recorded: state.digests,
  };
}

/** What to keep of a profile in the customer's record: the identifiers we keep in step. */
export const identifiersOf = (profile: KlaviyoProfile) => ({
  email: profile.email,
  phone_number: profile.phone_number,
});

/** Ours: found by our external_id (or our record), or found by an identifier and carrying no external_id yet. */
export const isOurs = (found: FoundProfile, externalId: string) =>
  found.lookup.key === 'recorded' ||
  found.lookup.key === 'external_id' ||
  found.profile.external_id === null ||
  found.profile.external_id === externalId;

/** Whether resolution can stop: a profile that is ours has been found. */
export const resolved = (found: FoundProfile[], externalId: string) =>
  found.some((f) => isOurs(f, externalId));

// Klaviyo matches emails case-insensitively, so a change of case alone is no change.
const sameValue = (field: string, a: string | null | undefined, b: string | null | undefined) =>
  field === 'email' ? (a ?? '').toLowerCase() === (b ?? '').toLowerCase() : (a ?? null) === (b ?? null);

/** The identifier attributes the change asks for (absent = leave, null = clear). */
export function requestedIdentifiers(change: IdentityChange): Identifiers {
  const attributes: Identifiers = {};
  if (change.email !== undefined) attributes.email = change.email;
  if (change.phoneNumber !== undefined) attributes.phone_number = change.phoneNumber;
  return attributes;
}

/**
 * The identifiers wanted that the profile does not hold. A profile from our record is compared by
 * digest (`digests`: the record's and the wanted ones); without the wanted digests, all differ.
 */
export function differences(
  wanted: Identifiers,
  profile: KlaviyoProfile,
  digests?: { recorded: IdentifierDigests; wanted?: IdentifierDigests },
): Identifiers {
  const attributes: Identifiers = {};
  for (const field of ['email', 'phone_number'] as const) {
    if (wanted[field] === undefined) continue;
    const same = digests
      ? digests.wanted !== undefined && digests.wanted[field] === digests.recorded[field]
      : sameValue(field, wanted[field], profile[field]);
    if (!same) attributes[field] = wanted[field];
  }
  return attributes;
}

/** How `found` is compared with what the change wants: by digest when it comes from our record. */
const comparisonOf = (found: FoundProfile | undefined, facts: Facts) =>
  found?.recorded ? { recorded: found.recorded, wanted: facts.wanted } : undefined;

/** The holder of a wanted identifier: named by Klaviyo, or a profile of another customer the lookups met. */
function holderOf(
  change: IdentityChange,
  facts: Facts,
  target: KlaviyoProfile | undefined,
): Holder | undefined {
  if (facts.holder && facts.holder.profile.id !== target?.id) return facts.holder;
  for (const { lookup, profile } of facts.found) {
    if (profile.id === target?.id) continue;
    if (lookup.key === 'email' && change.email && sameValue('email', profile.email, change.email)) {
      return { field: 'email', profile };
    }
    if (lookup.key === 'phone' && change.phoneNumber && profile.phone_number === change.phoneNumber) {
      return { field: 'phone_number', profile };
    }
  }
  return undefined;
}

/**
 * Which identifier a profile named by Klaviyo's 409 holds: the 409 does not say, the holder's
 * values do. The phone only when it holds our phone and not our email.
 */
export function contestedField(change: IdentityChange, profile: KlaviyoProfile): Holder['field'] {
  const holdsOurPhone = Boolean(change.phoneNumber) && profile.phone_number === change.phoneNumber;
  const holdsOurEmail = Boolean(change.email) && sameValue('email', profile.email, change.email);
  return holdsOurPhone && !holdsOurEmail ? 'phone_number' : 'email';
}

/** The customer a holder belongs to when that is not us: their blocked change may trade with ours. */
export const otherCustomerOf = (profile: KlaviyoProfile, externalId: string) =>
  profile.external_id && profile.external_id !== externalId ? profile.external_id : undefined;

/** A customer's blocked change, unless a newer change was applied since (its identifiers sealed). */
export const livePending = ({ pending, lastAppliedAt }: CustomerState): PendingChange | undefined =>
  pending && !isStale(pending.occurredAt, lastAppliedAt) ? pending : undefined;

/**
 * The one decision: what to do with `change`, given what was found. Pure; every situation of the
 * README's decision table is a row in test/unit/plan.test.ts.
 */
export function planChange(
  change: IdentityChange,
  facts: Facts,
  policies: Policies = defaultPolicies,
): SyncPlan {
  if (isStale(change.occurredAt, facts.lastAppliedAt)) return { action: 'skip', reason: Reason.Stale };

  const wanted = requestedIdentifiers(change);
  let targetFound = facts.found.find((found) => isOurs(found, change.externalId));
  let target = targetFound?.profile;
  let holder = holderOf(change, facts, target);
  const holderIsOurs = holder !== undefined && [null, change.externalId].includes(holder.profile.external_id);

  // A holder without a target that is really ours (no external_id, or ours): it is the target.
  if (!target && holder && holderIsOurs) {
    target = holder.profile;
    targetFound = undefined;
    holder = undefined;
  }
  const comparison = comparisonOf(targetFound, facts);

  if (holder && holderIsOurs && target) {
    if (policies.onDuplicateProfile === 'merge') {
      return { action: 'merge-then-patch', profileId: target.id, sourceId: holder.profile.id };
    }
    return policies.onDuplicateProfile === 'park'
      ? { action: 'park', reason: Reason.DuplicateProfile, profileId: target.id, holderId: holder.profile.id }
      : {
          action: 'skip',
          reason: Reason.DuplicateProfile,
          profileId: target.id,
          holderId: holder.profile.id,
        };
  }

  if (holder) return planForOtherCustomer(facts, policies, target, holder, wanted, comparison);

  if (!target) {
    if (policies.onMissingProfile === 'skip') return { action: 'skip', reason: Reason.NoProfile };
    const identifiers = Object.fromEntries(Object.entries(wanted).filter(([, value]) => value !== null));
    if (Object.keys(identifiers).length === 0) return { action: 'skip', reason: Reason.NothingToCreate };
    return { action: 'create', attributes: { external_id: change.externalId, ...identifiers } };
  }

  const bind = target.external_id !== change.externalId;
  const attributes: Identifiers = {
    ...differences(wanted, target, comparison),
    ...(bind ? { external_id: change.externalId } : {}),
  };
  if (Object.keys(attributes).length === 0)
    return { action: 'skip', reason: Reason.Unchanged, profileId: target.id };
  return { action: 'patch', profileId: target.id, attributes, bind };
}

/**
 * Another customer's profile holds what we want. Never merge two customers. If that customer's own
 * change (blocked too) gives the identifier up, trade; otherwise wait for it a few tries, then park.
 */
function planForOtherCustomer(
  facts: Facts,
  policies: Policies,
  target: KlaviyoProfile | undefined,
  holder: Holder,
  wanted: Identifiers,
  comparison: Parameters<typeof differences>[2],
): SyncPlan {
  const pending = facts.holderPending;
  const contested = holder.profile[holder.field];
  const holderLetsGo =
    pending?.[holder.field] !== undefined && !sameValue(holder.field, pending[holder.field], contested);
  if (target && pending && holderLetsGo && holder.profile.external_id) {
    const release: Identifiers = { [holder.field]: null };
    return {
      action: 'swap',
      profileId: target.id,
      attributes: differences(wanted, target, comparison),
      holderId: holder.profile.id,
      holderExternalId: holder.profile.external_id,
      release,
      holderAttributes: differences(pending, { ...holder.profile, [holder.field]: null }),
    };
  }
  const ids = { ...(target ? { profileId: target.id } : {}), holderId: holder.profile.id };
  if (facts.attempt < policies.conflictAttempts) {
    return { action: 'retry', reason: Reason.IdentifierHeldByOtherCustomer, ...ids };
  }
  return { action: 'park', reason: Reason.IdentifierHeldByOtherCustomer, ...ids };
}
