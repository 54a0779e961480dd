import { createHash } from 'node:crypto';
import type { TenantPolicies } from '../config.js';
import { readQueuedMessage } from '../dead-letter.js';
import { IdentitySyncError, isTransient } from '../errors.js';
import { customerOf, isCustomerMerge, type QueuedChange } from '../identity-change.js';
import { KlaviyoApiError } from '../klaviyo/errors.js';
import { maskIdentifiers } from '../observability/mask.js';
import type { Outcome, Telemetry } from '../observability/telemetry.js';
import type {
  AuditLog,
  Clock,
  DeadLetters,
  IdentifierKeyForTenant,
  KlaviyoForTenant,
  SyncStateStore,
} from '../ports.js';
import { Reason } from '../reasons.js';
import { type MergeResult, syncCustomerMerge } from './sync-customer-merge.js';
import {
  ChangeParkedError,
  type SyncOutcome,
  type SyncResult,
  syncIdentityChange,
} from './sync-identity-change.js';

export interface WorkerDependencies {
  state: SyncStateStore;
  audit: AuditLog;
  policiesFor: (tenant: string) => TenantPolicies;
  klaviyoFor: KlaviyoForTenant;
  /** The tenant's key for identifiers at rest, from the secret the Klaviyo key comes from. */
  identifierKeyFor: IdentifierKeyForTenant;
  deadLetters: DeadLetters;
  telemetry: Telemetry;
  clock: Clock;
}

const METRIC_OF: Record<SyncOutcome, Outcome> = {
  applied: 'ChangeApplied',
  bound: 'ProfileBound',
  created: 'ProfileCreated',
  merged: 'ProfileMerged',
  swapped: 'IdentifiersSwapped',
  unchanged: 'ChangeUnchanged',
  stale: 'ChangeStale',
  skipped: 'ChangeSkipped',
  planned: 'ChangePlanned',
};

export type ProcessResult = SyncResult | MergeResult | { outcome: 'parked'; reason: string };

/**
 * Handles one queued message: an identity change, or a Shopify customer merge. Returns when it is
 * done with (applied, skipped, or parked on the dead-letter queue with its reason); throws only
 * when trying again later may help, so the queue redelivers it (and, after too many tries, moves
 * it to the dead-letter queue itself).
 */
export async function processQueuedChange(
  messageBody: string,
  deps: WorkerDependencies,
  delivery: { attempt: number } = { attempt: 1 },
): Promise<ProcessResult> {
  const { log, count } = deps.telemetry;
  const change = parseChange(messageBody);
  if ('problem' in change) {
    await deps.deadLetters.park({
      reason: Reason.InvalidMessage,
      detail: change.problem,
      tenant: undefined,
      source: 'unknown',
      sourceEventId: `sha256:${createHash('sha256').update(messageBody).digest('hex')}`,
      payload: messageBody,
      parkedAt: deps.clock().toISOString(),
    });
    count('ChangeFailed');
    log.error('Queued message parked: not an identity change', { problem: change.problem });
    return { outcome: 'parked', reason: Reason.InvalidMessage };
  }

  const context = {
    tenant: change.tenant,
    externalId: customerOf(change),
    sourceEventId: change.sourceEventId,
    ...(isCustomerMerge(change) && { mergedInto: change.keptExternalId }),
  };
  try {
    const result = await syncWithKeyRotation(change, deps, delivery.attempt);
    count(METRIC_OF[result.outcome]);
    log.info(`Change ${result.outcome}`, {
      ...context,
      outcome: result.outcome,
      plan: result.plan.action,
      profileId: result.profileId,
      ...('fields' in result && { fields: result.fields }),
      reason: result.reason,
    });
    return result;
  } catch (error) {
    if (isTransient(error) || !(error instanceof IdentitySyncError)) {
      // Unknown errors are treated as transient: the queue's redrive keeps the change if they persist.
      count('ChangeRetried');
      log.warn('Change will be retried', { ...context, error: error as Error });
      throw error;
    }
    await deps.deadLetters.park({
      reason: error.reason,
      detail: error.message,
      tenant: change.tenant,
      source: change.source,
      sourceEventId: change.sourceEventId,
      ...(isCustomerMerge(change) ? { merge: change } : { change }),
      context: contextOf(error),
      parkedAt: deps.clock().toISOString(),
    });
    count('ChangeFailed');
    log.error('Change parked on the dead-letter queue', {
      ...context,
      reason: error.reason,
      detail: error.message,
      change: isCustomerMerge(change) ? change : maskIdentifiers(change),
    });
    return { outcome: 'parked', reason: error.reason };
  }
}

/** A 401 with a cached key may mean the key was rotated: fetch the secret afresh and try once more. */
async function syncWithKeyRotation(
  change: QueuedChange,
  deps: WorkerDependencies,
  deliveryAttempt: number,
): Promise<SyncResult | MergeResult> {
  const { dryRun, ...policies } = deps.policiesFor(change.tenant);
  const attempt = (fresh: boolean) => {
    const syncDeps = {
      state: deps.state,
      audit: deps.audit,
      klaviyo: () => deps.klaviyoFor(change.tenant, { fresh }),
      identifierKey: () => deps.identifierKeyFor(change.tenant),
      policies,
      dryRun,
      attempt: deliveryAttempt,
      clock: deps.clock,
    };
    return isCustomerMerge(change)
      ? syncCustomerMerge(change, syncDeps)
      : syncIdentityChange(change, syncDeps);
  };
  try {
    return await attempt(false);
  } catch (error) {
    if (!(error instanceof KlaviyoApiError && error.status === 401)) throw error;
    deps.telemetry.log.warn('Klaviyo refused the key; reading the tenant secret again', {
      tenant: change.tenant,
    });
    return attempt(true);
  }
}

/** The change (or merge) a message carries; a parked letter moved back by DLQ redrive carries its own. */
export function parseChange(body: string): QueuedChange | { problem: string } {
  const message = readQueuedMessage(body);
  switch (message.kind) {
    case 'change':
      return message.change;
    case 'merge':
      return message.merge;
    case 'unreadable':
      return { problem: message.problem };
    case 'letter':
      return (
        message.letter.change ??
        message.letter.merge ?? {
          problem: `a parked ${message.letter.reason} letter with no change to replay`,
        }
      );
  }
}

function contextOf(error: IdentitySyncError): Record<string, unknown> | undefined {
  if (error instanceof ChangeParkedError) return error.context;
  if (!(error instanceof KlaviyoApiError)) return undefined;
  return {
    status: error.status,
    code: error.code,
    pointer: error.pointer,
    duplicateProfileId: error.duplicateProfileId,
  };
}
