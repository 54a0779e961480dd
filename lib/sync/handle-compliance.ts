import { PermanentError } from '../errors.js';
import type { ComplianceRequest, QueuedChange } from '../identity-change.js';
import type {
  CustomerRecords,
  CustomerState,
  ExportDestination,
  IdentifierKeyForTenant,
  KlaviyoForTenant,
  ParkedLetters,
  SyncStateStore,
} from '../ports.js';
import {
  type ComplianceDependencies,
  customersNamedBy,
  deliverCustomerExport,
  eraseCustomer,
  eraseShop,
  erasureSubject,
} from '../privacy/erasure.js';
import { Reason } from '../reasons.js';

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

/** What the worker hands the erasure core: its stores and each tenant's keys. */
export interface ComplianceWorkerDependencies {
  state: SyncStateStore;
  klaviyoFor: KlaviyoForTenant;
  identifierKeyFor: IdentifierKeyForTenant;
  clock: () => Date;
  compliance?: WorkerCompliance | undefined;
}

export const ERASED_CUSTOMER_SKIP: ErasedCustomerSkip = {
  outcome: 'skipped',
  plan: { action: 'skip', reason: Reason.CustomerErased },
  reason: 'the customer was erased on request: nothing of theirs is applied or recorded',
};

/**
 * Whether the customer's state read may be an erased customer's: only when nothing is recorded,
 * i.e. no state item (a new customer, or an erased one). Erasure writes its record, then deletes
 * the customer's items, state item included; a customer's erasure is queued in the customer's
 * message group, so the worker never runs it beside one of the customer's changes, and no
 * change of another customer creates a customer's state item (a swap's holder record and a
 * merge's survivor only update an item that exists: conditional writes). A customer that still
 * has a state item was therefore not erased, and its erasure record need not be read: one read
 * a change saved. (`forget` erases from the CLI, outside the queue: see docs/privacy.md.)
 */
export const mayBeErased = (state: CustomerState): boolean => Object.keys(state).length === 0;

/**
 * What looking for a customer's erasure record takes: the records, and the tenant's identifier
 * key (the record is found by the keyed digest of the customer's id). The worker and the CLI's
 * batch runs (`apply`, `bind`) look the same way.
 */
export interface ErasureLookup {
  records: Pick<CustomerRecords, 'isErased'>;
  identifierKeyFor: IdentifierKeyForTenant;
}

/** The worker's erasure lookup: none without compliance stores. */
export const erasureLookupOf = (deps: ComplianceWorkerDependencies): ErasureLookup | undefined =>
  deps.compliance && { records: deps.compliance.records, identifierKeyFor: deps.identifierKeyFor };

/**
 * Whether the change or merge names a customer erased on request, given the state read of each
 * customer it names (customersNamedBy): the record is read only for a customer with no state item
 * (mayBeErased). Such a change applies nothing and is not audited: an audit item would name the
 * customer again. Without a lookup (no table), nothing can have been erased.
 */
export async function namesErasedCustomer(
  change: QueuedChange,
  statesRead: ReadonlyMap<string, CustomerState>,
  erasures: ErasureLookup | undefined,
): Promise<boolean> {
  if (!erasures) return false;
  const unknown = customersNamedBy(change).filter((customer) => mayBeErased(statesRead.get(customer) ?? {}));
  const erased = await Promise.all(
    unknown.map((customer) => isCustomerErased(change.tenant, customer, erasures)),
  );
  return erased.some(Boolean);
}

/** Whether the customer's erasure record exists (one read), whatever the customer's state. */
export async function isCustomerErased(
  tenant: string,
  externalId: string,
  { records, identifierKeyFor }: ErasureLookup,
): Promise<boolean> {
  const key = await identifierKeyFor(tenant);
  return records.isErased(tenant, erasureSubject(key, tenant, externalId));
}

/** The state of every customer the change or merge names, read once each (handed on to the sync). */
export async function statesOfCustomersNamed(
  change: QueuedChange,
  state: Pick<SyncStateStore, 'getState'>,
): Promise<Map<string, CustomerState>> {
  const customers = [...new Set(customersNamedBy(change))];
  const states = await Promise.all(customers.map((customer) => state.getState(change.tenant, customer)));
  return new Map(customers.map((customer, index) => [customer, states[index] ?? {}]));
}

/** Erases or exports, as the request asks, through the erasure core (lib/privacy/erasure.ts). */
export async function handleComplianceRequest(
  request: ComplianceRequest,
  deps: ComplianceWorkerDependencies,
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
