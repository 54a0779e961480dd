import type { TenantPolicies } from '../config.js';
import {
  letterOfQueued,
  letterOfUnreadable,
  type QueuedMessage,
  queuedChangeIn,
  readQueuedMessage,
} from '../dead-letter.js';
import { IdentitySyncError, isTransient, PermanentError } from '../errors.js';
import {
  type ComplianceRequest,
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
  CustomerRecords,
  DeadLetters,
  ExportDestination,
  IdentifierKeyForTenant,
  KlaviyoForTenant,
  MovedMessage,
  ParkedLetters,
  SyncStateStore,
} from '../ports.js';
import {
  type ComplianceDependencies,
  deliverCustomerExport,
  eraseCustomer,
  eraseShop,
  erasureSubject,
} from '../privacy/erasure.js';
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
  /**
   * Erasure and export (compliance requests), and the erasure records every change of a customer
   * is checked against. Without it, no change is checked and a compliance request is parked.
   */
  compliance?: WorkerCompliance;
}

/** The worker's side of erasure and export (lib/privacy/erasure.ts). */
export interface WorkerCompliance {
  records: CustomerRecords;
  letters: ParkedLetters;
  /** Where data exports go; without one, data requests are parked (export_destination_missing). */
  exports?: ExportDestination | undefined;
}

/** What a compliance request came to: erased (a customer, a shop) or exported. */
export interface ComplianceResult {
  outcome: 'erased' | 'exported';
  plan: { action: 'erase-customer' | 'erase-shop' | 'export' };
  profileId?: undefined;
  reason?: string;
  /** What is logged of it: counts, the export's location; never the customer's id. */
  facts: Record<string, unknown>;
}

/** A change or merge of a customer erased on request: nothing applied, nothing recorded. */
export interface ErasedCustomerSkip {
  outcome: 'skipped';
  plan: { action: 'skip'; reason: typeof Reason.CustomerErased };
  profileId?: undefined;
  reason: string;
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

export type ProcessResult =
  | SyncResult
  | MergeResult
  | ComplianceResult
  | ErasedCustomerSkip
  | { outcome: 'parked'; reason: string };

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
  // A compliance request's log names no customer: its record is being erased or exported.
  const context = isComplianceRequest(change)
    ? { tenant: change.tenant, sourceEventId: change.sourceEventId, kind: kindOf(change) }
    : {
        tenant: change.tenant,
        externalId: customerOf(change),
        sourceEventId: change.sourceEventId,
        ...(isCustomerMerge(change) && { mergedInto: change.keptExternalId }),
      };
  try {
    const result = await syncWithKeyRotation(change, deps, delivery.attempt);
    count(METRIC_OF[result.outcome]);
    const erased = result.plan.action === 'skip' && result.plan.reason === Reason.CustomerErased;
    // A change of an erased customer is logged without the customer it names.
    const { externalId: _named, mergedInto: _merged, ...anonymous } = context as Record<string, unknown>;
    // The outcome is the message's; a reason that only repeats it is left out (bytes are billed).
    log.info(DONE_MESSAGE[result.outcome] ?? `Change ${result.outcome}`, {
      ...(erased ? anonymous : context),
      plan: result.plan.action,
      profileId: result.profileId,
      ...('fields' in result && { fields: result.fields }),
      ...('facts' in result && result.facts),
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
      change: isIdentityChange(change) ? maskIdentifiers(change) : change,
    });
    return { outcome: 'parked', reason: error.reason };
  }
}

/** A 401 with a cached key may mean the key was rotated: fetch the secret afresh and try once more. */
async function syncWithKeyRotation(
  change: QueuedChange,
  deps: WorkerDependencies,
  deliveryAttempt: number,
): Promise<SyncResult | MergeResult | ComplianceResult | ErasedCustomerSkip> {
  const { dryRun, ...policies } = deps.policiesFor(change.tenant);
  if (isComplianceRequest(change)) return handleComplianceRequest(change, deps, { ...policies, dryRun });
  if (await namesErasedCustomer(change, deps)) {
    return {
      outcome: 'skipped',
      plan: { action: 'skip', reason: Reason.CustomerErased },
      reason: 'the customer was erased on request: nothing of theirs is applied or recorded',
    };
  }
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

/**
 * Whether the change or merge names a customer erased on request (its erasure record, found by the
 * keyed digest of its id). Such a change applies nothing and is not audited: an audit item would
 * name the customer again.
 */
async function namesErasedCustomer(change: QueuedChange, deps: WorkerDependencies): Promise<boolean> {
  const records = deps.compliance?.records;
  if (!records) return false;
  const customers = isCustomerMerge(change)
    ? [change.deletedExternalId, change.keptExternalId]
    : [customerOf(change)].filter((customer) => customer !== undefined);
  const key = await deps.identifierKeyFor(change.tenant);
  const erased = await Promise.all(
    customers.map((customer) =>
      records.isErased(change.tenant, erasureSubject(key, change.tenant, customer)),
    ),
  );
  return erased.some(Boolean);
}

/** Erases or exports, as the request asks, through the erasure core (lib/privacy/erasure.ts). */
async function handleComplianceRequest(
  request: ComplianceRequest,
  deps: WorkerDependencies,
  policies: ComplianceDependencies['policies'],
): Promise<ComplianceResult> {
  const compliance = deps.compliance;
  if (!compliance)
    throw new PermanentError(Reason.InvalidMessage, 'this worker takes no compliance requests');
  const core: ComplianceDependencies = {
    records: compliance.records,
    state: deps.state,
    letters: compliance.letters,
    identifierKey: () => deps.identifierKeyFor(request.tenant),
    klaviyo: () => deps.klaviyoFor(request.tenant),
    policies,
    exports: compliance.exports,
    clock: deps.clock,
  };
  switch (request.kind) {
    case 'customerRedact': {
      const record = await eraseCustomer(request, core);
      return {
        outcome: 'erased',
        plan: { action: 'erase-customer' },
        facts: { requestedBy: record.source, counts: record.counts, subject: record.subject },
      };
    }
    case 'shopRedact': {
      const record = await eraseShop(request, core);
      return {
        outcome: 'erased',
        plan: { action: 'erase-shop' },
        facts: { requestedBy: record.source, counts: record.counts, shop: request.shopDomain },
      };
    }
    case 'customerDataRequest': {
      if (!compliance.exports) {
        throw new PermanentError(
          Reason.ExportDestinationMissing,
          'EXPORTS_BUCKET is not set: nowhere to deliver the export; replay once it is',
        );
      }
      const { location } = await deliverCustomerExport(request, core, compliance.exports);
      return {
        outcome: 'exported',
        plan: { action: 'export' },
        facts: { requestedBy: request.source, requestId: request.requestId, location },
      };
    }
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
