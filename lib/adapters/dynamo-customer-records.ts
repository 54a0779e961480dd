import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import type { CustomerRecords, ErasedItems, ErasureRecord } from '../ports.js';
import { customerRecordKey } from '../privacy/identifier-digest.js';
import {
  auditEntryOf,
  call,
  type Item,
  isAuditItem,
  isStateItem,
  type Key,
  partitionOf,
} from './state-table.js';

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
  stateItems: keys.filter(isStateItem).length,
  auditItems: keys.filter(isAuditItem).length,
});

/**
 * Erasure and export on the table: a customer's partition read or deleted (Query, BatchWriteItem),
 * a tenant's customers found by Scan, and the erasure records (`erased#…`), which hold no id.
 */
export function createDynamoCustomerRecords(client: DynamoDBClient, tableName: string): CustomerRecords {
  async function partition(tenant: string, externalId: string) {
    const items: Item[] = [];
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
  const keyOf = (item: Item) => ({ pk: item.pk, sk: item.sk }) as Key;

  return {
    async readCustomer(tenant, externalId) {
      const items = await partition(tenant, externalId);
      const stateItem = items.find(isStateItem);
      const state =
        stateItem &&
        Object.fromEntries(
          Object.entries(stateItem)
            .filter(([name]) => name !== 'pk' && name !== 'sk')
            .map(([name, value]) => [name, plainOf(name, value)]),
        );
      const audit = items.filter(isAuditItem).map(auditEntryOf);
      return { state, audit };
    },

    async eraseCustomer(tenant, externalId) {
      const keys = (await partition(tenant, externalId)).map(keyOf);
      await deleteAll(client, tableName, keys);
      return countItems(keys);
    },

    async eraseTenant(tenant) {
      // Deleted a page at a time: memory stays bounded however big the shop, and a redelivery
      // after a timeout goes on from what is left.
      const erased: ErasedItems = { stateItems: 0, auditItems: 0 };
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
        const keys = (page.Items ?? []).map(keyOf);
        await deleteAll(client, tableName, keys);
        const counted = countItems(keys);
        erased.stateItems += counted.stateItems;
        erased.auditItems += counted.auditItems;
        start = page.LastEvaluatedKey;
      } while (start);
      return erased;
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
