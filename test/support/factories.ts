import { createMemorySyncState } from '../../lib/adapters/memory-sync-state.js';
import type { TenantPolicies } from '../../lib/config.js';
import type { CustomerMerge, Identifiers, IdentityChange } from '../../lib/identity-change.js';
import type { Outcome, Telemetry } from '../../lib/observability/telemetry.js';
import { defaultPolicies, type Policies } from '../../lib/policies.js';
import type {
  AppliedChange,
  Clock,
  DeadLetter,
  DeadLetters,
  KlaviyoProfile,
  KlaviyoProfiles,
  RecordedDigests,
  SyncStateStore,
} from '../../lib/ports.js';
import {
  customerRecordKey,
  digestIdentifiers,
  identifierKeyOf,
  sealIdentifiers,
} from '../../lib/privacy/identifier-digest.js';
import type { WorkerDependencies } from '../../lib/sync/handle-message.js';
import { type SyncDependencies, syncIdentityChange } from '../../lib/sync/sync-identity-change.js';
import { createMemoryKlaviyo, type MemoryKlaviyoOptions } from './memory-klaviyo.js';

/** The tenants' key for identifiers at rest in tests (a test value, no real secret). */
export const TEST_IDENTIFIER_KEY = identifierKeyOf({
  identifierKey: 'test-identifier-key-not-a-secret-0001',
  klaviyoPrivateKey: 'pk_test',
});
export const testIdentifierKeyFor = async () => TEST_IDENTIFIER_KEY;

/** What the state records of a profile's identifiers: their digests with the test key. */
export const recordedDigestsOf = (identifiers: {
  email?: string | null;
  phone_number?: string | null;
}): RecordedDigests => ({
  keyId: TEST_IDENTIFIER_KEY.id,
  ...digestIdentifiers(TEST_IDENTIFIER_KEY, identifiers),
});

/** A pending change's identifiers as the state keeps them: sealed to customer `externalId` of acme. */
export const sealedFor = (externalId: string, identifiers: Identifiers, tenant = 'acme') =>
  sealIdentifiers(TEST_IDENTIFIER_KEY, identifiers, customerRecordKey(tenant, externalId));

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

/** Customer `externalId`'s change applied to profile 01P, which holds `<externalId>@example.com`. */
export const anAppliedChange = (
  tenant: string,
  externalId: string,
  overrides: Partial<AppliedChange> = {},
): AppliedChange => ({
  tenant,
  externalId,
  occurredAt: '2026-05-01T12:00:00.000Z',
  sourceEventId: `event-${externalId}`,
  profileId: '01P',
  digests: recordedDigestsOf({ email: `${externalId}@example.com`, phone_number: null }),
  ...overrides,
});

/** A Shopify customer merge as queued: customer 1001 merged into 2002. */
export function aCustomerMerge(overrides: Partial<CustomerMerge> = {}): CustomerMerge {
  return {
    kind: 'customerMerge',
    tenant: 'acme',
    source: 'shopify',
    keptExternalId: '2002',
    deletedExternalId: '1001',
    status: 'completed',
    occurredAt: '2026-05-01T12:00:00.000Z',
    sourceEventId: 'merge-webhook',
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

type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Telemetry that keeps what it is told: log lines by level and metric counts by name. */
export function aRecordingTelemetry() {
  const logs: { level: LogLevel; message: string; attributes: Record<string, unknown> }[] = [];
  const counts = new Map<Outcome, number>();
  const logAt =
    (level: LogLevel) =>
    (message: string, ...extra: unknown[]) =>
      void logs.push({ level, message, attributes: Object.assign({}, ...extra.filter(isObject)) });
  const telemetry: Telemetry = {
    log: { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') },
    count: (outcome, value = 1) => void counts.set(outcome, (counts.get(outcome) ?? 0) + value),
  };
  return { telemetry, logs, counts };
}

const isObject = (value: unknown): value is object => typeof value === 'object' && value !== null;

/** A dead-letter queue that keeps the letters in memory. */
export function aDeadLetterRecorder(): DeadLetters & { letters: DeadLetter[] } {
  const letters: DeadLetter[] = [];
  return {
    letters,
    park: async (letter) => void letters.push(letter),
  };
}

/**
 * syncIdentityChange against Klaviyo and the sync state in memory, counting how often it asks for
 * the tenant's Klaviyo client (a secret read in production).
 */
export function aSyncWorld(
  options: { policies?: Partial<Policies>; klaviyo?: MemoryKlaviyoOptions; clock?: Clock } = {},
) {
  const klaviyo = createMemoryKlaviyo(options.klaviyo);
  const store = createMemorySyncState();
  let klaviyoAsked = 0;
  const sync = (change: IdentityChange, deps: Partial<SyncDependencies> = {}) =>
    syncIdentityChange(change, {
      state: store,
      audit: store,
      klaviyo: async () => {
        klaviyoAsked++;
        return klaviyo;
      },
      identifierKey: testIdentifierKeyFor,
      policies: { ...defaultPolicies, ...options.policies },
      clock: options.clock,
      mergeWait: { attempts: 3, firstDelayMs: 1 },
      ...deps,
    });
  const history = (externalId = '1001') => store.history('acme', externalId);
  const writes = () =>
    klaviyo.calls.filter((call) => call.method !== 'findProfiles' && call.method !== 'getProfile');
  return { klaviyo, store, sync, history, writes, klaviyoAsked: () => klaviyoAsked };
}

export interface MemoryWorkerOptions {
  policies?: Partial<TenantPolicies>;
  klaviyo?: (k: KlaviyoProfiles) => KlaviyoProfiles;
  state?: (s: SyncStateStore) => SyncStateStore;
}

/**
 * The worker's dependencies with Klaviyo, the state and the dead-letter queue in memory, applying
 * (not a dry run) at `now`; `klaviyo` and `state` wrap the memory ones (to make them fail), and the
 * times the tenant's Klaviyo client was asked for are counted (a secret read in production).
 */
export function aMemoryWorker(options: MemoryWorkerOptions & { now: string }) {
  const klaviyo = createMemoryKlaviyo();
  const store = createMemorySyncState();
  const deadLetters = aDeadLetterRecorder();
  const { telemetry, logs, counts } = aRecordingTelemetry();
  const tenantKlaviyo = options.klaviyo?.(klaviyo) ?? klaviyo;
  let klaviyoAsked = 0;
  const deps: WorkerDependencies = {
    state: options.state?.(store) ?? store,
    audit: store,
    policiesFor: () => ({ ...defaultPolicies, dryRun: false, ...options.policies }),
    identifierKeyFor: testIdentifierKeyFor,
    klaviyoFor: async () => {
      klaviyoAsked++;
      return tenantKlaviyo;
    },
    deadLetters,
    telemetry,
    clock: () => new Date(options.now),
  };

  /** A customer of acme whose profile the state knows, as a first applied change at `occurredAt` leaves it. */
  async function knownCustomer(externalId: string, email: string, occurredAt: string) {
    const profile = klaviyo.seed({ external_id: externalId, email });
    await store.recordApplied({
      tenant: 'acme',
      externalId,
      occurredAt,
      sourceEventId: `first-${externalId}`,
      profileId: profile.id,
      digests: recordedDigestsOf(profile),
    });
    return profile;
  }
  const stateOf = (externalId: string) => store.getState('acme', externalId);
  return {
    klaviyo,
    store,
    deps,
    deadLetters,
    logs,
    counts,
    knownCustomer,
    stateOf,
    klaviyoAsked: () => klaviyoAsked,
  };
}
