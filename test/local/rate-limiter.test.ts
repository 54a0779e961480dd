import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../local/klaviyo-sandbox/rate-limiter.js';

const MINUTE = Date.parse('2026-06-01T00:00:00.000Z');
const LIMITS = { burstPerSecond: 75, steadyPerMinute: 750 };

function spend(limiter: RateLimiter, count: number) {
  let headers: Record<string, string> = {};
  for (let i = 0; i < count; i++) headers = limiter.take('GET /api/profiles');
  return headers;
}

describe('sandbox rate limiter', () => {
  it("starts its windows at the given phase, as Klaviyo's are not aligned to our clock", () => {
    let now = MINUTE + 20_000;
    const limiter = new RateLimiter(LIMITS, () => now, {}, 30_000);
    for (let second = 0; second < 10; second++, now += 1_000) spend(limiter, 75);
    now = MINUTE + 29_900;
    expect(() => limiter.take('GET /api/profiles')).toThrow();
    now = MINUTE + 30_000; // a new steady window (and burst window) begins here, not at a whole minute
    expect(spend(limiter, 1)['ratelimit-reset']).toBe('60');
  });

  it('picks a random phase when asked', () => {
    const phases = new Set(
      Array.from({ length: 5 }, () => new RateLimiter(LIMITS, Date.now, {}, 'random').phaseMs),
    );
    expect(phases.size).toBeGreaterThan(1);
    for (const phase of phases) expect(phase).toBeGreaterThanOrEqual(0);
  });
});
