import type { Identifiers, IdentityChange } from '../identity-change.js';
import type { KlaviyoProfile } from '../klaviyo/client.js';

/** What to do with one change, decided from plain data; executing it is someone else's job. */
export type SyncPlan =
  | { action: 'patch'; profileId: string; attributes: Identifiers }
  | { action: 'create'; attributes: Identifiers }
  | { action: 'skip'; reason: 'unchanged'; profileId: string }
  | { action: 'skip'; reason: 'nothing-to-create' };

/** A change older than the last one applied for the same customer must not overwrite it. */
export function isStale(occurredAt: string, lastAppliedAt: string | undefined): boolean {
  return lastAppliedAt !== undefined && Date.parse(occurredAt) < Date.parse(lastAppliedAt);
}

// Klaviyo matches emails case-insensitively, so a change of case alone is no change.
const sameEmail = (a: string | null, b: string | null) => (a ?? '').toLowerCase() === (b ?? '').toLowerCase();

/** The identifier attributes the change asks for (absent = leave, null = clear). */
function requested(change: IdentityChange): Identifiers {
  const attributes: Identifiers = {};
  if (change.email !== undefined) attributes.email = change.email;
  if (change.phoneNumber !== undefined) attributes.phone_number = change.phoneNumber;
  return attributes;
}

/**
 * Decides how the profile found by external_id (or none) is brought in line with the change:
 * PATCH only the identifiers that differ, skip when none does, create when there is no profile.
 */
export function planChange(change: IdentityChange, profile: KlaviyoProfile | undefined): SyncPlan {
  const wanted = requested(change);
  if (!profile) {
    const identifiers = Object.fromEntries(Object.entries(wanted).filter(([, value]) => value !== null));
    if (Object.keys(identifiers).length === 0) return { action: 'skip', reason: 'nothing-to-create' };
    return { action: 'create', attributes: { external_id: change.externalId, ...identifiers } };
  }
  const attributes: Identifiers = {};
  if (wanted.email !== undefined && !sameEmail(wanted.email, profile.email)) attributes.email = wanted.email;
  if (wanted.phone_number !== undefined && wanted.phone_number !== profile.phone_number) {
    attributes.phone_number = wanted.phone_number;
  }
  if (Object.keys(attributes).length === 0)
    return { action: 'skip', reason: 'unchanged', profileId: profile.id };
  return { action: 'patch', profileId: profile.id, attributes };
}
