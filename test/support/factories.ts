import type { IdentityChange } from '../../lib/identity-change.js';
import type { KlaviyoProfile } from '../../lib/klaviyo/client.js';

/** Test data with sensible defaults; each test states only what matters to it. */
export function aChange(overrides: Partial<IdentityChange> = {}): IdentityChange {
  return {
    tenant: 'acme',
    source: 'shopify',
    externalId: '1001',
    email: 'new@example.com',
    phoneNumber: '+14155550123',
    occurredAt: '2026-05-01T12:00:00.000Z',
    sourceEventId: `webhook-${Math.random().toString(36).slice(2)}`,
    receivedAt: '2026-05-01T12:00:01.000Z',
    ...overrides,
  };
}

export function aProfile(overrides: Partial<KlaviyoProfile> = {}): KlaviyoProfile {
  return {
    id: '01PROFILE',
    email: 'old@example.com',
    phone_number: '+14155550100',
    external_id: '1001',
    ...overrides,
  };
}
