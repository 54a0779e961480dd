import type { RetrySchedule, TenantPolicies } from '../config.js';
import {
  letterOfQueued,
  letterOfUnreadable,
  type QueuedMessage,
  queuedChangeIn,
  readQueuedMessage,
} from '../dead-letter.js';
import {
  customerOf,
  isComplianceRequest,
  isCustomerMerge,
  isIdentityChange,
  kindOf,
  type QueuedChange,
} from '../identity-change.js';
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
  Redeliveries,
  SyncStateStore,
} from '../ports.js';
import { Reason } from '../reasons.js';
import {
  type ComplianceResult,
  ERASED_CUSTOMER_SKIP,
  type ErasedCustomerSkip,
  erasureLookupOf,
  handleComplianceRequest,
  namesErasedCustomer,
  statesOfCustomersNamed,
  type WorkerCompliance,
} from './handle-compliance.js';
import {
  type ChangeOutcome,
  done,
  errorOf,
  outcomeOfError,
  type Park,
  queueActionOf,
  type RetryLater,
  resultOrThrow,
} from './outcome.js';
import { type MergeResult, syncCustomerMerge } from './sync-customer-merge.js';
import { applyIdentityChange, type SyncOutcome, type SyncResult } from './sync-identity-change.js';

export type { ComplianceResult, ErasedCustomerSkip, WorkerCompliance } from './handle-compliance.js';

/** Everything the worker's path needs, built once (lib/composition.ts, createSyncWorker). */
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
  /**
   * Erasure and export (compliance requests), and the erasure records every change of a customer
   * is checked against. Without it, no change is checked and a compliance request is parked.
   */
  compliance?: WorkerCompliance;
  /** How a failed change is handed back (receive-batch.ts); without both, after the visibility timeout. */
  redeliveries?: Redeliveries;
  retries?: RetrySchedule;
}

const METRIC_OF: Record<SyncOutcome | ComplianceResult['outcome'], Outcome> = {
  erased: 'CustomerErased',
  exported: 'DataRequestExported',
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

type DoneResult = SyncResult | MergeResult | ComplianceResult | ErasedCustomerSkip;

export type ProcessResult = DoneResult | { outcome: 'parked'; reason: string };

/** The log line of a message done with: a compliance request's, or `Change <outcome>`. */
const DONE_MESSAGE: Partial<Record<ProcessResult['outcome'], string>> = {
  erased: 'Erased on request',
  exported: 'Data request exported',
};

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

/** What became of a message: off the queue (done, skipped or parked), or back to it to try again. */
export type Handled =
  | { action: 'acknowledge'; result: ProcessResult }
  | { action: 'hand-back'; retry: RetryLater; outOfTime: boolean };

/**
 * Handles one queued message: an identity change, a Shopify customer merge or a compliance
 * request, on its own or in a parked letter replayed. Its outcome (a value: done, retry later,
 * park) becomes a queue action in one place (queueActionOf); a parked message is on the
 * dead-letter queue with its reason when this returns. Throws only when parking fails.
 */
export async function handleMessage(
  { body, content }: ReadMessage,
  deps: WorkerDependencies,
  delivery: Delivery = { attempt: 1 },
): Promise<Handled> {
  const { log, count } = deps.telemetry;
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
    return { action: 'acknowledge', result: { outcome: 'parked', reason: Reason.InvalidMessage } };
  }

  const change = read.queued;
  // A compliance request's log names no customer: its record is being erased or exported.
  const context = isComplianceRequest(change)
    ? { tenant: change.tenant, sourceEventId: change.sourceEventId, kind: kindOf(change) }
    : {
        tenant: change.tenant,
        externalId: customerOf(change),
        sourceEventId: change.sourceEventId,
        ...(isCustomerMerge(change) && { mergedInto: change.keptExternalId }),
      };
  const outcome = await outcomeOf(change, deps, delivery.attempt).catch(outcomeOfError);
  const action = queueActionOf(outcome);
  switch (action.action) {
    case 'acknowledge': {
      const result = (outcome as { result: DoneResult }).result;
      logDone(result, context, deps.telemetry);
      return { action: 'acknowledge', result };
    }
    case 'hand-back':
      // Unknown errors are treated as transient: the queue's schedule parks the change if they persist.
      count('ChangeRetried');
      log.warn('Change will be retried', { ...context, error: errorOf(action.retry) });
      return action;
    case 'park':
      await park(change, action.park, context, deps, delivery);
      return { action: 'acknowledge', result: { outcome: 'parked', reason: action.park.reason } };
  }
}

