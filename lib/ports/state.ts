import type { DeadLetter } from './dead-letter.js';
import type { ScannedProfile } from './duplicates/match.js';
import type { Identifiers, QueuedChange } from './identity-change.js';
import type { AuditedValue, IdentifierDigests, IdentifierKey } from './privacy/identifier-digest.js';

/**
 * The I/O the core depends on, as small interfaces. Production wires them to SQS, DynamoDB,
 * Secrets Manager and Klaviyo (lib/adapters, lib/klaviyo); tests hand in the same adapters
 * pointed at local peers, or fakes.
 */

export interface ChangeQueue {
  enqueue(change: QueuedChange): Promise<void>;
}

/** A letter on the dead-letter queue: its one definition, with the schema, is lib/dead-letter.ts. */
export type { DeadLetter };

/**
 * The queued message a move takes off its queue (SQS's message id and SentTimestamp): a move's
 * deduplication id is made of it and the kind of move, so a retried move is dropped as the same
 * one and a later move of the same change (replayed, then parked again) is not.
 */
export interface MovedMessage {
  messageId: string;
  /** When it was queued (epoch ms), if known. */
  sentAt?: number | undefined;
}

export interface DeadLetters {
  /**
   * `from`: the queued message the worker is parking. Without it (intake), the letter is
   * deduplicated by its delivery, like the delivery's change on the changes queue.
   */
  park(letter: DeadLetter, from?: MovedMessage): Promise<void>;
}

/** A queued message the worker could not finish yet, and how long the queue should keep it hidden. */
export interface Redelivery {
  /** The handle the queue gave this delivery of the message. */
  receiptHandle: string;
  delaySeconds: number;
}

/** The changes queue as its consumer sees it: when a change it hands back is delivered again. */
export interface Redeliveries {
  retryAfter(redeliveries: readonly Redelivery[]): Promise<void>;
}

/**
 * Signed bodies seen lately (lib/intake/receive.ts). A signature covers a body, not the delivery
 * id beside it: the same body again under another delivery id is a replay; under the same id, the
 * sender's retry. Each is remembered for `windowSeconds` from its first delivery.
 */
export interface SeenBodies {
  /**
   * Records that delivery `deliveryId` brought the body named `key` (source and digest) at `now`;
   * false when another delivery brought it within the window. True again for the same delivery.
   */
  claim(key: string, deliveryId: string, now: Date): Promise<boolean>;
}

/** A tenant's webhook secret (`<prefix><tenant>/webhook`): all the intakes may read. */
export interface WebhookSecret {
  shopifyWebhookSecrets: string[];
  erpWebhookSecrets: string[];
}

/** A tenant's Klaviyo key secret (`<prefix><tenant>/klaviyo`): the worker's and the CLI's. */
export interface KlaviyoKeySecret {
  klaviyoPrivateKey: string;
  /** Keys the digests and sealed identifiers at rest (lib/privacy); without it, derived from the Klaviyo key. */
  identifierKey?: string;
}

/** Both parts of a tenant's secrets, as test fakes and tools that hold both pass them around. */
export type TenantSecret = WebhookSecret & KlaviyoKeySecret;

/** One kind of tenant secret, by tenant, cached. */
export interface TenantSecrets<T = KlaviyoKeySecret> {
  /** `fresh` bypasses the cache, for when a cached value may have been rotated. */
  get(tenant: string, options?: { fresh?: boolean }): Promise<T>;
}

export type WebhookSecrets = TenantSecrets<WebhookSecret>;

