import type { DeadLetter } from './dead-letter.js';
import type { ScannedProfile } from './duplicates/match.js';
import type { Identifiers, QueuedChange } from './identity-change.js';

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
  /** The profile's identifiers once the change is applied (or as seen, when nothing needed writing). */
  identifiers?: RecordedIdentifiers;
}

/** What the customer's profile held when we last applied or saw it: lets a no-op cost nothing. */
export interface RecordedIdentifiers {
  email: string | null;
  phone_number: string | null;
}

/** A change that met an identifier held by another customer, kept so that customer can trade. */
export interface PendingChange {
  identifiers: Identifiers;
  occurredAt: string;
  sourceEventId: string;
  /** Deliveries of this change that met the other customer's identifier so far. */
  conflicts?: number;
}

export interface CustomerState {
  /** When the last applied change for this customer happened, if any was applied. */
  lastAppliedAt?: string;
  pending?: PendingChange;
  /** The customer's Klaviyo profile, as of the last change applied or seen. */
  profileId?: string;
  identifiers?: RecordedIdentifiers;
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
  /** The profiles whose `field` is any of `values` (at most 100), in one request. */
  findProfilesAmong(field: IdentifierField, values: string[]): Promise<KlaviyoProfile[]>;
  /** The profile, or undefined when Klaviyo has none with that id (404). */
  getProfile(id: string): Promise<KlaviyoProfile | undefined>;
  updateProfile(id: string, attributes: Identifiers): Promise<KlaviyoProfile>;
  /** Create-or-update matched by any identifier; `created` tells which happened. */
  importProfile(attributes: Identifiers): Promise<{ profile: KlaviyoProfile; created: boolean }>;
  /** Queues a merge of `sourceId` into `destinationId`; Klaviyo deletes the source when done. */
  mergeProfiles(destinationId: string, sourceId: string): Promise<void>;
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
  /** Resolves when a request to `endpoint` (e.g. `PATCH /api/profiles/{id}`) may be sent. */
  wait(endpoint: string): Promise<void>;
  /** Told what each answer's RateLimit-* headers said. */
  observe?(endpoint: string, report: SteadyWindowReport): void;
}
