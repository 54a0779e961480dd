import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import type { AppliedChange, AuditEntry, AuditLog, CustomerState, SyncStateStore } from '../ports.js';

/**
 * One partition per customer of a tenant: the `state` item (staleness guard, pending change) and
 * the `audit#…` items (decisions, expiring by TTL) sit side by side, so history is one Query.
 */
const partitionOf = (tenant: string, externalId: string) => ({ S: `customer#${tenant}#${externalId}` });
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
      if (Item?.pending?.S) state.pending = JSON.parse(Item.pending.S);
      if (Item?.profileId?.S) state.profileId = Item.profileId.S;
      if (Item?.identifiers?.S) state.identifiers = JSON.parse(Item.identifiers.S);
      if (Item?.mergedInto?.S) state.mergedInto = Item.mergedInto.S;
      if (Item?.mergedAt?.S) state.mergedAt = Item.mergedAt.S;
      return state;
    },

    async recordApplied(change: AppliedChange) {
      const occurredMs = String(Date.parse(change.occurredAt));
      try {
        await call('UpdateItem', () =>
          client.send(
            new UpdateItemCommand({
              TableName: tableName,
              Key: stateKey(change.tenant, change.externalId),
              // An unsigned time orders its change but never moves the watermark (plan.ts, watermarkAfter).
              UpdateExpression: `SET ${change.occurredAtUnsigned ? '' : 'lastOccurredAt = :at, lastOccurredAtMs = :ms, '}lastSourceEventId = :event, profileId = :profile, identifiers = :identifiers, recordedAt = :now REMOVE pending`,
              // Conditional so two writers can never move the clock backwards.
              ConditionExpression: 'attribute_not_exists(lastOccurredAtMs) OR lastOccurredAtMs <= :ms',
              ExpressionAttributeValues: {
                ...(!change.occurredAtUnsigned && { ':at': { S: change.occurredAt } }),
                ':ms': { N: occurredMs },
                ':event': { S: change.sourceEventId },
                ':profile': change.profileId ? { S: change.profileId } : { NULL: true },
                // Without the profile, recorded identifiers would describe nobody: forget them.
                ':identifiers':
                  change.profileId && change.identifiers
                    ? { S: JSON.stringify(change.identifiers) }
                    : { NULL: true },
                ':now': { S: new Date().toISOString() },
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
            UpdateExpression: 'SET pending = :pending',
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
            UpdateExpression: 'SET mergedInto = :into, mergedAt = :at REMOVE profileId, identifiers, pending',
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
            UpdateExpression: 'REMOVE profileId, identifiers',
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
      const { Items = [] } = await call('Query', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :audit)',
            ExpressionAttributeValues: { ':pk': partitionOf(tenant, externalId), ':audit': { S: 'audit#' } },
            ScanIndexForward: false,
            Limit: limit,
          }),
        ),
      );
      return Items.map(
        (item: Record<string, AttributeValue>) => JSON.parse(item.entry?.S ?? '{}') as AuditEntry,
      );
    },
  };
}
