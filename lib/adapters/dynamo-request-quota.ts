import {
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.js';
import type { RateLimit } from '../klaviyo/limits.js';
import { createLeasedQuotaGate } from '../klaviyo/quota-gate.js';
import { MERGED_HOLDER } from '../klaviyo/quota-lease.js';
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

/**
 * The leases as stored, compact since the item is rewritten whole and a write unit is 1 KB: times
 * as offsets from the earliest start in steps of STORED_TIME_MS (a start rounded down, an end up:
 * a lease only grows, which counts it in more windows, never fewer), `[holder, from, to, requests,
 * perSecond]` for a holder's lease and `[to, requests]` for a merged one, whose start is not kept
 * (lib/klaviyo/quota-lease.ts compactLeases).
 */
const STORED_TIME_MS = 10;

interface StoredLeases {
  base: number;
  leases: ([string, number, number, number, number] | [number, number])[];
}

function storedLeasesOf(leases: readonly QuotaLease[]): string {
  const earliest = Math.min(...leases.map((lease) => lease.from));
  const base = Number.isFinite(earliest) ? Math.floor(earliest / STORED_TIME_MS) * STORED_TIME_MS : 0;
  const start = (time: number) => Math.floor((time - base) / STORED_TIME_MS);
  const end = (time: number) => Math.ceil((time - base) / STORED_TIME_MS);
  const stored: StoredLeases = {
    base,
    leases: leases.map(({ holder, from, to, requests, perSecond }) =>
      holder === MERGED_HOLDER
        ? [end(to), requests]
        : // A rate rounded up, as others must see at least what the holder may send.
          [holder, start(from), end(to), requests, Math.ceil(perSecond * 100) / 100],
    ),
  };
  return JSON.stringify(stored);
}

function leasesOfStored(text: string): QuotaLease[] {
  const { base, leases } = JSON.parse(text) as StoredLeases;
  const timesOf = (from: number, to: number) => ({
    from: base + from * STORED_TIME_MS,
    to: base + to * STORED_TIME_MS,
  });
  return leases.map((entry) => {
    if (typeof entry[0] === 'number') {
      const [to, requests] = entry as [number, number];
      return { holder: MERGED_HOLDER, ...timesOf(to, to), requests, perSecond: 0 };
    }
    const [holder, from, to, requests, perSecond] = entry as [string, number, number, number, number];
    return { holder, ...timesOf(from, to), requests, perSecond };
  });
}

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
        return {
          version: Number(Item.version?.N ?? 0),
          leases: Item.leases?.S ? leasesOfStored(Item.leases.S) : [],
          ...(Item.contended?.N && { contendedWrites: Number(Item.contended.N) }),
        };
      } catch (error) {
        throw failed(error);
      }
    },

    async write(endpoint, next: QuotaLedgerState, expectedVersion) {
      const input: PutItemCommandInput = {
        TableName: options.tableName,
        Item: {
          ...quotaLedgerKey(options.account, endpoint),
          version: { N: String(next.version) },
          leases: { S: storedLeasesOf(next.leases) },
          ...(next.contendedWrites ? { contended: { N: String(next.contendedWrites) } } : {}),
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
