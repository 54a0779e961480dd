import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { bothGates, requestGateOf } from '../../cli/session.js';
import { cliSettings } from '../../cli/settings.js';
import type { RequestGate } from '../../lib/ports.js';

/** How a CLI run paces itself; the shared quota against dynalite is in test/integration/cli.test.ts. */
function aRecordingGate(name: string, events: string[]): RequestGate {
  return {
    async wait(endpoint) {
      events.push(`${name} wait ${endpoint}`);
      await Promise.resolve();
      events.push(`${name} granted`);
    },
    observe: (endpoint, report) => events.push(`${name} observed ${endpoint} ${report.remaining}`),
  };
}

describe('bothGates', () => {
  it('takes a shared slot only once its own pace lets the request go, and tells both what Klaviyo said', async () => {
    const events: string[] = [];
    const gate = bothGates(aRecordingGate('own', events), aRecordingGate('shared', events));
    await gate.wait('GET /api/profiles');
    gate.observe?.('GET /api/profiles', { remaining: 5, resetSeconds: 30 });
    expect(events).toEqual([
      'own wait GET /api/profiles',
      'own granted',
      'shared wait GET /api/profiles',
      'shared granted',
      'own observed GET /api/profiles 5',
      'shared observed GET /api/profiles 5',
    ]);
  });
});

describe('requestGateOf', () => {
  const settings = cliSettings({});

  it('paces in this process without SYNC_STATE_TABLE', () => {
    expect(requestGateOf('acme', undefined, settings, undefined).description).toBe(
      "in this process at Klaviyo's limits",
    );
    expect(requestGateOf('acme', 20, settings, undefined).description).toBe(
      'in this process, at most 20/s per endpoint',
    );
  });

  it("draws on the tenant's shared quota with SYNC_STATE_TABLE, capped by --rate-per-second", () => {
    const dynamodb = new DynamoDBClient({ region: 'us-east-1' });
    const shared = cliSettings({ SYNC_STATE_TABLE: 'state', KLAVIYO_QUOTA_SHARE: '0.5' });
    expect(requestGateOf('acme', 20, shared, dynamodb).description).toBe(
      "by tenant acme's quota shared with the workers (KLAVIYO_QUOTA_SHARE 0.5), at most 20/s per endpoint",
    );
    dynamodb.destroy();
  });
});
