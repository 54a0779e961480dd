import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import type {
  AppliedChange,
  AuditEntry,
  AuditLog,
  CustomerRecords,
  CustomerState,
  ErasedItems,
  ErasureRecord,
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

type Key = { pk: AttributeValue; sk: AttributeValue };

/** An erased customer's record: its keyed digest only (lib/privacy/erasure.ts, erasureSubject). */
const erasedCustomerKey = (tenant: string, subject: string) => ({
  pk: { S: `erased#${tenant}#${subject}` },
  sk: { S: 'erasure' },
});
/** A shop's erasure record: one per request. */
const erasedShopKey = (tenant: string, requestedAt: string, sourceEventId: string) => ({
  pk: { S: `erased#${tenant}` },
  sk: { S: `shop#${requestedAt}#${sourceEventId}` },
});

/** JSON kept in a string attribute is shown as JSON; the rest as its plain value. */
const JSON_ATTRIBUTES = new Set(['identifierDigests', 'pending', 'identifiers']);
function plainOf(name: string, value: AttributeValue): unknown {
  if (value.S !== undefined) return JSON_ATTRIBUTES.has(name) ? JSON.parse(value.S) : value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL) return null;
  return value;
}

/** BatchWriteItem deletes, 25 a call, again for what DynamoDB left unprocessed (a few tries). */
async function deleteAll(client: DynamoDBClient, tableName: string, keys: Key[]) {
  for (let start = 0; start < keys.length; start += 25) {
    let requests = keys.slice(start, start + 25).map((Key) => ({ DeleteRequest: { Key } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt === 5) throw new TransientError('state_unavailable', 'DynamoDB left deletes unprocessed');
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
      const { UnprocessedItems } = await call('BatchWriteItem', () =>
        client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } })),
      );
      requests = (UnprocessedItems?.[tableName] ?? []).flatMap((request) =>
        request.DeleteRequest?.Key ? [{ DeleteRequest: { Key: request.DeleteRequest.Key as Key } }] : [],
      );
    }
  }
}

const countItems = (keys: Key[]): ErasedItems => ({
  stateItems: keys.filter((key) => key.sk.S === 'state').length,
  auditItems: keys.filter((key) => key.sk.S?.startsWith('audit#')).length,
});

/**
 * Erasure and export on the table: a customer's partition read or deleted (Query, BatchWriteItem),
 * a tenant's customers found by Scan, and the erasure records (`erased#…`), which hold no id.
 */
export function createDynamoCustomerRecords(client: DynamoDBClient, tableName: string): CustomerRecords {
  async function partition(tenant: string, externalId: string) {
    const items: Record<string, AttributeValue>[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await call('Query', () =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': partitionOf(tenant, externalId) },
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        ),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }
  const keyOf = (item: Record<string, AttributeValue>) => ({ pk: item.pk, sk: item.sk }) as Key;

  return {
    async readCustomer(tenant, externalId) {
      const items = await partition(tenant, externalId);
      const stateItem = items.find((item) => item.sk?.S === 'state');
      const state =
        stateItem &&
        Object.fromEntries(
          Object.entries(stateItem)
            .filter(([name]) => name !== 'pk' && name !== 'sk')
            .map(([name, value]) => [name, plainOf(name, value)]),
        );
      const audit = items
        .filter((item) => item.sk?.S?.startsWith('audit#'))
        .map((item) => JSON.parse(item.entry?.S ?? '{}') as AuditEntry);
      return { state, audit };
    },

    async eraseCustomer(tenant, externalId) {
      const keys = (await partition(tenant, externalId)).map(keyOf);
      await deleteAll(client, tableName, keys);
      return countItems(keys);
    },

    async eraseTenant(tenant) {
      const keys: Key[] = [];
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await call('Scan', () =>
          client.send(
            new ScanCommand({
              TableName: tableName,
              FilterExpression: 'begins_with(pk, :customers) OR begins_with(pk, :erased)',
              ExpressionAttributeValues: {
                ':customers': { S: customerRecordKey(tenant, '') },
                ':erased': { S: `erased#${tenant}#` },
              },
              ProjectionExpression: 'pk, sk',
              ConsistentRead: true,
              ExclusiveStartKey: start,
            }),
          ),
        );
        keys.push(...(page.Items ?? []).map(keyOf));
        start = page.LastEvaluatedKey;
      } while (start);
      await deleteAll(client, tableName, keys);
      return countItems(keys);
    },

    async recordErasure(record: ErasureRecord) {
      const key =
        record.scope === 'customer' && record.subject
          ? erasedCustomerKey(record.tenant, record.subject)
          : erasedShopKey(record.tenant, record.requestedAt, record.sourceEventId);
      await call('PutItem', () =>
        client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: { ...key, erasure: { S: JSON.stringify(record) }, erasedAt: { S: record.erasedAt } },
          }),
        ),
      );
    },

    async isErased(tenant, subject) {
      const { Item } = await call('GetItem', () =>
        client.send(
          new GetItemCommand({
            TableName: tableName,
            Key: erasedCustomerKey(tenant, subject),
            ConsistentRead: true,
            ProjectionExpression: 'pk',
          }),
        ),
      );
      return Item !== undefined;
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
