import { setTimeout as sleep } from 'node:timers/promises';
import { BULK_IMPORT_ENDPOINTS } from './bulk-import.js';
import {
  KLAVIYO_BULK_IMPORT_LIMITS,
  KLAVIYO_MERGE_LIMITS,
  KLAVIYO_PROFILE_LIMITS,
  MERGE_ENDPOINT,
  type RateLimit,
} from './limits.js';

export { MERGE_ENDPOINT, type RateLimit };

/**
 * Holds requests back so that each endpoint stays under its rate limits, instead of living on
 * 429s. Klaviyo counts each endpoint in two fixed windows (1 s burst, 60 s steady) whose edges we
 * cannot see, so the pacer keeps a sliding window: never more than the limit in any span of the
 * window's length, which is under the limit wherever Klaviyo's edges fall. `marginMs` widens each
 * window to absorb the jitter between when we send a request and when Klaviyo counts it.
 */
export interface Pacer {
  /** Resolves when a request to `endpoint` (e.g. `PATCH /api/profiles/{id}`) may be sent. */
  wait(endpoint: string): Promise<void>;
  /** Books the next slot for `endpoint` and returns its time (ms since the epoch, never before now). */
  reserve(endpoint: string): number;
}

export interface PacerOptions {
  limits: RateLimit;
  /** Endpoints with limits of their own, keyed like `POST /api/profile-merge`. */
  overrides?: Record<string, RateLimit>;
  marginMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<unknown>;
}

const SECOND_MS = 1_000;
const MINUTE_MS = 60_000;

export function createPacer(options: PacerOptions): Pacer {
  const now = options.now ?? Date.now;
  const pause = options.sleep ?? sleep;
  const marginMs = options.marginMs ?? 100;
  /** Per endpoint, the times of the latest slots booked, oldest first. */
  const booked = new Map<string, number[]>();

  function reserve(endpoint: string): number {
    const { perSecond, perMinute } = options.overrides?.[endpoint] ?? options.limits;
    const slots = booked.get(endpoint) ?? [];
    booked.set(endpoint, slots);
    // In booking order, so the slots stay sorted and callers are served first come, first served.
    const at = Math.max(
      now(),
      slots.at(-1) ?? 0,
      windowOpensAt(slots, perSecond, SECOND_MS + marginMs),
      windowOpensAt(slots, perMinute, MINUTE_MS + marginMs),
    );
    slots.push(at);
    if (slots.length > Math.max(perSecond, perMinute)) slots.shift();
    return at;
  }

  return {
    reserve,
    async wait(endpoint) {
      const delay = reserve(endpoint) - now();
      if (delay > 0) await pause(delay);
    },
  };
}

/** The earliest time another request fits: a full window after the `limit`-th latest one. */
function windowOpensAt(slots: number[], limit: number, windowMs: number): number {
  const oldestCounted = slots[slots.length - limit];
  return oldestCounted === undefined ? 0 : oldestCounted + windowMs;
}

/**
 * Klaviyo's limits, or `ratePerSecond` for every endpoint when the account's (or a sandbox's)
 * limits differ. Merges and bulk import jobs never go faster than Klaviyo allows them.
 */
export function createKlaviyoPacer(ratePerSecond?: number, clock: Pick<PacerOptions, 'now'> = {}): Pacer {
  const limits =
    ratePerSecond === undefined
      ? KLAVIYO_PROFILE_LIMITS
      : { perSecond: ratePerSecond, perMinute: ratePerSecond * 60 };
  const atMost = (own: RateLimit) => ({
    perSecond: Math.min(limits.perSecond, own.perSecond),
    perMinute: Math.min(limits.perMinute, own.perMinute),
  });
  const overrides: Record<string, RateLimit> = { [MERGE_ENDPOINT]: atMost(KLAVIYO_MERGE_LIMITS) };
  for (const endpoint of BULK_IMPORT_ENDPOINTS) overrides[endpoint] = atMost(KLAVIYO_BULK_IMPORT_LIMITS);
  return createPacer({ limits, overrides, ...clock });
}
