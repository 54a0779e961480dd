import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import type {
  AppliedChange,
  AuditEntry,
  AuditLog,
  CustomerState,
  PendingChange,
  SyncStateStore,
} from '../ports.js';
import { customerRecordKey } from '../privacy/identifier-digest.js';
import {
  historyWithUnchanged,
  lastUnchangedOf,
  type UnchangedDecisions,
} from '../sync/unchanged-decisions.js';

/**
 * One partition per customer of a tenant: the `state` item (staleness guard, pending change) and
 * the `audit#…` items (decisions, expiring by TTL) sit side by side, so history is one Query.
 * No email or phone is stored as it is: the state keeps digests (`identifierDigests`) and a
 * pending change's identifiers sealed; the audit entries keep them masked and digested.
 */
const partitionOf = (tenant: string, externalId: string) => ({ S: customerRecordKey(tenant, externalId) });

/**
 * A pending change as stored: its sealed identifiers, never plain ones. One written before they
 * were sealed keeps its count and event but loses its plaintext identifiers on reading (the change
 * records them sealed at its next delivery).
 */
function pendingFrom(stored: string): PendingChange {
  const { sealedIdentifiers, occurredAt, sourceEventId, conflicts } = JSON.parse(stored) as PendingChange;
  return {
    ...(typeof sealedIdentifiers === 'string' && { sealedIdentifiers }),
    occurredAt,
    sourceEventId,
    ...(conflicts !== undefined && { conflicts }),
  };
}
const stateKey = (tenant: string, externalId: string) => ({
  pk: partitionOf(tenant, externalId),
  sk: { S: 'state' },
});

