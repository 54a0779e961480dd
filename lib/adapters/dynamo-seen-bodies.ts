import { type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import type { SeenBodies } from '../ports.js';

/**
 * Seen bodies in the sync-state table, one item each (`seen#<source>#sha256:<hex>`), expiring
 * by the table's TTL. TTL deletes within days, not on the second: the condition reads `expiresAt`
 * itself, so an expired item is taken over as if it were gone.
 */
export function createDynamoSeenBodies(
  client: DynamoDBClient,
  tableName: string,
  windowSeconds: number,
): SeenBodies {
  return {
    async claim(key, deliveryId, now) {
      const nowSeconds = Math.floor(now.getTime() / 1000);
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              pk: { S: `seen#${key}` },
              sk: { S: 'seen' },
              deliveryId: { S: deliveryId },
              seenAt: { S: now.toISOString() },
              expiresAt: { N: String(nowSeconds + windowSeconds) },
            },
            ConditionExpression: 'attribute_not_exists(pk) OR deliveryId = :delivery OR expiresAt <= :now',
            ExpressionAttributeValues: { ':delivery': { S: deliveryId }, ':now': { N: String(nowSeconds) } },
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