export interface AppliedChange {
  tenant: string;
  externalId: string;
  occurredAt: string;
  /** No signature vouches for `occurredAt`: recorded without moving the watermark (plan.ts, watermarkAfter). */
  occurredAtUnsigned?: boolean;
  sourceEventId: string;
  profileId: string | undefined;
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

/** A Klaviyo profile's id and the identifiers we keep in step. */
export interface KlaviyoProfile {
  id: string;
  email: string | null;
  phone_number: string | null;
  external_id: string | null;
}

/** What a profile can be looked up by. */
export type IdentifierField = 'id' | 'email' | 'phone_number' | 'external_id';

/** The Klaviyo profile operations the core needs (lib/klaviyo/client.ts; in memory for tests). */
export interface KlaviyoProfiles {
  /** The profiles whose `field` is `value` (emails as given and lower-cased: filters are case-sensitive). */
  findProfiles(field: IdentifierField, value: string): Promise<KlaviyoProfile[]>;
  /**
   * The profiles whose `field` is any of `values` (emails as given and lower-cased), however many:
   * 100 values a request, in order (lib/klaviyo/lookup.ts).
   */
  findProfilesAmong(field: IdentifierField, values: string[]): Promise<KlaviyoProfile[]>;
  /** The profile, or undefined when Klaviyo has none with that id (404). */
  getProfile(id: string): Promise<KlaviyoProfile | undefined>;
  updateProfile(id: string, attributes: Identifiers): Promise<KlaviyoProfile>;
  /** Create-or-update matched by any identifier; `created` tells which happened. */
  importProfile(attributes: Identifiers): Promise<{ profile: KlaviyoProfile; created: boolean }>;
  /** Queues a merge of `sourceId` into `destinationId`; Klaviyo deletes the source when done. */
  mergeProfiles(destinationId: string, sourceId: string): Promise<void>;
  requestProfileDeletion(profileId: string): Promise<void>;
}

/** One profile of a bulk import job: `id` names the profile to update; without it, identifiers match. */
export interface BulkImportProfile {
  id?: string;
  /** Klaviyo's bulk import never clears a field: null is not sent. */
  attributes: { email?: string; phone_number?: string; external_id?: string };
}

/** A bulk profile import job as Klaviyo reports it (counts: completed + failed = total once done). */
export interface BulkImportJob {
  id: string;
  status: 'queued' | 'processing' | 'complete' | 'cancelled';
  total: number;
  completed: number;
  failed: number;
}

/** One profile a job could not import; `pointer` names it, e.g. `/data/attributes/profiles/data/3/attributes/email`. */
export interface BulkImportError {
  code: string;
  detail: string;
  pointer?: string;
  /** The profile as sent. */
  originalPayload?: unknown;
}

/** Klaviyo's bulk profile import jobs (lib/klaviyo/bulk-import.ts): asynchronous, up to 10,000 profiles a job. */
export interface KlaviyoBulkImports {
  startBulkImport(profiles: BulkImportProfile[]): Promise<BulkImportJob>;
  getBulkImport(jobId: string): Promise<BulkImportJob>;
  /** One page (up to 100) of a job's import errors; `next` is the cursor of the following page. */
  bulkImportErrors(jobId: string, cursor?: string): Promise<{ errors: BulkImportError[]; next?: string }>;
}

/** One page of the account's profiles, as the duplicates finder reads them (identifiers and names). */
export interface ProfilePage {
  profiles: ScannedProfile[];
  /** The cursor of the following page (Klaviyo's `page[cursor]` of `links.next`); none on the last page. */
  next?: string;
}

/** Reading the account's profiles with their names (lib/klaviyo/client.ts), for `identity-sync duplicates`. */
export interface KlaviyoProfileScan {
  /** One page of up to 100 profiles: the first without a cursor, then each page's `next`. */
  profilePage(cursor?: string): Promise<ProfilePage>;
  /** The profiles, with their names, whose `field` is any of `values` (at most 100), in one request. */
  scanProfilesAmong(field: IdentifierField, values: string[]): Promise<ScannedProfile[]>;
}

/** A Klaviyo client holding the tenant's private key. */
export type KlaviyoForTenant = (tenant: string, options?: { fresh?: boolean }) => Promise<KlaviyoProfiles>;

export type Clock = () => Date;

/** What Klaviyo's RateLimit-* headers say of an endpoint's steady (one-minute) window. */
export interface SteadyWindowReport {
  remaining: number;
  resetSeconds: number;
}

/** Holds Klaviyo requests back so that everyone sharing the account's quota stays under its limits. */
export interface RequestGate {
  /**
   * Resolves when a request to `endpoint` (e.g. `PATCH /api/profiles/{id}`) may be sent; rejects
   * with a transient `out_of_time` error when it could not be sent before the caller's deadline.
   */
  wait(endpoint: string): Promise<void>;
  /** Told what each answer's RateLimit-* headers said. */
  observe?(endpoint: string, report: SteadyWindowReport): void;
}

/**
 * A block of one endpoint's quota taken by one holder (a worker instance or a CLI run): at most
 * `requests` requests, sent within [`from`, `to`] of the holder's clock, never more than
 * `perSecond` in any second. What is not sent by `to` is lost.
 */
export interface QuotaLease {
  holder: string;
  from: number;
  to: number;
  requests: number;
  perSecond: number;
}

/** The leases of one endpoint of one account still counting against its windows. */
export interface QuotaLedgerState {
  /** Bumped by every write: a write succeeds only over the state it was computed from. */
  version: number;
  leases: QuotaLease[];
}

/** Where the holders sharing an account's quota record their leases (DynamoDB, or memory in tests). */
export interface QuotaLedger {
  read(endpoint: string): Promise<QuotaLedgerState>;
  /** Writes `next` unless someone wrote since `expectedVersion`; false when they did. */
  write(endpoint: string, next: QuotaLedgerState, expectedVersion: number): Promise<boolean>;
}
