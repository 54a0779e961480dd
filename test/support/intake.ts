import { vi } from 'vitest';
import { PermanentError } from '../../lib/errors.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import type { IntakeDependencies } from '../../lib/intake/receive.js';
import type { DeadLetter, WebhookSecret } from '../../lib/ports.js';

export const NOW = new Date('2026-05-01T12:00:00Z');

/** A tenant's webhook secret: all an intake may read (never a Klaviyo key). */
export const tenantSecret = (webhookSecrets: Partial<WebhookSecret> = {}): WebhookSecret => ({
  shopifyWebhookSecrets: [],
  erpWebhookSecrets: [],
  ...webhookSecrets,
});

const missing = (tenant: string) => new PermanentError('tenant_secret_missing', `no secret for ${tenant}`);

/**
 * The intake's ports as in-memory fakes: a queue and a dead-letter queue that record, tenant
 * secrets read from `secrets` (a tenant not in it has no secret), counted by `get`'s calls.
 */
export function fakeIntake(
  secrets: Record<string, WebhookSecret>,
  overrides: Partial<IntakeDependencies> = {},
) {
  // Shopify's customers/merge queues a CustomerMerge: its tests read it from here too.
  const queued: IdentityChange[] = [];
  const parked: DeadLetter[] = [];
  const get = vi.fn(async (tenant: string, _options?: { fresh?: boolean }) => {
    const secret = Object.hasOwn(secrets, tenant) ? secrets[tenant] : undefined;
    if (!secret) throw missing(tenant);
    return secret;
  });
  const log = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };
  const deps: IntakeDependencies = {
    secrets: { get },
    queue: { enqueue: async (change) => void queued.push(change as IdentityChange) },
    deadLetters: { park: async (letter) => void parked.push(letter) },
    telemetry: { log, count: vi.fn() },
    clock: () => NOW,
    ...overrides,
  };
  return { deps, queued, parked, get, log };
}
