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
/** POST /api/data-privacy-deletion-jobs (Request Profile Deletion). */
export const KLAVIYO_DELETION_LIMITS: RateLimit = { perSecond: 3, perMinute: 60 };

export const MERGE_ENDPOINT = 'POST /api/profile-merge';
export const DELETION_PATH = '/api/data-privacy-deletion-jobs';
export const DELETION_ENDPOINT = `POST ${DELETION_PATH}`;

/** The limits Klaviyo applies to an endpoint, keyed like `PATCH /api/profiles/{id}`. */
export function limitsOf(endpoint: string): RateLimit {
  if (endpoint === MERGE_ENDPOINT) return KLAVIYO_MERGE_LIMITS;
  if (endpoint === DELETION_ENDPOINT) return KLAVIYO_DELETION_LIMITS;
  if (endpoint.includes('/api/profile-bulk-import-jobs')) return KLAVIYO_BULK_IMPORT_LIMITS;
  return KLAVIYO_PROFILE_LIMITS;
}

/**
 * A limit as a whole count per window, for sliding-window bookkeeping. A fractional limit of at
 * least 1 rounds down (10.5/s: 10 in any second); below 1 the window stretches instead of the
 * count rounding up (0.5/s: 1 in any 2 s), so a small share is honoured, never raised.
 */
export function countPerWindow(limit: number, windowMs: number): { count: number; windowMs: number } {
  if (!(limit > 0) || !Number.isFinite(limit))
    throw new RangeError(`a rate limit must be a positive number, not ${limit}`);
  return limit >= 1 ? { count: Math.floor(limit), windowMs } : { count: 1, windowMs: windowMs / limit };
}

/** Throws unless both figures are positive finite numbers (fractions allowed). */
export function assertValidLimits(limits: RateLimit): RateLimit {
  countPerWindow(limits.perSecond, 1_000);
  countPerWindow(limits.perMinute, 60_000);
  return limits;
}

/** A fraction of `limits`, for a service that must leave the rest of the account's quota to others. */
export const shareOf = (limits: RateLimit, share: number): RateLimit =>
  assertValidLimits({ perSecond: limits.perSecond * share, perMinute: limits.perMinute * share });
