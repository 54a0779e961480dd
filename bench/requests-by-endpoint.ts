import type { RecordedRequest } from '../local/klaviyo-sandbox.js';

/**
 * What the Klaviyo sandbox received, by endpoint, for the benchmarks (apply-throughput,
 * apply-mixed, bind-bulk, throughput): requests, 429s, and the most it counted in any of its fixed windows,
 * to compare with Klaviyo's limits.
 */
export const endpointOf = (request: Pick<RecordedRequest, 'method' | 'path'>) =>
  `${request.method} ${request.path
    .replace(/^\/api\/profiles\/[^/]+$/, '/api/profiles/{id}')
    .replace(/^(\/api\/profile-bulk-import-jobs)\/[^/]+/, '$1/{id}')}`;

export function byEndpoint(requests: readonly RecordedRequest[]): Map<string, RecordedRequest[]> {
  const grouped = new Map<string, RecordedRequest[]>();
  for (const request of requests) {
    const key = endpointOf(request);
    const sent = grouped.get(key);
    if (sent) sent.push(request);
    else grouped.set(key, [request]);
  }
  return grouped;
}

/** One row per endpoint, for console.table. */
export function endpointTable(requests: readonly RecordedRequest[]) {
  return [...byEndpoint(requests)].map(([endpoint, sent]) => ({
    endpoint,
    requests: sent.length,
    '429s': sent.filter((request) => request.status === 429).length,
    'most in 1 s window': mostInFixedWindow(sent, 1_000),
    'most in 60 s window': mostInFixedWindow(sent, 60_000),
  }));
}

/** As the sandbox counts: requests accepted in each fixed window (429s do not count). */
function mostInFixedWindow(requests: readonly RecordedRequest[], windowMs: number): number {
  const counts = new Map<number, number>();
  for (const request of requests) {
    if (request.status === 429) continue;
    const window = Math.floor(request.receivedAt / windowMs);
    counts.set(window, (counts.get(window) ?? 0) + 1);
  }
  return Math.max(0, ...counts.values());
}

/** The values a lookup's filter asks for: `equals(field,"v")` or `any(field,["a","b"])`. */
export const filterValues = (filter: string): string[] =>
  [...filter.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((match) => (match[1] ?? '').replace(/\\(.)/g, '$1'));

/** The most requests in any span of `windowMs`, wherever its edges fall; `times` sorted. */
export function mostInAnySpan(times: readonly number[], windowMs: number): number {
  let most = 0;
  for (let first = 0, last = 0; last < times.length; last++) {
    while ((times[last] as number) - (times[first] as number) >= windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

/** An in-process io for a CLI command: progress to stderr, the summary to stdout. */
export const benchIo = (env: Record<string, string>) => ({
  stdout: process.stdout,
  stderr: process.stderr,
  env,
});
