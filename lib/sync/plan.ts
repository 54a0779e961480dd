import type { Identifiers, IdentityChange } from '../identity-change.js';
import { defaultPolicies, type Policies } from '../policies.js';
import type { KlaviyoProfile } from '../ports.js';
import type { IdentifierDigests } from '../privacy/identifier-digest.js';
import { Reason } from '../reasons.js';
import {
  differences,
  type FoundProfile,
  type Holder,
  isOurs,
  requestedIdentifiers,
  sameValue,
} from './identifiers.js';
import { earlySkipOf } from './staleness.js';

/**
 * How a change is applied, decided from plain data: the change, what the lookups found, and the
 * tenant's policies. Carrying the plan out is execute.ts's job, the lookups resolve.ts's. The
 * decision table of docs/applying-changes.md says the same in words; keep them together.
 */

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
 * The one decision: what to do with `change`, given what was found. Pure; every situation of the
 * decision table of docs/applying-changes.md is a row in test/unit/plan.test.ts.
 */
export function planChange(
  change: IdentityChange,
  facts: Facts,
  policies: Policies = defaultPolicies,
): SyncPlan {
  const early = earlySkipOf(change, facts);
  if (early) return { action: 'skip', reason: early.reason };

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
