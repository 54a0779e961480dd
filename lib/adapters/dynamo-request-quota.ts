import { setTimeout as sleep } from 'node:timers/promises';
import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import { type RateLimit, steadyShareOfOneSecond } from '../klaviyo/limits.js';
import type { RequestGate, SteadyWindowReport } from '../ports.js';

/**
 * Klaviyo's quota is per account (one tenant), per endpoint, shared by every worker instance and
 * CLI run. Instances cannot see each other, so they share a counter in the sync-state table: one
 * item per tenant, endpoint and second of wall time, incremented with a conditional write that
 * fails once the second's share is taken. A second's share is the steady limit divided by 61 (a
 * 60-second window of Klaviyo's, wherever its edges fall, overlaps at most 61 of our seconds),
 * so the sum of all instances stays under both of Klaviyo's windows.
 *
 * Klaviyo's RateLimit-Remaining/Reset headers are the backstop for what the counter cannot see
 * (other apps of the merchant spending the same quota): when the steady window is nearly spent,
 * the endpoint is held until the window resets.
 */
export interface DynamoRequestQuotaOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Whose quota: the tenant (each tenant is its own Klaviyo account). */
  account: string;
  /** The limits of an endpoint, keyed like `PATCH /api/profiles/{id}`. */
  limitsOf: (endpoint: string) => RateLimit;
  now?: () => number;
  pause?: (ms: number) => Promise<unknown>;
}

/** How long a second's counter item is kept (DynamoDB's TTL deletes it after that). */
const COUNTER_TTL_SECONDS = 120;

export function createDynamoRequestQuota(options: DynamoRequestQuotaOptions): RequestGate {
  const now = options.now ?? Date.now;
  const pause = options.pause ?? sleep;
  /** Per endpoint, the second we know is full: no write is spent asking again within it. */
  const fullSecond = new Map<string, number>();
  /** Per endpoint, when Klaviyo's headers said the steady window is spent. */
  const heldUntil = new Map<string, number>();

  async function takeSlot(endpoint: string, second: number, share: number): Promise<boolean> {
    try {
      await options.client.send(
        new UpdateItemCommand({
          TableName: options.tableName,
          Key: { pk: { S: `quota#${options.account}#${endpoint}` }, sk: { S: String(second) } },
          UpdateExpression: 'ADD used :one SET expiresAt = if_not_exists(expiresAt, :expires)',
          ConditionExpression: 'attribute_not_exists(used) OR used < :share',
          ExpressionAttributeValues: {
            ':one': { N: '1' },
            ':share': { N: String(share) },
            ':expires': { N: String(second + COUNTER_TTL_SECONDS) },
          },
        }),
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw new TransientError(
        'quota_unavailable',
        `DynamoDB quota counter failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  return {
    async wait(endpoint) {
      const share = steadyShareOfOneSecond(options.limitsOf(endpoint));
      for (;;) {
        const at = now();
        const held = heldUntil.get(endpoint) ?? 0;
        if (held > at) {
          await pause(held - at);
          continue;
        }
        const second = Math.floor(at / 1000);
        if (fullSecond.get(endpoint) !== second && (await takeSlot(endpoint, second, share))) return;
        fullSecond.set(endpoint, second);
        // Spread the waiters over the next second's first moments rather than all at its edge.
        await pause((second + 1) * 1000 - now() + Math.floor(Math.random() * 50));
      }
    },

    observe(endpoint, report: SteadyWindowReport) {
      const share = steadyShareOfOneSecond(options.limitsOf(endpoint));
      if (report.remaining < share) heldUntil.set(endpoint, now() + report.resetSeconds * 1000);
    },
  };
}
