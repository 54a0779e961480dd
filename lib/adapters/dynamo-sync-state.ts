import { type DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import type { AppliedChange, SyncStateStore } from '../ports.js';

/** Item keys: one partition per customer of a tenant, so later records (audit) can sit beside it. */
const keyOf = (tenant: string, externalId: string) => ({
  pk: { S: `customer#${tenant}#${externalId}` },
  sk: { S: 'state' },
});

/** The staleness guard's memory: per customer, when the last applied change happened. */
export function createDynamoSyncState(client: DynamoDBClient, tableName: string): SyncStateStore {
  return {
    async lastAppliedAt(tenant, externalId) {
      try {
        const { Item } = await client.send(
          new GetItemCommand({ TableName: tableName, Key: keyOf(tenant, externalId), ConsistentRead: true }),
        );
        return Item?.lastOccurredAt?.S;
      } catch (error) {
        throw new TransientError(
          'state_unavailable',
          `DynamoDB GetItem failed: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
    },

    async recordApplied(change: AppliedChange) {
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              ...keyOf(change.tenant, change.externalId),
              lastOccurredAt: { S: change.occurredAt },
              lastOccurredAtMs: { N: String(Date.parse(change.occurredAt)) },
              lastSourceEventId: { S: change.sourceEventId },
              ...(change.profileId ? { profileId: { S: change.profileId } } : {}),
              recordedAt: { S: new Date().toISOString() },
            },
            // Conditional so two writers can never move the clock backwards.
            ConditionExpression: 'attribute_not_exists(pk) OR lastOccurredAtMs <= :occurred',
            ExpressionAttributeValues: { ':occurred': { N: String(Date.parse(change.occurredAt)) } },
          }),
        );
        return true;
      } catch (error) {
        if ((error as Error).name === 'ConditionalCheckFailedException') return false;
        throw new TransientError(
          'state_unavailable',
          `DynamoDB PutItem failed: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
    },
  };
}
