/**
 * Klaviyo's rate limits, per account and per endpoint, in fixed windows of 1 s (burst) and 60 s
 * (steady). One place for the figures: the sandbox enforces them and our pacers plan with them.
 *
 * The profile endpoints' steady limit is 750/min: the figure in Klaviyo's OpenAPI document for
 * these operations, which the sandbox follows. Klaviyo's general rate-limit page puts its "L" tier
 * at 700/min; pacers that must leave room (for a CLI run beside the worker, or for that lower
 * figure) take their share below these limits rather than changing them.
 */
export interface RateLimit {
  perSecond: number;
  perMinute: number;
}

/** GET/POST/PATCH profiles and profile-import. */
export const KLAVIYO_PROFILE_LIMITS: RateLimit = { perSecond: 75, perMinute: 750 };
/** POST /api/profile-merge. */
export const KLAVIYO_MERGE_LIMITS: RateLimit = { perSecond: 10, perMinute: 150 };
/** POST /api/profile-bulk-import-jobs (and its reads). */
export const KLAVIYO_BULK_IMPORT_LIMITS: RateLimit = { perSecond: 10, perMinute: 150 };

export const MERGE_ENDPOINT = 'POST /api/profile-merge';

/** The limits Klaviyo applies to an endpoint, keyed like `PATCH /api/profiles/{id}`. */
export function limitsOf(endpoint: string): RateLimit {
  if (endpoint === MERGE_ENDPOINT) return KLAVIYO_MERGE_LIMITS;
  if (endpoint.includes('/api/profile-bulk-import-jobs')) return KLAVIYO_BULK_IMPORT_LIMITS;
  return KLAVIYO_PROFILE_LIMITS;
}

/**
 * The most requests one second of our wall time may take so that, however many seconds in a row
 * take it, no window of Klaviyo's is exceeded: a 60-second window overlaps at most 61 of our
 * seconds, and a 1-second window at most 2.
 */
export const steadyShareOfOneSecond = (limits: RateLimit): number =>
  Math.max(1, Math.min(Math.floor(limits.perMinute / 61), Math.floor(limits.perSecond / 2)));

/** A fraction of `limits`, for a service that must leave the rest of the account's quota to others. */
export const shareOf = (limits: RateLimit, share: number): RateLimit => ({
  perSecond: limits.perSecond * share,
  perMinute: limits.perMinute * share,
});
