import type { IdentityChange } from '../identity-change.js';
import type { CustomerState } from '../ports.js';
import { recordedProfile } from './identifiers.js';
import { earlySkipOf } from './staleness.js';

/**
 * Whether applying `change` will look its customer up in Klaviyo: it is not skipped before the
 * lookups (merged away, stale) and its record names no profile. The worker's batched lookups and
 * the CLI's `apply` make theirs up front for exactly these changes.
 */
export const needsLookups = (
  change: Pick<IdentityChange, 'externalId' | 'occurredAt'>,
  state: CustomerState,
): boolean => earlySkipOf(change, state) === undefined && recordedProfile(change, state) === undefined;
