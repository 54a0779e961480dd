import { IdentitySyncError, isTransient } from '../../lib/errors.js';
import { ChangeParkedError, IdentifierHeldError } from '../../lib/sync/sync-identity-change.js';
import type { RowResult } from '../results.js';

// The CLI's one place that turns what a row threw into its result (the worker turns the same
// errors into queue actions).
/**
 * A row's error as its result. Parked: the tenant's policy parks it, or another customer's profile
 * holds an identifier it needs (the worker would retry that a few times; a CLI run has no queue).
 */
export function rowResultOfError(
  error: unknown,
): Pick<RowResult, 'outcome' | 'reason' | 'profileId' | 'transient'> {
  if (error instanceof IdentifierHeldError) {
    return {
      outcome: 'parked',
      reason: `${error.reason}: profile ${error.context.holderId} of ${holderNamed(error.context)} holds an identifier this change needs`,
      ...profileIdOf(error.context),
    };
  }
  if (error instanceof ChangeParkedError) {
    return { outcome: 'parked', reason: `${error.reason}: ${error.message}`, ...profileIdOf(error.context) };
  }
  const reason = error instanceof IdentitySyncError ? `${error.reason}: ${error.message}` : String(error);
  return { outcome: 'failed', reason, ...(isTransient(error) && { transient: true }) };
}

const holderNamed = (context: Record<string, unknown>) =>
  typeof context.holderExternalId === 'string' ? `customer ${context.holderExternalId}` : 'another customer';

const profileIdOf = (context: Record<string, unknown>) =>
  typeof context.profileId === 'string' ? { profileId: context.profileId } : {};
