import { setTimeout as sleep } from 'node:timers/promises';
import {
  assertValidLimits,
  countPerWindow,
  KLAVIYO_PROFILE_LIMITS,
  limitsOf,
  type RateLimit,
} from './limits.js';

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
  /** The limits of an endpoint, keyed like `POST /api/profile-merge`. */
  limitsOf: (endpoint: string) => RateLimit;
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
    const { perSecond, perMinute } = options.limitsOf(endpoint);
    const burst = countPerWindow(perSecond, SECOND_MS);
    const steady = countPerWindow(perMinute, MINUTE_MS);
    const slots = booked.get(endpoint) ?? [];
    booked.set(endpoint, slots);
    // In booking order, so the slots stay sorted and callers are served first come, first served.
    const at = Math.max(
      now(),
      slots.at(-1) ?? 0,
      windowOpensAt(slots, burst.count, burst.windowMs + marginMs),
      windowOpensAt(slots, steady.count, steady.windowMs + marginMs),
    );
    slots.push(at);
    if (slots.length > Math.max(burst.count, steady.count)) slots.shift();
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

/** The earliest time another request fits: a full window after the `limit`-th latest one (a whole count). */
function windowOpensAt(slots: number[], limit: number, windowMs: number): number {
  const oldestCounted = slots[slots.length - limit];
  return oldestCounted === undefined ? 0 : oldestCounted + windowMs;
}

/**
 * Klaviyo's limits (lib/klaviyo/limits.ts), or `ratePerSecond` for the profile endpoints when the
 * account's (or a sandbox's) limits differ. Merges and bulk import jobs never go faster than
 * Klaviyo allows them.
 */
export function createKlaviyoPacer(ratePerSecond?: number, clock: Pick<PacerOptions, 'now'> = {}): Pacer {
  if (ratePerSecond === undefined) return createPacer({ limitsOf, ...clock });
  const run = assertValidLimits({ perSecond: ratePerSecond, perMinute: ratePerSecond * 60 });
  return createPacer({
    limitsOf: (endpoint) => {
      const own = limitsOf(endpoint);
      if (own === KLAVIYO_PROFILE_LIMITS) return run;
      return {
        perSecond: Math.min(run.perSecond, own.perSecond),
        perMinute: Math.min(run.perMinute, own.perMinute),
      };
    },
    ...clock,
  });
}
