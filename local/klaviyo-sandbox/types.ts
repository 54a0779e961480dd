/** Public types of the Klaviyo sandbox. Attribute names follow Klaviyo's profile resource (snake_case). */

export const IDENTIFIERS = ['email', 'phone_number', 'external_id'] as const;
export type Identifier = (typeof IDENTIFIERS)[number];

/** Profile attributes whose value is a plain (nullable) string. */
export const STRING_ATTRIBUTES = [
  ...IDENTIFIERS,
  'first_name',
  'last_name',
  'organization',
  'locale',
  'title',
  'image',
] as const;
export type StringAttribute = (typeof STRING_ATTRIBUTES)[number];

export const LOCATION_FIELDS = [
  'address1',
  'address2',
  'city',
  'country',
  'latitude',
  'longitude',
  'region',
  'zip',
  'timezone',
  'ip',
] as const;
export type LocationField = (typeof LOCATION_FIELDS)[number];

/** Klaviyo's ProfileLocation: every field nullable; latitude/longitude may be strings or numbers. */
export type ProfileLocation = {
  [K in LocationField]: K extends 'latitude' | 'longitude' ? string | number | null : string | null;
};

/** A stored profile, flat: the resource's `id` plus its attributes. Unset attributes are null. */
export interface Profile {
  id: string;
  email: string | null;
  phone_number: string | null;
  external_id: string | null;
  first_name: string | null;
  last_name: string | null;
  organization: string | null;
  locale: string | null;
  title: string | null;
  image: string | null;
  created: string;
  updated: string;
  last_event_date: string | null;
  location: ProfileLocation;
  properties: Record<string, unknown>;
}

/** Writable attributes as sent in a request: present = set, null = clear, absent = untouched. */
export type ProfileChanges = { [K in StringAttribute]?: string | null } & {
  location?: Partial<ProfileLocation> | null;
  properties?: Record<string, unknown> | null;
};

export type SeedProfileInput = ProfileChanges & { id?: string };

export type IdentifierQuery = Partial<Record<Identifier, string>>;

/** 400 answers as Klaviyo refuses a value (`invalid`); the others are transient. */
export const FAULT_STATUSES = [400, 429, 500, 502, 503, 504] as const;
export type FaultStatus = (typeof FAULT_STATUSES)[number];

interface FaultScope {
  /** How many matching requests the fault applies to (default 1; unlimited with `probability` or `forMs`). */
  times?: number;
  /** Only requests with this HTTP method (case-insensitive). */
  method?: string;
  /** Only requests whose path starts with this, e.g. `/api/profile-import`. */
  pathPrefix?: string;
  /** Applies to each matching request with this chance (0 < p ≤ 1); the others pass untouched. */
  probability?: number;
  /** Applies only this long after it is injected (e.g. Klaviyo down for 60 s). */
  forMs?: number;
  /** Delay or reset after the request is applied rather than before (its answer is what is lost). */
  afterApplying?: boolean;
}

/** Answer matching requests with this status (after an optional delay) instead of processing them. */
export interface ErrorFault extends FaultScope {
  status: FaultStatus;
  retryAfterSeconds?: number;
  delayMs?: number;
}

/** Delay matching requests, then process them normally. */
export interface SlowFault extends FaultScope {
  status?: undefined;
  delayMs: number;
}

/** Drop the connection with no answer, before the request is applied or (`afterApplying`) after. */
export interface ResetFault extends FaultScope {
  status?: undefined;
  reset: true;
  delayMs?: number;
}

export type SandboxFault = ErrorFault | SlowFault | ResetFault;

export interface RateLimits {
  burstPerSecond: number;
  steadyPerMinute: number;
}

/** A `POST /api/profile-merge` that was accepted and has not run yet. */
export interface PendingMerge {
  /** The profile that survives. */
  destinationId: string;
  /** The profile merged into the destination, then deleted. */
  sourceId: string;
  /** `clock()` when the merge was accepted. */
  requestedAt: number;
}

/** One profile a bulk import job could not import, as `GET …/import-errors` answers it. */
export interface ImportErrorRecord {
  id: string;
  code: string;
  title: string;
  detail: string;
  /** Names the profile in the job's body, e.g. `/data/attributes/profiles/data/3/attributes/email`. */
  source: { pointer: string };
  original_payload: Record<string, unknown> | null;
}