async function call<T>(operation: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    if ((error as Error).name === 'ConditionalCheckFailedException') throw error;
    throw new TransientError(
      'state_unavailable',
      `DynamoDB ${operation} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

export function createDynamoSyncState(client: DynamoDBClient, tableName: string): SyncStateStore {
  return {
    async getState(tenant, externalId) {
      const { Item } = await call('GetItem', () =>
        client.send(
          new GetItemCommand({
            TableName: tableName,
            Key: stateKey(tenant, externalId),
            ConsistentRead: true,
          }),
        ),
      );
      const state: CustomerState = {};
      if (Item?.lastOccurredAt?.S) state.lastAppliedAt = Item.lastOccurredAt.S;
      if (Item?.pending?.S) state.pending = pendingFrom(Item.pending.S);
      if (Item?.profileId?.S) state.profileId = Item.profileId.S;
      // An item from before digests keeps its plaintext `identifiers` until its next write removes
      // them; they are never read: the customer's next change looks its profile up once.
      if (Item?.identifierDigests?.S) state.digests = JSON.parse(Item.identifierDigests.S);
      if (Item?.mergedInto?.S) state.mergedInto = Item.mergedInto.S;
      if (Item?.mergedAt?.S) state.mergedAt = Item.mergedAt.S;
      return state;
    },

    async recordApplied(change: AppliedChange) {
      const occurredMs = String(Date.parse(change.occurredAt));
      const unchanged = change.unchangedDecidedAt;
      try {
        await call('UpdateItem', () =>
          client.send(
            new UpdateItemCommand({
              TableName: tableName,
              Key: stateKey(change.tenant, change.externalId),
              // An unsigned time orders its change but never moves the watermark (plan.ts, watermarkAfter).
              // A decision that changed nothing is kept here, the last one and a count, not audited apart.
              UpdateExpression: `SET ${change.occurredAtUnsigned ? '' : 'lastOccurredAt = :at, lastOccurredAtMs = :ms, '}lastSourceEventId = :event, profileId = :profile, identifierDigests = :digests, recordedAt = :now${unchanged ? ', lastUnchanged = :unchanged' : ''} REMOVE pending, identifiers${unchanged ? ' ADD unchangedCount :one' : ''}`,
              // Conditional so two writers can never move the clock backwards.
              ConditionExpression: 'attribute_not_exists(lastOccurredAtMs) OR lastOccurredAtMs <= :ms',
              ExpressionAttributeValues: {
                ...(!change.occurredAtUnsigned && { ':at': { S: change.occurredAt } }),
                ':ms': { N: occurredMs },
                ':event': { S: change.sourceEventId },
                ':profile': change.profileId ? { S: change.profileId } : { NULL: true },
                // Without the profile, recorded digests would describe nobody: forget them.
                ':digests':
                  change.profileId && change.digests ? { S: JSON.stringify(change.digests) } : { NULL: true },
                ':now': { S: new Date().toISOString() },
                ...(unchanged && {
                  ':unchanged': {
                    S: JSON.stringify(lastUnchangedOf(change, unchanged)),
                  },
                  ':one': { N: '1' },
                }),
              },
            }),
          ),
        );
        return true;
      } catch (error) {
        if ((error as Error).name === 'ConditionalCheckFailedException') return false;
        throw error;
      }
    },

    async recordPending(tenant, externalId, pending) {
      await call('UpdateItem', () =>
        client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: stateKey(tenant, externalId),
            UpdateExpression: 'SET pending = :pending REMOVE identifiers',
            ExpressionAttributeValues: { ':pending': { S: JSON.stringify(pending) } },
          }),
        ),
      );
    },

    async recordMerged({ tenant, externalId, intoExternalId, mergedAt }) {
      await call('UpdateItem', () =>
        client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: stateKey(tenant, externalId),
            // The profile is merged away (or re-keyed): nothing recorded of it holds any more.
            UpdateExpression:
              'SET mergedInto = :into, mergedAt = :at REMOVE profileId, identifierDigests, identifiers, pending',
            ExpressionAttributeValues: { ':into': { S: intoExternalId }, ':at': { S: mergedAt } },
          }),
        ),
      );
    },

    async forgetProfile(tenant, externalId) {
      await call('UpdateItem', () =>
        client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: stateKey(tenant, externalId),
            UpdateExpression: 'REMOVE profileId, identifierDigests, identifiers',
            // Nothing to forget for a customer never seen: no item is created for it.
            ConditionExpression: 'attribute_exists(pk)',
          }),
        ),
      ).catch((error: Error) => {
        if (error.name !== 'ConditionalCheckFailedException') throw error;
      });
    },
  };
}

/** Decisions, kept `retentionDays` (DynamoDB's TTL deletes them after that). */
export function createDynamoAuditLog(
  client: DynamoDBClient,
  tableName: string,
  retentionDays: number,
): AuditLog {
  return {
    async record(entry: AuditEntry) {
      const expiresAt = Math.floor(Date.parse(entry.decidedAt) / 1000) + retentionDays * 86_400;
      await call('PutItem', () =>
        client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              pk: partitionOf(entry.tenant, entry.externalId),
              sk: { S: `audit#${entry.decidedAt}#${entry.sourceEventId}` },
              entry: { S: JSON.stringify(entry) },
              expiresAt: { N: String(expiresAt) },
            },
          }),
        ),
      );
    },

    async history(tenant, externalId, limit = 100) {
      // The whole partition, newest first: the state item (`state` sorts after `audit#…`), which
      // keeps the last unchanged decision, then the audit entries. One Query either way.
      const { Items = [] } = await call('Query', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': partitionOf(tenant, externalId) },
            ScanIndexForward: false,
            Limit: limit + 1,
          }),
        ),
      );
      const entries = Items.filter((item) => item.sk?.S?.startsWith('audit#')).map(
        (item: Record<string, AttributeValue>) => JSON.parse(item.entry?.S ?? '{}') as AuditEntry,
      );
      const state = Items.find((item) => item.sk?.S === 'state');
      return historyWithUnchanged(tenant, externalId, entries, unchangedOf(state), limit);
    },
  };
}

function unchangedOf(state: Record<string, AttributeValue> | undefined): UnchangedDecisions | undefined {
  if (!state?.lastUnchanged?.S) return undefined;
  return {
    last: JSON.parse(state.lastUnchanged.S) as UnchangedDecisions['last'],
    count: Number(state.unchangedCount?.N ?? 1),
  };
}
