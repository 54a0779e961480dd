import { describe, expect, it } from 'vitest';
import { createSyncWorker, klaviyoForTenants } from '../../lib/composition.js';
import { loadConfig } from '../../lib/config.js';
import {
  type Outcome,
  PARKED_REASON,
  parkedReasonDimension,
  type Telemetry,
} from '../../lib/observability/telemetry.js';
import type { TenantSecrets } from '../../lib/ports.js';
import { Reason } from '../../lib/reasons.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { usePeersInEnv } from '../support/local-peers.js';

/**
 * The counts the dashboard charts that the wiring (lib/composition.ts) adds: Klaviyo's answers,
 * retries and 429s from the client's callbacks, and every parked letter by reason. Against the
 * local peers (the Klaviyo sandbox, fauxqs).
 */
const peers = usePeersInEnv();

/** Counts by metric name and dimensions, e.g. `Parked reason=invalid_message`. */
function countingTelemetry() {
  const counts = new Map<string, number>();
  const quiet = () => undefined;
  const telemetry: Telemetry = {
    log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    count: (outcome: Outcome, value = 1, dimensions = {}) => {
      const key = [outcome, ...Object.entries(dimensions).map(([k, v]) => `${k}=${v}`)].join(' ');
      counts.set(key, (counts.get(key) ?? 0) + value);
    },
  };
  return { telemetry, counts };
}

const demoSecrets: TenantSecrets = {
  get: async () => ({
    klaviyoPrivateKey: DEMO_TENANT.klaviyoPrivateKey,
    shopifyWebhookSecrets: [],
    erpWebhookSecrets: [],
  }),
};

describe('metrics of the wiring', () => {
  it("counts Klaviyo's answers, the 429s among them and the retries", async () => {
    const { telemetry, counts } = countingTelemetry();
    const config = loadConfig({ ...peers.env, KLAVIYO_RETRY_BUDGET_MS: '5000' });
    peers.klaviyo?.injectFaults({ status: 429, retryAfterSeconds: 0, times: 1, method: 'GET' });
    const klaviyo = await klaviyoForTenants(config, demoSecrets, telemetry)(DEMO_TENANT.tenant);
    const found = await klaviyo.findProfiles('external_id', DEMO_TENANT.customer.externalId);
    expect(found.map((profile) => profile.email)).toEqual([DEMO_TENANT.customer.email]);
    expect(Object.fromEntries(counts)).toEqual({ KlaviyoRequest: 2, KlaviyoThrottled: 1, KlaviyoRetried: 1 });
  });

  it('counts every parked letter by its reason', async () => {
    const { telemetry, counts } = countingTelemetry();
    const { deadLetters } = createSyncWorker(loadConfig(peers.env), telemetry);
    const letter = {
      detail: 'd',
      source: 'unknown' as const,
      sourceEventId: 'e',
      parkedAt: new Date().toISOString(),
    };
    await deadLetters.park({ ...letter, reason: Reason.InvalidMessage });
    await deadLetters.park({ ...letter, reason: 'klaviyo_invalid' });
    await deadLetters.park({ ...letter, reason: 'klaviyo_403' });
    expect(Object.fromEntries(counts)).toEqual({
      [`Parked ${PARKED_REASON}=invalid_message`]: 1,
      [`Parked ${PARKED_REASON}=klaviyo_error`]: 2,
    });
  });
});

describe('the reason dimension of Parked', () => {
  it('keeps our reasons and folds the open-ended ones into a few values', () => {
    for (const reason of Object.values(Reason)) expect(parkedReasonDimension(reason)).toBe(reason);
    expect(parkedReasonDimension('klaviyo_duplicate_profile')).toBe('klaviyo_error');
    expect(parkedReasonDimension('something_new')).toBe('other');
  });
});
