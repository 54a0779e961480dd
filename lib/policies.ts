/**
 * How a tenant wants changes applied: what the plan (lib/sync/plan.ts) decides with, and what
 * the settings (lib/config.ts) may override per tenant. Apart from both, so that neither layer
 * imports the other for it.
 */
export interface Policies {
  /** No profile found: create one, or skip the change. */
  onMissingProfile: 'create' | 'skip';
  /** Another profile without our external_id (or with the same one) holds a wanted identifier. */
  onDuplicateProfile: 'merge' | 'park' | 'skip';
  /** Tries before a change blocked by another customer's identifier is parked. */
  conflictAttempts: number;
  /**
   * Read the recorded profile back from Klaviyo (one request) instead of trusting the record: an
   * identifier someone edited in Klaviyo is then corrected by a no-op change too.
   */
  verifyUnchanged: boolean;
}

export const defaultPolicies: Policies = {
  onMissingProfile: 'create',
  onDuplicateProfile: 'merge',
  conflictAttempts: 4,
  verifyUnchanged: false,
};
