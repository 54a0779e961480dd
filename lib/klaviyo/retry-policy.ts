/**
 * When to try a Klaviyo request again, as pure arithmetic so it is tested without waiting.
 * Klaviyo's own SDK ignores Retry-After; we honour it, and we never wait past the budget: a
 * change that cannot be done in time goes back to SQS, which retries it later.
 */
export interface RetryPolicy {
  maxAttempts: number;
  budgetMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  maxAttempts: 4,
  budgetMs: 20_000,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
};

/** Parses Retry-After as delay seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - nowMs) / 1000);
}

/**
 * Delay before attempt `attempt + 1` (attempt counts from 1), or undefined to stop retrying.
 * With Retry-After: that long plus up to 10% jitter, so throttled callers do not return in
 * lockstep. Without: "full jitter" exponential backoff.
 */
export function nextRetryDelayMs(
  policy: RetryPolicy,
  attempt: number,
  elapsedMs: number,
  retryAfterSeconds: number | undefined,
  random: () => number = Math.random,
): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  const delay =
    retryAfterSeconds !== undefined
      ? retryAfterSeconds * 1000 * (1 + 0.1 * random())
      : random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const rounded = Math.round(delay);
  return elapsedMs + rounded > policy.budgetMs ? undefined : rounded;
}
