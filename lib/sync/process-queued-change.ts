import type { TenantPolicies } from '../config.js';
import {
  letterOfQueued,
  letterOfUnreadable,
  type QueuedMessage,
  queuedChangeIn,
  readQueuedMessage,
} from '../dead-letter.js';
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
  MovedMessage,
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

/** One delivery of a queued message, as the queue made it. */
export interface Delivery {
  /** How many times the queue has delivered it (1 at first): its ApproximateReceiveCount. */
  attempt: number;
  /** The queued message itself: a letter parked from it is deduplicated by it. */
  message?: MovedMessage | undefined;
}

/** A queued message's body, read once (readQueuedMessage). */
export interface ReadMessage {
  body: string;
  content: QueuedMessage;
}

export const readMessage = (body: string): ReadMessage => ({ body, content: readQueuedMessage(body) });

/**
 * Handles one queued message: an identity change, or a Shopify customer merge, on its own or in
 * a parked letter replayed. Returns when it is done with (applied, skipped, or parked on the
 * dead-letter queue with its reason); throws only when trying again later may help, so the queue
 * redelivers it (and, after too many tries, moves it to the dead-letter queue itself).
 */
export async function processQueuedChange(
  message: string | ReadMessage,
  deps: WorkerDependencies,
  delivery: Delivery = { attempt: 1 },
): Promise<ProcessResult> {
  const { log, count } = deps.telemetry;
  const { body, content } = typeof message === 'string' ? readMessage(message) : message;
  const read = queuedChangeIn(content);
  if ('problem' in read) {
    const failure = {
      detail: read.problem,
      attempts: delivery.attempt,
      parkedAt: deps.clock().toISOString(),
    };
    await deps.deadLetters.park(letterOfUnreadable(body, failure), delivery.message);
    count('ChangeFailed');
    log.error('Queued message parked: not an identity change', { problem: read.problem });
    return { outcome: 'parked', reason: Reason.InvalidMessage };
  }

  const change = read.queued;
  const context = {
    tenant: change.tenant,
    externalId: customerOf(change),
    sourceEventId: change.sourceEventId,
    ...(isCustomerMerge(change) && { mergedInto: change.keptExternalId }),
  };
  try {
    const result = await syncWithKeyRotation(change, deps, delivery.attempt);
    count(METRIC_OF[result.outcome]);
    // The outcome is the message's; a reason that only repeats it is left out (bytes are billed).
    log.info(`Change ${result.outcome}`, {
      ...context,
      plan: result.plan.action,
      profileId: result.profileId,
      ...('fields' in result && { fields: result.fields }),
      ...(result.reason !== result.outcome && { reason: result.reason }),
    });
    return result;
  } catch (error) {
    if (isTransient(error) || !(error instanceof IdentitySyncError)) {
      // Unknown errors are treated as transient: the queue's redrive keeps the change if they persist.
      count('ChangeRetried');
      log.warn('Change will be retried', { ...context, error: error as Error });
      throw error;
    }
    const failure = {
      reason: error.reason,
      detail: error.message,
      context: contextOf(error),
      attempts: delivery.attempt,
      parkedAt: deps.clock().toISOString(),
    };
    await deps.deadLetters.park(letterOfQueued(change, failure), delivery.message);
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
