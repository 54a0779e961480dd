/** Helpers the benchmarks share. */

import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/** The value below which a fraction `q` of `values` fall (nearest rank). */
export const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

/** A repeatable random number generator in [0, 1): the same `seed`, the same sequence (a benchmark's traffic). */
export function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** The middle value (the upper of the two middle ones for an even count). */
export const median = (values: number[]) => quantile(values, 0.5);

/**
 * The environment of a function in its own process: this shell's, the local peers' endpoints, and
 * the deployed defaults that change what it writes (serverless.yml: INFO logs, metrics on). Flags
 * this process runs under (tsx's loader in NODE_OPTIONS) are not the function's.
 */
export function lambdaEnvironment(peersEnv: Record<string, string>): Record<string, string | undefined> {
  const {
    NODE_OPTIONS: _,
    POWERTOOLS_LOG_LEVEL: __,
    POWERTOOLS_METRICS_DISABLED: ___,
    ...shell
  } = process.env;
  return {
    ...shell,
    ...peersEnv,
    LOG_LEVEL: 'INFO',
    POWERTOOLS_SERVICE_NAME: 'klaviyo-identity-sync',
    POWERTOOLS_METRICS_NAMESPACE: 'KlaviyoIdentitySync',
  };
}

/**
 * An item's size as DynamoDB bills it (attribute names and values; a number about a byte per two
 * digits), close enough to say how many 1 KB write units a write of it takes.
 */
export function itemBytes(item: Record<string, AttributeValue>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name);
    if (value.S !== undefined) bytes += Buffer.byteLength(value.S);
    else if (value.N !== undefined) bytes += Math.ceil(value.N.replace(/^-|\./g, '').length / 2) + 1;
  }
  return bytes;
}
