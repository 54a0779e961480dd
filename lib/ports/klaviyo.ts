import type { Identifiers } from '../identity-change.js';

/** A Klaviyo profile's id and the identifiers we keep in step. */
export interface KlaviyoProfile {
  id: string;
  email: string | null;
  phone_number: string | null;
  external_id: string | null;
}

/** A profile as the duplicates finder compares it: the identifiers and the names. */
export interface ScannedProfile extends KlaviyoProfile {
  first_name?: string | null;
  last_name?: string | null;
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
  /** Conditional writes that lost to another holder's, in all (each costs a write): for operators and benchmarks. */
  contendedWrites?: number;
}

/** Where the holders sharing an account's quota record their leases (DynamoDB, or memory in tests). */
export interface QuotaLedger {
  read(endpoint: string): Promise<QuotaLedgerState>;
  /** Writes `next` unless someone wrote since `expectedVersion`; false when they did. */
  write(endpoint: string, next: QuotaLedgerState, expectedVersion: number): Promise<boolean>;
}
