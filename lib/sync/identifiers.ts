import type { Identifiers, IdentityChange } from '../identity-change.js';
import type { CustomerState, IdentifierField, KlaviyoProfile, RecordedDigests } from '../ports.js';
import type { IdentifierDigests } from '../privacy/identifier-digest.js';

/**
 * Where a customer's profile is looked for, and how a profile's identifiers compare with what a
 * change wants: the plain-data questions plan.ts, resolve.ts and the batched lookups share.
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
export const sameValue = (field: string, a: string | null | undefined, b: string | null | undefined) =>
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
