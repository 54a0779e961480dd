/**
 * Klaviyo sandbox: a local node:http stand-in for Klaviyo's profile endpoints
 * (GET/POST /api/profiles, GET/PATCH /api/profiles/{id}, POST /api/profile-import,
 * POST /api/profile-merge, the bulk profile import jobs under /api/profile-bulk-import-jobs,
 * POST /api/data-privacy-deletion-jobs: profiles deleted at once, where Klaviyo takes its time),
 * used by integration tests in-process and by `npm start` as a separate service.
 *
 * - Auth `Authorization: Klaviyo-API-Key <key>` (401 otherwise) and a `revision` header (400 otherwise).
 * - Klaviyo's rules: E.164 phones, unique email/phone_number/external_id (409 duplicate_profile),
 *   per-endpoint fixed-window rate limits (429 + Retry-After), JSON:API bodies and errors.
 * - Profile merges are accepted at once and carried out later (`mergeDelayMs`, or `settleMerges()`);
 *   so are bulk import jobs (`bulkImportDelayMs`, or `settleBulkImports()`), with per-profile
 *   import errors paged as Klaviyo does.
 * - Test controls in-process (seedProfile, injectFaults, requests…) and over HTTP under
 *   `/__sandbox/...` (no auth): see ./klaviyo-sandbox/control.ts.
 */
export { ApiError } from './klaviyo-sandbox/errors.js';
export { SANDBOX_API_KEY, startKlaviyoSandbox } from './klaviyo-sandbox/server.js';
export type {
  BulkImportJobState,
  ErrorFault,
  FaultStatus,
  IdentifierQuery,
  ImportErrorRecord,
  KlaviyoSandbox,
  KlaviyoSandboxOptions,
  PendingMerge,
  Profile,
  ProfileLocation,
  RateLimits,
  RecordedRequest,
  ResetFault,
  SandboxFault,
  SeedProfileInput,
  SlowFault,
} from './klaviyo-sandbox/types.js';
