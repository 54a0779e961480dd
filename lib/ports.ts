import type { Identifiers, IdentityChange } from './identity-change.js';
import type { KlaviyoProfiles } from './klaviyo/client.js';

/**
 * The I/O the core depends on, as small interfaces. Production wires them to SQS, DynamoDB,
 * Secrets Manager and Klaviyo (lib/adapters, lib/klaviyo); tests hand in the same adapters
 * pointed at local peers, or fakes.
 */

export interface ChangeQueue {
  enqueue(change: IdentityChange): Promise<void>;
}

/** Something kept for a person to look at and replay: it could not be applied as it was. */
export interface DeadLetter {
  /** Machine-readable, e.g. `invalid_payload`, `klaviyo_duplicate_profile`. */
  reason: string;
  detail: string;
  tenant: string | undefined;
  source: IdentityChange['source'] | 'unknown';
  sourceEventId: string;
  /** The queued change, when the failure came after intake. */
  change?: IdentityChange;
  /** The raw request body, when the payload itself was unusable. */
  payload?: string;
  /** Extra facts for the reader, e.g. Klaviyo's error code and duplicate_profile_id. */
  context?: Record<string, unknown>;
  parkedAt: string;
}

export interface DeadLetters {
  park(letter: DeadLetter): Promise<void>;
}

export interface TenantSecret {
  klaviyoPrivateKey: string;
  shopifyWebhookSecrets: string[];
  erpWebhookSecrets: string[];
}

export interface TenantSecrets {
  /** `fresh` bypasses the cache, for when a cached value may have been rotated. */
  get(tenant: string, options?: { fresh?: boolean }): Promise<TenantSecret>;
}

export interface AppliedChange {
  tenant: string;
  externalId: string;
  occurredAt: string;
  sourceEventId: string;
  profileId: string | undefined;
}

/** A change that met an identifier held by another customer, kept so that customer can trade. */
export interface PendingChange {
  identifiers: Identifiers;
  occurredAt: string;
  sourceEventId: string;
}

export interface CustomerState {
  /** When the last applied change for this customer happened, if any was applied. */
  lastAppliedAt?: string;
  pending?: PendingChange;
}

export interface SyncStateStore {
  getState(tenant: string, externalId: string): Promise<CustomerState>;
  /** Records an applied change and clears any pending one; false when a newer one was recorded meanwhile. */
  recordApplied(change: AppliedChange): Promise<boolean>;
  recordPending(tenant: string, externalId: string, pending: PendingChange): Promise<void>;
}

/** One decision about one change, kept for `identity-sync history` and for support questions. */
export interface AuditEntry {
  tenant: string;
  externalId: string;
  sourceEventId: string;
  /** applied, bound, created, merged, swapped, unchanged, stale, skipped or parked. */
  outcome: string;
  /** The plan's action, e.g. patch, merge-then-patch, skip. */
  plan: string;
  reason?: string;
  profileIds: string[];
  before?: Record<string, string | null>;
  after?: Record<string, string | null>;
  occurredAt: string;
  decidedAt: string;
}

export interface AuditLog {
  record(entry: AuditEntry): Promise<void>;
  /** Newest first. */
  history(tenant: string, externalId: string, limit?: number): Promise<AuditEntry[]>;
}

/** A Klaviyo client holding the tenant's private key. */
export type KlaviyoForTenant = (tenant: string, options?: { fresh?: boolean }) => Promise<KlaviyoProfiles>;

export type Clock = () => Date;
