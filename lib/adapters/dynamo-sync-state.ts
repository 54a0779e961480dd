import {
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type {
  AppliedChange,
  AuditEntry,
  AuditLog,
  CustomerState,
  PendingChange,
  SyncStateStore,
} from '../ports.js';
import { historyWithUnchanged } from '../sync/unchanged-decisions.js';
import { unchangedOf, unchangedUpdate } from './dynamo-unchanged-decisions.js';
import {
  auditEntryOf,
  auditSortKeyOf,
  call,
  isAuditItem,
  isConditionFailed,
  isStateItem,
  partitionOf,
  stateKey,
} from './state-table.js';

/** The customer's state and decisions on the state table (its layout: state-table.ts). */

/**
 * A pending change as stored: its sealed identifiers, never plain ones. One written before they
 * were sealed keeps its count and event but loses its plaintext identifiers on reading (the change
 * records them sealed at its next delivery).
 */
function pendingFrom(stored: string): PendingChange {
  const { sealedIdentifiers, occurredAt, occurredAtUnsigned, sourceEventId, conflicts } = JSON.parse(
    stored,
  ) as PendingChange;
  return {
    ...(typeof sealedIdentifiers === 'string' && { sealedIdentifiers }),
    occurredAt,
    // Kept: the swap that applies it records it, and an unsigned time must not move the watermark.
    ...(occurredAtUnsigned === true && { occurredAtUnsigned }),
    sourceEventId,
    ...(conflicts !== undefined && { conflicts }),
  };
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
      const unchanged = unchangedUpdate(change);
      try {
        await call('UpdateItem', () =>
          client.send(
            new UpdateItemCommand({
              TableName: tableName,
              Key: stateKey(change.tenant, change.externalId),
              // An unsigned time orders its change but never moves the watermark (plan.ts, watermarkAfter).
              UpdateExpression: `SET ${change.occurredAtUnsigned ? '' : 'lastOccurredAt = :at, lastOccurredAtMs = :ms, '}lastSourceEventId = :event, profileId = :profile, identifierDigests = :digests, recordedAt = :now${unchanged.set} REMOVE pending, identifiers${unchanged.add}`,
              // Conditional so two writers can never move the clock backwards.
              ConditionExpression: `${change.onlyIfHeld ? 'attribute_exists(pk) AND ' : ''}(attribute_not_exists(lastOccurredAtMs) OR lastOccurredAtMs <= :ms)`,
              ExpressionAttributeValues: {
                ...(!change.occurredAtUnsigned && { ':at': { S: change.occurredAt } }),
                ':ms': { N: occurredMs },
                ':event': { S: change.sourceEventId },
                ':profile': change.profileId ? { S: change.profileId } : { NULL: true },
                // Without the profile, recorded digests would describe nobody: forget them.
                ':digests':
                  change.profileId && change.digests ? { S: JSON.stringify(change.digests) } : { NULL: true },
                ':now': { S: new Date().toISOString() },
                ...unchanged.values,
              },
            }),
          ),
        );
        return true;
      } catch (error) {
        if (isConditionFailed(error)) return false;
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
        if (!isConditionFailed(error)) throw error;
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
              sk: { S: auditSortKeyOf(entry) },
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
      const entries = Items.filter(isAuditItem).map(auditEntryOf);
      const state = Items.find(isStateItem);
      return historyWithUnchanged(tenant, externalId, entries, unchangedOf(state), limit);
    },
  };
}
