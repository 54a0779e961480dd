import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import type { AuditEntry } from '../ports.js';
import { customerRecordKey } from '../privacy/identifier-digest.js';

/**
 * The state table's layout, shared by its adapters (dynamo-sync-state.ts, dynamo-customer-records.ts).
 * One partition per customer of a tenant: the `state` item (staleness guard, pending change) and
 * the `audit#…` items (decisions, expiring by TTL) sit side by side, so history is one Query.
 * No email or phone is stored as it is: the state keeps digests (`identifierDigests`) and a
 * pending change's identifiers sealed; the audit entries keep them masked and digested.
 */
export const partitionOf = (tenant: string, externalId: string) => ({
  S: customerRecordKey(tenant, externalId),
});

export const STATE_SORT_KEY = 'state';
export const AUDIT_SORT_PREFIX = 'audit#';

export const stateKey = (tenant: string, externalId: string) => ({
  pk: partitionOf(tenant, externalId),
  sk: { S: STATE_SORT_KEY },
});

export type Item = Record<string, AttributeValue>;
export type Key = { pk: AttributeValue; sk: AttributeValue };

/** An audit item's sort key: entries of a customer in the order they were decided. */
export const auditSortKeyOf = (entry: Pick<AuditEntry, 'decidedAt' | 'sourceEventId'>) =>
  `${AUDIT_SORT_PREFIX}${entry.decidedAt}#${entry.sourceEventId}`;

export const isStateItem = (item: Item) => item.sk?.S === STATE_SORT_KEY;
export const isAuditItem = (item: Item) => item.sk?.S?.startsWith(AUDIT_SORT_PREFIX) === true;
export const auditEntryOf = (item: Item) => JSON.parse(item.entry?.S ?? '{}') as AuditEntry;

/** A DynamoDB call whose failure is transient (`state_unavailable`); a failed condition is rethrown as it is. */
export async function call<T>(operation: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    if (isConditionFailed(error)) throw error;
    throw new TransientError(
      'state_unavailable',
      `DynamoDB ${operation} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

export const isConditionFailed = (error: unknown) =>
  (error as Error).name === 'ConditionalCheckFailedException';
