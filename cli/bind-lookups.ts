import { type BindFound, bindLookups, foundAmong } from '../lib/bind/plan-bind.js';
import type { KlaviyoProfile, KlaviyoProfiles } from '../lib/ports.js';
import type { BindTask } from './rows.js';

/**
 * Bind's lookups for a chunk of rows, made together: every row's email in `any(email,[…])` queries
 * (as given and lower-cased: Klaviyo's filters compare case-sensitively), then the phones of the
 * rows no email found, at most 100 values a query. Returns every profile found.
 */
export async function lookUpForBind(
  klaviyo: KlaviyoProfiles,
  tasks: readonly BindTask[],
): Promise<KlaviyoProfile[]> {
  const emails = tasks.flatMap(({ email }) => (email ? [email] : []));
  const byEmail = await klaviyo.findProfilesAmong('email', emails);
  const phones = tasks
    .filter((task) => !foundAmong(bindLookups(task), byEmail))
    .flatMap(({ phoneNumber }) => (phoneNumber ? [phoneNumber] : []));
  return [...byEmail, ...(await klaviyo.findProfilesAmong('phone_number', phones))];
}

/** What a chunk's rows found, as the run leaves it. */
export interface BindChunk {
  found(task: BindTask): BindFound | undefined;
  /**
   * Marks a profile as being bound to `externalId` before the PATCH (or the bulk import job) is
   * sent, so another row that found the same profile sees it taken (a conflict) rather than
   * binding it too.
   */
  claim(profileId: string, externalId: string): void;
  /** The PATCH failed: the profile is as it was. */
  release(profileId: string): void;
}

/**
 * `claims` (profile id → external id) may be shared by the chunks of a run: a profile a bulk job
 * is still binding stays taken for the chunks looked up after it.
 */
export function bindChunk(
  profiles: readonly KlaviyoProfile[],
  claims = new Map<string, string>(),
): BindChunk {
  return {
    found(task) {
      const found = foundAmong(bindLookups(task), profiles);
      const claimedBy = found && claims.get(found.profile.id);
      return claimedBy ? { ...found, profile: { ...found.profile, external_id: claimedBy } } : found;
    },
    claim: (profileId, externalId) => claims.set(profileId, externalId),
    release: (profileId) => claims.delete(profileId),
  };
}
