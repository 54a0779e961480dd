import { describe, expect, it } from 'vitest';
import { nextRetryDelayMs, parseRetryAfter, type RetryPolicy } from '../../lib/klaviyo/retry-policy.js';

const policy: RetryPolicy = { maxAttempts: 4, budgetMs: 20_000, baseDelayMs: 250, maxDelayMs: 8_000 };

describe('retry policy', () => {
  it('honours Retry-After, with at most 10% jitter on top', () => {
    expect(nextRetryDelayMs(policy, 1, 0, 3, () => 0)).toBe(3000);
    expect(nextRetryDelayMs(policy, 1, 0, 3, () => 1)).toBe(3300);
  });

  it('backs off exponentially with full jitter when Klaviyo gives no delay', () => {
    expect(nextRetryDelayMs(policy, 1, 0, undefined, () => 1)).toBe(250);
    expect(nextRetryDelayMs(policy, 3, 0, undefined, () => 1)).toBe(1000);
    expect(nextRetryDelayMs(policy, 3, 0, undefined, () => 0.5)).toBe(500);
  });

  it('stops after the last attempt, and before a wait that would overrun the budget', () => {
    expect(nextRetryDelayMs(policy, 4, 0, undefined, () => 1)).toBeUndefined();
    expect(nextRetryDelayMs(policy, 1, 18_000, 3, () => 0)).toBeUndefined();
    expect(nextRetryDelayMs(policy, 1, 16_000, 3, () => 0)).toBe(3000);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('7', 0)).toBe(7);
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    const now = Date.parse('2026-11-22T10:00:00Z');
    expect(parseRetryAfter('Sun, 22 Nov 2026 10:00:05 GMT', now)).toBe(5);
  });
});