/** A bulk profile import job (`POST /api/profile-bulk-import-jobs`) and what became of it. */
export interface BulkImportJobState {
  id: string;
  status: 'queued' | 'processing' | 'complete' | 'cancelled';
  /** `clock()` times. */
  createdAt: number;
  startedAt?: number;
  completedAt?: number;
  total: number;
  completed: number;
  failed: number;
  errors: ImportErrorRecord[];
  /** The profiles it created or updated, in the order of the job's profiles. */
  profileIds: string[];
}

export interface KlaviyoSandboxOptions {
  /** Default 0: a random free port. */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Accepted private keys. Default `['pk_sandbox_demo']`. */
  apiKeys?: string[];
  /** Accepted `revision` header values. Default: any real date from 2024-10-15 up to today (per `clock`). */
  revisions?: string[];
  /** Per-endpoint fixed windows. Default 75/s and 750/min (Klaviyo's profiles endpoints). */
  rateLimits?: RateLimits;
  /**
   * Where the fixed windows start, in ms after the clock's whole minutes (and seconds). Klaviyo's
   * phase is its own: `'random'` picks one at random. Default 0.
   */
  rateLimitPhaseMs?: number | 'random';
  /** Fixed windows of `POST /api/profile-merge`, counted apart. Default 10/s and 150/min, as Klaviyo. */
  mergeRateLimits?: RateLimits;
  /**
   * Real-time milliseconds (not `clock`) between accepting a profile merge and carrying it out.
   * Default 200. `Infinity`: merges only run through `settleMerges()`.
   */
  mergeDelayMs?: number;
  /** Fixed windows of each bulk import job endpoint, counted apart. Default 10/s and 150/min, as Klaviyo. */
  bulkImportRateLimits?: RateLimits;
  /**
   * Real-time milliseconds from accepting a bulk import job to carrying it out (it is `processing`
   * from half of that). Default 200. `Infinity`: jobs only run through `settleBulkImports()`.
   */
  bulkImportDelayMs?: number;
  /** How many API requests `requests` keeps, the latest. Default 10,000. */
  maxRecordedRequests?: number;
  /** Milliseconds since the epoch; drives rate-limit windows, timestamps and the revision date check. */
  clock?: () => number;
}

/** One request received on the Klaviyo API routes (control routes are not recorded). */
export interface RecordedRequest {
  method: string;
  /** Pathname as received, without the query, e.g. `/api/profiles/01J…`. */
  path: string;
  /** Decoded query parameters (form decoding, as the real API does: a raw `+` becomes a space). */
  query: Record<string, string>;
  /** Raw request target as received, e.g. `/api/profiles?filter=equals(email%2C%22a%40b.c%22)`. */
  url: string;
  /** Header names lowercased; repeated headers joined with ', '. */
  headers: Record<string, string>;
  /** Parsed JSON body, or undefined when empty or not JSON. */
  body: unknown;
  /** Response status; 0 while the request is still being answered (e.g. during an injected delay) or when reset. */
  status: number;
  /** The injected fault it met, if any: `429`, `503`, `slow`, `reset`… (`+applied` when after applying). */
  fault?: string;
  /** `clock()` when the request arrived. */
  receivedAt: number;
}

export interface KlaviyoSandbox {
  /** Base URL without trailing slash, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  /** Live log of API requests, oldest first. */
  readonly requests: readonly RecordedRequest[];
  stop(): Promise<void>;
  /** Creates a profile directly (validation and uniqueness still apply; throws ApiError otherwise). */
  seedProfile(attrs: SeedProfileInput): Profile;
  getProfile(id: string): Profile | undefined;
  listProfiles(): Profile[];
  /** The profile matching every identifier given. */
  findProfile(query: IdentifierQuery): Profile | undefined;
  deleteProfile(id: string): boolean;
  /** Queues faults for the next matching API requests (checked after auth and revision). */
  injectFaults(faults: SandboxFault | SandboxFault[]): void;
  /** Drops every queued fault, used up or not. */
  clearFaults(): void;
  /** Replaces the accepted private keys, as when a key is rotated (revoked and a new one made). */
  setApiKeys(keys: string[]): void;
  clearRequests(): void;
  /** Accepted profile merges that have not run yet, oldest first. */
  pendingMerges(): PendingMerge[];
  /** Runs every pending merge now, oldest first; returns how many were carried out (not dropped). */
  settleMerges(): number;
  /** Every bulk import job accepted, oldest first, with its import errors and profiles. */
  bulkImportJobs(): BulkImportJobState[];
  /** Carries out every bulk import job not complete yet; returns how many. */
  settleBulkImports(): number;
  /** Clears profiles, pending merges, bulk import jobs, queued faults, the request log and rate-limit counters. */
  reset(): void;
}
