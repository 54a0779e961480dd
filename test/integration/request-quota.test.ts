import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoRequestQuota } from '../../lib/adapters/dynamo-request-quota.js';
import { steadyShareOfOneSecond } from '../../lib/klaviyo/limits.js';
import { type LocalPeers, startLocalPeers } from '../../scripts/local-stack/peers.js';

/**
 * The shared request quota against dynalite with the real SDK client: several instances (as
 * several Lambda workers would be) draw on one counter. Time is virtual: each pause moves a shared
 * clock forward, so the test runs in milliseconds and asserts counts, not durations.
 */
let peers: LocalPeers;
beforeAll(async () => {
  peers = await startLocalPeers();
});
afterAll(() => peers.stop());

const LIMITS = { perSecond: 10, perMinute: 183 };
const ENDPOINT = 'PATCH /api/profiles/{id}';

function virtualClock(start = Date.parse('2026-12-01T10:00:00.000Z')) {
  let now = start;
  return {
    now: () => now,
    pause: async (ms: number) => {
      now = Math.max(now, now + ms);
      await Promise.resolve();
    },
  };
}

async function countersOf(account: string) {
  const { Items = [] } = await peers.dynamodb.send(
    new ScanCommand({ TableName: peers.env.SYNC_STATE_TABLE as string }),
  );
  return Items.filter((item) => item.pk?.S === `quota#${account}#${ENDPOINT}`).map((item) => ({
    second: Number(item.sk?.S),
    used: Number(item.used?.N),
  }));
}

const quotaOf = (account: string, clock: ReturnType<typeof virtualClock>) =>
  createDynamoRequestQuota({
    client: peers.dynamodb,
    tableName: peers.env.SYNC_STATE_TABLE as string,
    account,
    limitsOf: () => LIMITS,
    ...clock,
  });

describe('shared request quota (DynamoDB)', () => {
  it('keeps every second of several instances together within the share, and grants every request', async () => {
    const clock = virtualClock();
    const account = 'quota-shared';
    const instances = Array.from({ length: 3 }, () => quotaOf(account, clock));
    const share = steadyShareOfOneSecond(LIMITS);
    expect(share).toBe(3);

    await Promise.all(instances.flatMap((quota) => Array.from({ length: 7 }, () => quota.wait(ENDPOINT))));

    const counters = await countersOf(account);
    expect(counters.reduce((sum, counter) => sum + counter.used, 0)).toBe(21);
    expect(Math.max(...counters.map((counter) => counter.used))).toBeLessThanOrEqual(share);
    // 21 requests at 3 a second need at least 7 distinct seconds.
    expect(counters.length).toBeGreaterThanOrEqual(7);
  });

  it('keeps tenants apart: one account spending its share leaves another untouched', async () => {
    const clock = virtualClock();
    const quota = (account: string) => quotaOf(account, clock);
    const started = clock.now();
    await Promise.all([quota('tenant-a').wait(ENDPOINT), quota('tenant-a').wait(ENDPOINT)]);
    await Promise.all([quota('tenant-b').wait(ENDPOINT), quota('tenant-b').wait(ENDPOINT)]);
    expect(clock.now()).toBe(started);
  });

  it("holds an endpoint until the window resets when Klaviyo's headers say it is nearly spent", async () => {
    const clock = virtualClock();
    const quota = quotaOf('quota-held', clock);
    const started = clock.now();
    quota.observe?.(ENDPOINT, { remaining: 1, resetSeconds: 20 });
    await quota.wait(ENDPOINT);
    expect(clock.now() - started).toBeGreaterThanOrEqual(20_000);

    const later = clock.now();
    quota.observe?.(ENDPOINT, { remaining: 100, resetSeconds: 20 });
    await quota.wait(ENDPOINT);
    expect(clock.now()).toBe(later);
  });
});
