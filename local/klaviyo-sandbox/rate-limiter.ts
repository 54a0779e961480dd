import { throttled } from './errors.js';
import type { RateLimits } from './types.js';

interface Window {
  index: number;
  count: number;
}

interface EndpointCounters {
  burst: Window;
  steady: Window;
}

const BURST_MS = 1_000;
const STEADY_MS = 60_000;

/**
 * Klaviyo's scheme: per endpoint, two fixed windows (1 s burst, 60 s steady); exceeding either
 * answers 429. Rejected requests do not consume quota.
 */
export class RateLimiter {
  readonly #limits: RateLimits;
  readonly #overrides: ReadonlyMap<string, RateLimits>;
  readonly #clock: () => number;
  readonly #counters = new Map<string, EndpointCounters>();
  /** Where the windows start relative to the clock: Klaviyo's are not aligned to ours. */
  readonly phaseMs: number;

  /**
   * `limits` applies to every endpoint not named in `overrides` (keyed like `take`'s endpoint).
   * `phaseMs`: the windows start that many ms after the clock's whole minutes (and seconds);
   * `'random'` picks it at random, as an unknown phase. Default 0.
   */
  constructor(
    limits: RateLimits,
    clock: () => number,
    overrides: Record<string, RateLimits> = {},
    phaseMs: number | 'random' = 0,
  ) {
    this.#limits = limits;
    this.#overrides = new Map(Object.entries(overrides));
    this.#clock = clock;
    this.phaseMs = phaseMs === 'random' ? Math.floor(Math.random() * STEADY_MS) : phaseMs % STEADY_MS;
  }

  /**
   * Counts one request against `endpoint`. Returns the RateLimit-* headers (steady window state,
   * as Klaviyo reports it) or throws a 429 ApiError carrying Retry-After.
   */
  take(endpoint: string): Record<string, string> {
    const now = this.#clock();
    const limits = this.#overrides.get(endpoint) ?? this.#limits;
    const counters = this.#countersFor(endpoint, now);
    const waits: number[] = [];
    if (counters.burst.count >= limits.burstPerSecond)
      waits.push(secondsUntilEnd(counters.burst, BURST_MS, now, this.phaseMs));
    if (counters.steady.count >= limits.steadyPerMinute) {
      waits.push(secondsUntilEnd(counters.steady, STEADY_MS, now, this.phaseMs));
    }
    if (waits.length > 0) throw throttled(Math.max(...waits));

    counters.burst.count++;
    counters.steady.count++;
    return {
      'ratelimit-limit': String(limits.steadyPerMinute),
      'ratelimit-remaining': String(limits.steadyPerMinute - counters.steady.count),
      'ratelimit-reset': String(secondsUntilEnd(counters.steady, STEADY_MS, now, this.phaseMs)),
    };
  }

  reset(): void {
    this.#counters.clear();
  }

  #countersFor(endpoint: string, now: number): EndpointCounters {
    const counters = this.#counters.get(endpoint) ?? { burst: newWindow(), steady: newWindow() };
    this.#counters.set(endpoint, counters);
    rollOver(counters.burst, Math.floor((now - this.phaseMs) / BURST_MS));
    rollOver(counters.steady, Math.floor((now - this.phaseMs) / STEADY_MS));
    return counters;
  }
}

const newWindow = (): Window => ({ index: -1, count: 0 });

function rollOver(window: Window, index: number): void {
  if (window.index === index) return;
  window.index = index;
  window.count = 0;
}

/** Whole seconds until the window ends, at least 1 so clients never retry immediately. */
function secondsUntilEnd(window: Window, sizeMs: number, now: number, phaseMs: number): number {
  return Math.max(1, Math.ceil(((window.index + 1) * sizeMs + phaseMs - now) / 1000));
}
