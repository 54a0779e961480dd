import type { BulkImportError, KlaviyoProfile } from '../ports.js';

/**
 * What `identity-sync bind` does with one customer, decided from plain data: the customer's id,
 * the profile its lookups found, and then what became of the write. Bind only ever writes an
 * external_id on a profile that has none; it never creates, merges or takes a profile from
 * another customer.
 */
export type BindLookup = { field: 'email' | 'phone_number'; value: string };

export interface BindFound {
  lookup: BindLookup;
  profile: KlaviyoProfile;
}

/** What a customer's bind came to (a row of the results). */
export interface BindOutcome {
  outcome: 'bound' | 'would-bind' | 'unchanged' | 'conflict' | 'not-found' | 'failed';
  profileId?: string;
  reason?: string;
}

/** Either set external_id on the profile found (`patch`), or the outcome, decided already. */
export type BindPlan = { patch: KlaviyoProfile; reason: string } | BindOutcome;

/** Email first, then phone; the first profile found is the one decided on. */
export const bindLookups = (customer: { email?: string; phoneNumber?: string }): BindLookup[] => [
  ...(customer.email ? [{ field: 'email' as const, value: customer.email }] : []),
  ...(customer.phoneNumber ? [{ field: 'phone_number' as const, value: customer.phoneNumber }] : []),
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

/** Before any write: patch the profile found when it has no external_id, else the outcome. */
export function planBind(externalId: string, found: BindFound | undefined): BindPlan {
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

/** What became of a planned patch: written (on its own or in a bulk import job), or not. */
export type BindWrite =
  | { kind: 'dry-run' }
  | { kind: 'written' }
  /** Klaviyo refused the PATCH with 409: another profile (`holderId`) already has this external_id. */
  | { kind: 'held'; holderId: string }
  /** A bulk import job's error for this profile. */
  | { kind: 'import-error'; jobId: string; error: BulkImportError };

/**
 * After the write: the outcome of a planned patch, or `again` when the profile is gone (merged or
 * deleted meanwhile) and the customer is to be looked at afresh.
 */
export function settleBind(
  externalId: string,
  planned: { patch: KlaviyoProfile; reason: string },
  write: Exclude<BindWrite, { kind: 'import-error' }>,
): BindOutcome;
export function settleBind(
  externalId: string,
  planned: { patch: KlaviyoProfile; reason: string },
  write: BindWrite,
): BindOutcome | 'again';
export function settleBind(
  externalId: string,
  planned: { patch: KlaviyoProfile; reason: string },
  write: BindWrite,
): BindOutcome | 'again' {
  const profileId = planned.patch.id;
  switch (write.kind) {
    case 'dry-run':
      return { outcome: 'would-bind', profileId, reason: `would set external_id (${planned.reason})` };
    case 'written':
      return { outcome: 'bound', profileId, reason: planned.reason };
    case 'held':
      return {
        outcome: 'conflict',
        profileId,
        reason: `external_id ${externalId} is already on profile ${write.holderId}`,
      };
    case 'import-error': {
      const { jobId, error } = write;
      if (error.code === 'duplicate_profile')
        return {
          outcome: 'conflict',
          profileId,
          reason: `external_id ${externalId} is already on another profile (bulk import job ${jobId}: ${error.detail})`,
        };
      if (error.code === 'not_found') return 'again';
      return {
        outcome: 'failed',
        profileId,
        reason: `klaviyo_${error.code}: bulk import job ${jobId} could not bind it: ${error.detail}`,
      };
    }
  }
}
