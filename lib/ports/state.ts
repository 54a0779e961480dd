import type { DeadLetter } from '../dead-letter.js';
import type { AuditedValue, IdentifierDigests, IdentifierKey } from '../privacy/identifier-digest.js';

export interface AppliedChange {
  tenant: string;
  externalId: string;
  occurredAt: string;
  /** No signature vouches for `occurredAt`: recorded without moving the watermark (plan.ts, watermarkAfter). */
  occurredAtUnsigned?: boolean;
  sourceEventId: string;
  profileId: string | undefined;
  /**
   * Write only onto the customer's state item as it stands, never make one: for a write about
   * another customer (a swap's holder), whose erasure may have deleted the item meanwhile.
   */
  onlyIfHeld?: true;
  /** Digests of the profile's identifiers once the change is applied (or as seen, when nothing needed writing). */
  digests?: RecordedDigests;
  /**
   * When the change was decided `unchanged` (nothing to write): the decision is kept with the
   * state, the last one and a count, in place of an audit entry: one write, not two. The audit
   * log's history shows it among the entries.
   */
  unchangedDecidedAt?: string;
}

/**
 * What the customer's profile held when we last applied or saw it, as keyed digests (never the
 * values): lets a no-op cost nothing. `keyId` names the tenant key they were made with.
 */
export interface RecordedDigests extends IdentifierDigests {
  keyId: string;
}

/** The tenant's keys for identifiers at rest, from its secret (the worker reads it with the Klaviyo key). */
export type IdentifierKeyForTenant = (tenant: string) => Promise<IdentifierKey>;

/** A change that met an identifier held by another customer, kept so that customer can trade. */
export interface PendingChange {
  /**
   * The identifiers the change wants, sealed to the customer's record (lib/privacy): needed to
   * PATCH a swap. Absent in a pending change recorded before they were sealed: unknown then.
   */
  sealedIdentifiers?: string;
  occurredAt: string;
  occurredAtUnsigned?: boolean;
  sourceEventId: string;
  /** Deliveries of this change that met the other customer's identifier so far. */
  conflicts?: number;
}

export interface CustomerState {
  /**
   * The staleness watermark: when the last applied change with a signed time happened (a change
   * timed only by an unsigned header does not move it).
   */
  lastAppliedAt?: string;
  pending?: PendingChange;
  /** The customer's Klaviyo profile, as of the last change applied or seen. */
  profileId?: string;
  digests?: RecordedDigests;
  /** Shopify merged this customer into that one (and deleted it): its changes are skipped from then on. */
  mergedInto?: string;
  /** When the merge happened. */
  mergedAt?: string;
}

/** A customer merged away into another, as a Shopify customer merge says. */
export interface MergedCustomer {
  tenant: string;
  externalId: string;
  intoExternalId: string;
  mergedAt: string;
}

export interface SyncStateStore {
  getState(tenant: string, externalId: string): Promise<CustomerState>;
  /** Records an applied change and clears any pending one; false when a newer one was recorded meanwhile. */
  recordApplied(change: AppliedChange): Promise<boolean>;
  recordPending(tenant: string, externalId: string, pending: PendingChange): Promise<void>;
  /** Marks the customer merged into another and forgets its profile and pending change; kept by later writes. */
  recordMerged(merged: MergedCustomer): Promise<void>;
  /** Forgets the customer's recorded profile, so that its next change looks the profile up again. */
  forgetProfile(tenant: string, externalId: string): Promise<void>;
}

/** A customer's items on the state table as they are stored, for an export (lib/privacy/erasure.ts). */
export interface HeldRecords {
  /** The `state` item's attributes (its keys left out), or undefined when there is none. */
  state: Record<string, unknown> | undefined;
  /** The audit entries, oldest first, as stored (masked and digested). */
  audit: AuditEntry[];
}

/** The items an erasure deleted from the state table. */
export interface ErasedItems {
  stateItems: number;
  auditItems: number;
}

/**
 * The erasure record, also the marker that keeps an erased customer's queued changes from being
 * applied: who asked, when, and what was deleted; never the erased id, email or phone. A
 * customer's is keyed by `subject`, the keyed digest of its external id (erasureSubject).
 */
export interface ErasureRecord {
  tenant: string;
  scope: 'customer' | 'shop';
  /** The keyed digest of the erased customer's id (scope customer), with the key's id. */
  subject?: string;
  keyId?: string;
  /** Who asked: Shopify's compliance webhooks, an ERP, the CLI. */
  source: 'shopify' | 'erp' | 'cli';
  /** The request's delivery (Shopify webhook id, ERP webhook id, CLI run). */
  sourceEventId: string;
  requestedAt: string;
  erasedAt: string;
  counts: ErasedItems & {
    letters: number;
    /** Klaviyo profiles whose deletion was requested (the tenant's onCustomerRedact policy). */
    klaviyoDeletions: number;
  };
  /** Set when not every parked letter could be read (a very large or unavailable dead-letter queue). */
  lettersIncomplete?: boolean;
}

/** Erasure and export on the state table (lib/adapters/dynamo-sync-state.ts; in memory for tests). */
export interface CustomerRecords {
  readCustomer(tenant: string, externalId: string): Promise<HeldRecords>;
  /** Deletes the customer's state item and audit items. */
  eraseCustomer(tenant: string, externalId: string): Promise<ErasedItems>;
  /** Deletes every customer item of the tenant (and its customers' erasure markers). */
  eraseTenant(tenant: string): Promise<ErasedItems>;
  /** Writes (or overwrites) the erasure record. */
  recordErasure(record: ErasureRecord): Promise<void>;
  /** Whether a customer erasure is recorded for this subject (erasureSubject). */
  isErased(tenant: string, subject: string): Promise<boolean>;
}

/** The dead-letter queue as erasure and export see it (lib/adapters/sqs-peek.ts). */
export interface ParkedLetters {
  /** The letters `picks` selects, none removed (a FIFO queue shows only each group's first). */
  read(picks: (letter: DeadLetter) => boolean): Promise<{ letters: DeadLetter[]; problem?: string }>;
  /** Deletes the letters `picks` selects, leaving the others; `complete`: the whole queue was read. */
  drop(
    picks: (letter: DeadLetter) => boolean,
  ): Promise<{ dropped: number; complete: boolean; problem?: string }>;
}

/** Where a customer's data export is delivered (S3 in production, lib/adapters/s3-export-destination.ts). */
export interface ExportDestination {
  put(key: string, json: string): Promise<{ location: string }>;
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
  /** The profile's identifiers before the decision (email and phone masked and digested, never plain). */
  before?: AuditedIdentifiers;
  /** What the decision wrote. */
  after?: AuditedIdentifiers;
  /** The tenant key the digests were made with: `history --email` confirms values only with it. */
  keyId?: string;
  occurredAt: string;
  decidedAt: string;
}

/**
 * Identifiers as the audit trail keeps them: `external_id` as it is, `email` and `phone_number` as
 * AuditedValue. A plain string for an email or phone is an entry written before they were masked.
 */
export type AuditedIdentifiers = Record<string, AuditedValue | string | null>;

export interface AuditLog {
  record(entry: AuditEntry): Promise<void>;
  /** Newest first. */
  history(tenant: string, externalId: string, limit?: number): Promise<AuditEntry[]>;
}
