import type { SeenBodies } from '../ports.js';

/** Seen bodies in memory, with the DynamoDB adapter's rules: for tests and local runs. */
export function createMemorySeenBodies(windowSeconds: number): SeenBodies {
  const seen = new Map<string, { deliveryId: string; expiresAtMs: number }>();
  return {
    async claim(key, deliveryId, now) {
      const first = seen.get(key);
      if (first && first.deliveryId !== deliveryId && first.expiresAtMs > now.getTime()) return false;
      seen.set(key, { deliveryId, expiresAtMs: now.getTime() + windowSeconds * 1000 });
      return true;
    },
  };
}
