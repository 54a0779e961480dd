import type { IdentityChange } from '../identity-change.js';
import type { AuditLog, Clock, KlaviyoProfiles, SyncStateStore } from '../ports.js';
import type { IdentifierKey } from '../privacy/identifier-digest.js';
import type { SyncPlan } from './plan.js';

/** What the steps of one sync (resolve, execute, record) are handed explicitly. */
export interface SyncContext {
  change: IdentityChange;
  state: SyncStateStore;
  audit?: AuditLog;
  clock: Clock;
}

/** Once the change is known not to be stale: with the tenant's key for identifiers at rest (lib/privacy). */
export interface KeyedContext extends SyncContext {
  identifierKey: IdentifierKey;
}

/** The context once the change is known not to be stale, with the tenant's Klaviyo account. */
export interface KlaviyoContext extends KeyedContext {
  klaviyo: KlaviyoProfiles;
  /** How long to wait for Klaviyo to finish a merge before handing the change back to the queue. */
  mergeWait: { attempts: number; firstDelayMs: number };
}

export type SyncOutcome =
  | 'applied'
  | 'bound'
  | 'created'
  | 'merged'
  | 'swapped'
  | 'unchanged'
  | 'stale'
  | 'skipped'
  | 'planned';

export interface SyncResult {
  outcome: SyncOutcome;
  plan: SyncPlan;
  profileId?: string;
  /** Which identifiers were written, for the log. */
  fields?: string[];
  /** The plan's Reason when skipped; otherwise a short note (merged which profile, traded with whom). */
  reason?: string;
}
