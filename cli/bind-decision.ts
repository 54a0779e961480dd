import type { KlaviyoProfile } from '../lib/ports.js';
import type { BindTask } from './rows.js';

/**
 * What `identity-sync bind` does with one Shopify customer, decided from plain data: the
 * customer's id and the profile the lookups found. Bind only ever writes an external_id on a
 * profile that has none; it never creates, merges or takes a profile from another customer.
 */
export type BindLookup = { field: 'email' | 'phone_number'; value: string };

export interface BindFound {
  lookup: BindLookup;
  profile: KlaviyoProfile;
}

/** Either set external_id on the profile found, or report why not. */
export type BindDecision =
  | { patch: KlaviyoProfile; reason: string }
  | { outcome: 'unchanged' | 'conflict' | 'not-found'; profileId?: string; reason?: string };

/** Email first, then phone; the first profile found is the one decided on. */
export const bindLookups = (task: BindTask): BindLookup[] => [
  ...(task.email ? [{ field: 'email' as const, value: task.email }] : []),
  ...(task.phoneNumber ? [{ field: 'phone_number' as const, value: task.phoneNumber }] : []),
];

/**
 * The profile the lookups find, from the profiles a chunk's queries returned: the first lookup, in
 * order, that one of them answers (emails compared ignoring case, as Klaviyo matches them).
 */
export function foundAmong(
  lookups: BindLookup[],
  profiles: readonly KlaviyoProfile[],
): BindFound | undefined {
  for (const lookup of lookups) {
    const profile = profiles.find((candidate) => answers(lookup, candidate[lookup.field]));
    if (profile) return { lookup, profile };
  }
  return undefined;
}

const answers = (lookup: BindLookup, value: string | null) =>
  lookup.field === 'email' ? value?.toLowerCase() === lookup.value.toLowerCase() : value === lookup.value;

export function decideBind(externalId: string, found: BindFound | undefined): BindDecision {
  if (!found) return { outcome: 'not-found', reason: 'no profile has this email or phone' };
  const { profile, lookup } = found;
  const foundBy = `found by ${lookup.field === 'email' ? 'email' : 'phone'}`;
  if (profile.external_id === null) return { patch: profile, reason: foundBy };
  if (profile.external_id === externalId) return { outcome: 'unchanged', profileId: profile.id };
  return {
    outcome: 'conflict',
    profileId: profile.id,
    reason: `profile ${profile.id} (${foundBy}) belongs to customer ${profile.external_id}, not ${externalId}`,
  };
}

/** Klaviyo refused the PATCH with 409: another profile already has this customer's external_id. */
export const conflictOnBind = (externalId: string, profileId: string, holderId: string) => ({
  outcome: 'conflict' as const,
  profileId,
  reason: `external_id ${externalId} is already on profile ${holderId}`,
});
