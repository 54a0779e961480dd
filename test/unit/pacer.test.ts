import { describe, expect, it } from 'vitest';
import { MERGE_ENDPOINT } from '../../lib/klaviyo/limits.js';
import { createKlaviyoPacer, createPacer, type Pacer } from '../../lib/klaviyo/pacer.js';

const START = Date.parse('2026-06-01T00:00:00.000Z');
const PROFILES = 'GET /api/profiles';

function fakeClock() {
  let now = START;
  return { now: () => now, set: (ms: number) => (now = ms) };
}

const reserveMany = (pacer: Pacer, endpoint: string, count: number) =>
  Array.from({ length: count }, () => pacer.reserve(endpoint));

/** The most requests any fixed window of `windowMs` would count, wherever its edges fall. */
function worstWindow(times: number[], windowMs: number): number {
  let most = 0;
  for (let first = 0, last = 0; last < times.length; last++) {
    while ((times[last] as number) - (times[first] as number) >= windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

describe('createPacer', () => {
  it('lets a burst through at once, then holds the next request a window (and margin) later', () => {
    const clock = fakeClock();
    const pacer = createPacer({
      limitsOf: () => ({ perSecond: 75, perMinute: 700 }),
      marginMs: 100,
      now: clock.now,
    });
    const times = reserveMany(pacer, PROFILES, 76);
    expect(times.slice(0, 75).every((time) => time === START)).toBe(true);
    expect(times[75]).toBe(START + 1_100);
  });

  it('keeps every endpoint under both limits in any window, however it is aligned', () => {
    const clock = fakeClock();
    const pacer = createPacer({
      limitsOf: () => ({ perSecond: 75, perMinute: 700 }),
      marginMs: 100,
      now: clock.now,
    });
    const times = reserveMany(pacer, PROFILES, 2_000);
    expect(worstWindow(times, 1_000)).toBe(75);
    expect(worstWindow(times, 60_000)).toBe(700);
    // The 701st and the 1,401st requests each wait exactly one steady window (plus margin), no more.
    expect(times[700]).toBe(START + 60_100);
    expect(times[1_400]).toBe(START + 2 * 60_100);
  });

  it('counts each endpoint apart, and gives an endpoint with its own limits those', () => {
    const clock = fakeClock();
    const pacer = createPacer({
      limitsOf: (endpoint) =>
        endpoint === MERGE_ENDPOINT ? { perSecond: 10, perMinute: 150 } : { perSecond: 75, perMinute: 700 },
      marginMs: 0,
      now: clock.now,
    });
    reserveMany(pacer, PROFILES, 75);
    expect(pacer.reserve('PATCH /api/profiles/{id}')).toBe(START);
    const merges = reserveMany(pacer, MERGE_ENDPOINT, 11);
    expect(merges[9]).toBe(START);
    expect(merges[10]).toBe(START + 1_000);
  });

  it('does not hold requests once the window has passed', () => {
    const clock = fakeClock();
    const pacer = createPacer({
      limitsOf: () => ({ perSecond: 2, perMinute: 100 }),
      marginMs: 0,
      now: clock.now,
    });
    reserveMany(pacer, PROFILES, 2);
    clock.set(START + 5_000);
    expect(pacer.reserve(PROFILES)).toBe(START + 5_000);
  });

  it('serves waiting callers first come, first served, sleeping only as long as needed', async () => {
    const clock = fakeClock();
    const slept: number[] = [];
    const pacer = createPacer({
      limitsOf: () => ({ perSecond: 1, perMinute: 60 }),
      marginMs: 0,
      now: clock.now,
      sleep: async (ms) => slept.push(ms),
    });
    await Promise.all([pacer.wait(PROFILES), pacer.wait(PROFILES), pacer.wait(PROFILES)]);
    expect(slept).toEqual([1_000, 2_000]);
  });
});

describe('createKlaviyoPacer', () => {
  it('honours a fractional --rate-per-second (10.5): 10 in any second, 630 in any minute', () => {
    const pacer = createKlaviyoPacer(10.5, { now: fakeClock().now });
    const times = reserveMany(pacer, PROFILES, 1_300);
    expect(worstWindow(times, 1_000)).toBe(10);
    expect(worstWindow(times, 60_000)).toBeLessThanOrEqual(630);
  });

  it('honours a rate below one a second instead of rounding it up', () => {
    const pacer = createKlaviyoPacer(0.5, { now: fakeClock().now });
    const times = reserveMany(pacer, PROFILES, 3);
    expect(times[1]).toBeGreaterThanOrEqual((times[0] as number) + 2_000);
  });

  it('refuses a rate that is not a positive number', () => {
    expect(() => createKlaviyoPacer(0)).toThrow(RangeError);
    expect(() => createKlaviyoPacer(Number.NaN)).toThrow(RangeError);
  });

  it("paces to Klaviyo's documented limits by default", () => {
    const pacer = createKlaviyoPacer(undefined, { now: fakeClock().now });
    const times = reserveMany(pacer, PROFILES, 76);
    expect(times[74]).toBe(START);
    expect(times[75]).toBeGreaterThanOrEqual((times[0] as number) + 1_000);
  });

  it('paces every endpoint at --rate-per-second, but merges no faster than Klaviyo allows', () => {
    const pacer = createKlaviyoPacer(200, { now: fakeClock().now });
    const profiles = reserveMany(pacer, PROFILES, 201);
    expect(profiles[199]).toBe(profiles[0]);
    expect(profiles[200]).toBeGreaterThanOrEqual((profiles[0] as number) + 1_000);
    const merges = reserveMany(pacer, MERGE_ENDPOINT, 11);
    expect(merges[10]).toBeGreaterThanOrEqual((merges[0] as number) + 1_000);
  });
});