/**
 * handleMessage for callers that take "try again later" as an error: it throws the failure the
 * change met (or IdentifierHeldError, when its plan waits for another customer).
 */
export async function processQueuedChange(
  message: string | ReadMessage,
  deps: WorkerDependencies,
  delivery: Delivery = { attempt: 1 },
): Promise<ProcessResult> {
  const handled = await handleMessage(
    typeof message === 'string' ? readMessage(message) : message,
    deps,
    delivery,
  );
  return handled.action === 'acknowledge' ? handled.result : resultOrThrow<ProcessResult>(handled.retry);
}

function logDone(result: DoneResult, context: Record<string, unknown>, { log, count }: Telemetry) {
  count(METRIC_OF[result.outcome]);
  const erased = result.plan.action === 'skip' && result.plan.reason === Reason.CustomerErased;
  // A change of an erased customer is logged without the customer it names.
  const { externalId: _named, mergedInto: _merged, ...anonymous } = context;
  // The outcome is the message's; a reason that only repeats it is left out (bytes are billed).
  log.info(DONE_MESSAGE[result.outcome] ?? `Change ${result.outcome}`, {
    ...(erased ? anonymous : context),
    plan: result.plan.action,
    profileId: result.profileId,
    ...('fields' in result && { fields: result.fields }),
    ...('facts' in result && result.facts),
    ...(result.reason !== result.outcome && { reason: result.reason }),
  });
}

async function park(
  change: QueuedChange,
  parked: Park,
  context: Record<string, unknown>,
  deps: WorkerDependencies,
  delivery: Delivery,
) {
  const failure = {
    reason: parked.reason,
    detail: parked.detail,
    context: parked.context,
    attempts: delivery.attempt,
    parkedAt: deps.clock().toISOString(),
  };
  await deps.deadLetters.park(letterOfQueued(change, failure), delivery.message);
  deps.telemetry.count('ChangeFailed');
  deps.telemetry.log.error('Change parked on the dead-letter queue', {
    ...context,
    reason: parked.reason,
    detail: parked.detail,
    change: isIdentityChange(change) ? maskIdentifiers(change) : change,
  });
}

/**
 * What the message comes to: a compliance request erases or exports; a change or merge of an
 * erased customer is skipped; a merge or a change is applied. A 401 with a cached key may mean
 * the key was rotated: the secret is read afresh and the change tried once more.
 */
async function outcomeOf(
  change: QueuedChange,
  deps: WorkerDependencies,
  deliveryAttempt: number,
): Promise<ChangeOutcome<DoneResult>> {
  const { dryRun, ...policies } = deps.policiesFor(change.tenant);
  if (isComplianceRequest(change)) {
    return done(await handleComplianceRequest(change, deps, { ...policies, dryRun }));
  }
  // Each customer's state is read once, here: it tells whether the erasure record needs reading,
  // and the first attempt is handed it (a retry with a fresh key reads it again).
  const statesRead = await statesOfCustomersNamed(change, deps.state);
  if (await namesErasedCustomer(change, statesRead, erasureLookupOf(deps))) return done(ERASED_CUSTOMER_SKIP);
  const attempt = async (fresh: boolean): Promise<ChangeOutcome<DoneResult>> => {
    const known = fresh ? undefined : statesRead;
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
      ? done(await syncCustomerMerge(change, { ...syncDeps, keptState: known?.get(change.keptExternalId) }))
      : applyIdentityChange(change, { ...syncDeps, stateRead: known?.get(change.externalId) });
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
