import {
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import type { RateLimit } from '../klaviyo/limits.js';
import { createLeasedQuotaGate } from '../klaviyo/quota-gate.js';
import type { QuotaLease, QuotaLedger, QuotaLedgerState, RequestGate } from '../ports.js';

/**
 * Klaviyo's quota is per account (one tenant), per endpoint, shared by every worker instance and
 * CLI run. They share it through the sync-state table: one item per tenant and endpoint holding
 * the leases still in play (lib/klaviyo/quota-gate.ts), replaced whole by a write conditional on
 * the version it was computed from. A holder takes a block of requests per write, so the table
 * sees a small fraction of a write per Klaviyo request.
 */
export interface DynamoRequestQuotaOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Whose quota: the tenant (each tenant is its own Klaviyo account). */
  account: string;
  /** The limits of an endpoint, keyed like `PATCH /api/profiles/{id}`. */
  limitsOf: (endpoint: string) => RateLimit;
  /** When a wait for quota must give up (epoch ms), e.g. the Lambda invocation's; none: no limit. */
  deadline?: () => number | undefined;
  now?: () => number;
  pause?: (ms: number) => Promise<unknown>;
}

/** How long a ledger item outlives its last write (DynamoDB's TTL deletes it after that). */
const LEDGER_TTL_SECONDS = 3_600;

/** A lease as stored: `[holder, from, to, requests, perSecond]`, compact since the item is rewritten whole. */
type StoredLease = [string, number, number, number, number];

export const quotaLedgerKey = (account: string, endpoint: string) => ({
  pk: { S: `quota#${account}#${endpoint}` },
  sk: { S: 'leases' },
});

export function createDynamoQuotaLedger(
  options: Pick<DynamoRequestQuotaOptions, 'client' | 'tableName' | 'account' | 'now'>,
): QuotaLedger {
  const now = options.now ?? Date.now;
  const failed = (error: unknown) =>
    new TransientError('quota_unavailable', `DynamoDB quota ledger failed: ${(error as Error).message}`, {
      cause: error,
    });
  return {
    async read(endpoint) {
      try {
        const { Item } = await options.client.send(
          new GetItemCommand({
            TableName: options.tableName,
            Key: quotaLedgerKey(options.account, endpoint),
            ConsistentRead: true,
          }),
        );
        if (!Item) return { version: 0, leases: [] };
        const stored = JSON.parse(Item.leases?.S ?? '[]') as StoredLease[];
        return {
          version: Number(Item.version?.N ?? 0),
          leases: stored.map(([holder, from, to, requests, perSecond]) => ({
            holder,
            from,
            to,
            requests,
            perSecond,
          })),
        };
      } catch (error) {
        throw failed(error);
      }
    },

    async write(endpoint, next: QuotaLedgerState, expectedVersion) {
      const stored: StoredLease[] = next.leases.map((lease: QuotaLease) => [
        lease.holder,
        lease.from,
        lease.to,
        lease.requests,
        lease.perSecond,
      ]);
      const input: PutItemCommandInput = {
        TableName: options.tableName,
        Item: {
          ...quotaLedgerKey(options.account, endpoint),
          version: { N: String(next.version) },
          leases: { S: JSON.stringify(stored) },
          expiresAt: { N: String(Math.floor(now() / 1000) + LEDGER_TTL_SECONDS) },
        },
        ...(expectedVersion === 0
          ? { ConditionExpression: 'attribute_not_exists(version)' }
          : {
              ConditionExpression: 'version = :expected',
              ExpressionAttributeValues: { ':expected': { N: String(expectedVersion) } },
            }),
      };
      try {
        await options.client.send(new PutItemCommand(input));
        return true;
      } catch (error) {
        if ((error as Error).name === 'ConditionalCheckFailedException') return false;
        throw failed(error);
      }
    },
  };
}

/** The tenant's shared quota as a request gate: leases recorded in the table. */
export function createDynamoRequestQuota(options: DynamoRequestQuotaOptions): RequestGate {
  return createLeasedQuotaGate({
    ledger: createDynamoQuotaLedger(options),
    limitsOf: options.limitsOf,
    deadline: options.deadline,
    now: options.now,
    pause: options.pause,
  });
}
