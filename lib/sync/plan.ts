import type { Identifiers, IdentityChange } from '../identity-change.js';
import type { IdentifierField, KlaviyoProfile } from '../klaviyo/client.js';

/**
 * How a change is applied, decided from plain data: the change, what the lookups found, and the
 * tenant's policies. Executing the plan is someone else's job (sync-identity-change.ts). The
 * README's "How a change is applied" says the same in words; keep them together.
 */

/** Where a profile may be found, in the order we look. */
export type LookupKey = 'external_id' | 'previous_email' | 'previous_phone' | 'email' | 'phone';

export interface Lookup {
  key: LookupKey;
  field: IdentifierField;
  value: string;
}

export interface FoundProfile {
  lookup: Lookup;
  profile: KlaviyoProfile;
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
  holder?: Holder;
  /** The holder's customer's blocked change, when the holder belongs to another customer. */
  /** What the holder's own customer is waiting to change, if its change was blocked too. */
  holderPending?: Identifiers;
  /** How many times this change has been tried (1 on the first delivery). */
  attempt: number;
}

export interface Policies {
  /** No profile found: create one, or skip the change. */
  onMissingProfile: 'create' | 'skip';
  /** Another profile without our external_id (or with the same one) holds a wanted identifier. */
  onDuplicateProfile: 'merge' | 'park' | 'skip';
  /** Tries before a change blocked by another customer's identifier is parked. */
  conflictAttempts: number;
}

export const defaultPolicies: Policies = {
  onMissingProfile: 'create',
  onDuplicateProfile: 'merge',
  conflictAttempts: 4,
};

export type SkipReason = 'stale' | 'unchanged' | 'no-profile' | 'nothing-to-create' | 'duplicate-profile';

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
  | { action: 'retry'; reason: 'identifier-held-by-other-customer'; profileId?: string; holderId: string }
  | {
      action: 'park';
      reason: 'identifier-held-by-other-customer' | 'duplicate-profile';
      profileId?: string;
      holderId: string;
    };

/** A change older than the last one applied for the same customer must not overwrite it. */
export function isStale(occurredAt: string, lastAppliedAt: string | undefined): boolean {
  return lastAppliedAt !== undefined && Date.parse(occurredAt) < Date.parse(lastAppliedAt);
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

/** Ours: found by our external_id, or found by an identifier and carrying no external_id yet. */
export const isOurs = (found: FoundProfile, externalId: string) =>
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

function differences(wanted: Identifiers, profile: KlaviyoProfile): Identifiers {
  const attributes: Identifiers = {};
  for (const field of ['email', 'phone_number'] as const) {
    if (wanted[field] !== undefined && !sameValue(field, wanted[field], profile[field])) {
      attributes[field] = wanted[field];
    }
  }
  return attributes;
}

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
 * The one decision: what to do with `change`, given what was found. Pure; every situation of the
 * README's decision table is a row in test/unit/plan.test.ts.
 */
export function planChange(
  change: IdentityChange,
  facts: Facts,
  policies: Policies = defaultPolicies,
): SyncPlan {
  if (isStale(change.occurredAt, facts.lastAppliedAt)) return { action: 'skip', reason: 'stale' };

  const wanted = requestedIdentifiers(change);
  let target = facts.found.find((found) => isOurs(found, change.externalId))?.profile;
  let holder = holderOf(change, facts, target);
  const holderIsOurs = holder !== undefined && [null, change.externalId].includes(holder.profile.external_id);

  // A holder without a target that is really ours (no external_id, or ours): it is the target.
  if (!target && holder && holderIsOurs) {
    target = holder.profile;
    holder = undefined;
  }

  if (holder && holderIsOurs && target) {
    if (policies.onDuplicateProfile === 'merge') {
      return { action: 'merge-then-patch', profileId: target.id, sourceId: holder.profile.id };
    }
    return policies.onDuplicateProfile === 'park'
      ? { action: 'park', reason: 'duplicate-profile', profileId: target.id, holderId: holder.profile.id }
      : { action: 'skip', reason: 'duplicate-profile', profileId: target.id, holderId: holder.profile.id };
  }

  if (holder) return planForOtherCustomer(facts, policies, target, holder, wanted);

  if (!target) {
    if (policies.onMissingProfile === 'skip') return { action: 'skip', reason: 'no-profile' };
    const identifiers = Object.fromEntries(Object.entries(wanted).filter(([, value]) => value !== null));
    if (Object.keys(identifiers).length === 0) return { action: 'skip', reason: 'nothing-to-create' };
    return { action: 'create', attributes: { external_id: change.externalId, ...identifiers } };
  }

  const bind = target.external_id !== change.externalId;
  const attributes: Identifiers = {
    ...differences(wanted, target),
    ...(bind ? { external_id: change.externalId } : {}),
  };
  if (Object.keys(attributes).length === 0)
    return { action: 'skip', reason: 'unchanged', profileId: target.id };
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
      attributes: differences(wanted, target),
      holderId: holder.profile.id,
      holderExternalId: holder.profile.external_id,
      release,
      holderAttributes: differences(pending, { ...holder.profile, [holder.field]: null }),
    };
  }
  const ids = { ...(target ? { profileId: target.id } : {}), holderId: holder.profile.id };
  if (facts.attempt < policies.conflictAttempts) {
    return { action: 'retry', reason: 'identifier-held-by-other-customer', ...ids };
  }
  return { action: 'park', reason: 'identifier-held-by-other-customer', ...ids };
}
