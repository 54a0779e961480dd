import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoCustomerRecords } from '../lib/adapters/dynamo-customer-records.js';
import { createDynamoRequestQuota } from '../lib/adapters/dynamo-request-quota.js';
import { createDynamoAuditLog, createDynamoSyncState } from '../lib/adapters/dynamo-sync-state.js';
import { createMemorySyncState } from '../lib/adapters/memory-sync-state.js';
import { policiesFrom, type TenantPolicies } from '../lib/config.js';
import { createKlaviyoClient } from '../lib/klaviyo/client.js';
import { KlaviyoApiError } from '../lib/klaviyo/errors.js';
import { limitsOf, shareOf } from '../lib/klaviyo/limits.js';
import { createKlaviyoPacer } from '../lib/klaviyo/pacer.js';
import type {
  AuditLog,
  KlaviyoBulkImports,
  KlaviyoProfileScan,
  KlaviyoProfiles,
  RequestGate,
  SyncStateStore,
} from '../lib/ports.js';
import type { IdentifierKey } from '../lib/privacy/identifier-digest.js';
import type { ErasureLookup } from '../lib/sync/handle-compliance.js';
import { identifierKeyOfRun, type KlaviyoTarget, klaviyoKeyOf, targetOf } from './klaviyo-key.js';
import { type CliSettings, tenantOf } from './settings.js';

/** Sync state and audit: DynamoDB, shared with the deployed worker, when SYNC_STATE_TABLE is set. */
export interface Store {
  state: SyncStateStore;
  audit: AuditLog;
  /** For people: where the state lives. */
  description: string;
  close(): void;
}

/** `dynamodb`: the run's client for the table, when it has one to share (the request quota uses it too). */
export function openStore(settings: CliSettings, dynamodb?: DynamoDBClient): Store {
  const table = settings.SYNC_STATE_TABLE;
  if (!table) {
    const memory = createMemorySyncState();
    return { state: memory, audit: memory, description: 'in memory for this run', close: () => undefined };
  }
  const client = dynamodb ?? new DynamoDBClient({});
  return {
    state: createDynamoSyncState(client, table),
    audit: createDynamoAuditLog(client, table, settings.AUDIT_RETENTION_DAYS),
    description: `DynamoDB table ${table}`,
    close: () => client.destroy(),
  };
}

export interface Session extends Store {
  tenant: string;
  /** The Klaviyo account the run writes to: what a rerun must match to resume. */
  target: KlaviyoTarget;
  policies: TenantPolicies;
  klaviyo: KlaviyoProfiles;
  /** The tenant's key for identifiers at rest: the records and audit entries the run writes use it. */
  identifierKey: IdentifierKey;
  /** Where a run looks for customers erased on request: the table's erasure records, when it has a table. */
  erasures?: ErasureLookup;
  /** Klaviyo's bulk profile import jobs, through the same client (pacing, retries). */
  bulk?: KlaviyoBulkImports;
  /** Reading the account's profiles page by page, through the same client. */
  scan?: KlaviyoProfileScan;
  /** Requests the Klaviyo client had to retry, for the summary. */
  retries: { total: number; throttled: number };
  /** For people: what paces the requests. */
  pacing: string;
}

export interface SessionOptions {
  tenant?: string;
  secretId?: string;
  ratePerSecond?: number;
}

/** Everything a batch run talks to: the tenant's Klaviyo account, paced, and the sync state. */
export async function openSession(options: SessionOptions, settings: CliSettings): Promise<Session> {
  const tenant = tenantOf(options.tenant, settings);
  const key = await klaviyoKeyOf(tenant, options.secretId, settings);
  const { apiKey, source } = key;
  const target = targetOf(settings.KLAVIYO_BASE_URL, apiKey, source);
  const retries = { total: 0, throttled: 0 };
  const dynamodb = settings.SYNC_STATE_TABLE ? new DynamoDBClient({}) : undefined;
  const pacing = requestGateOf(tenant, options.ratePerSecond, settings, dynamodb);
  const klaviyo = createKlaviyoClient({
    baseUrl: settings.KLAVIYO_BASE_URL,
    apiKey,
    revision: settings.KLAVIYO_REVISION,
    timeoutMs: settings.KLAVIYO_TIMEOUT_MS,
    retry: { maxAttempts: settings.KLAVIYO_MAX_ATTEMPTS, budgetMs: settings.KLAVIYO_RETRY_BUDGET_MS },
    pacer: pacing.gate,
    onRetry: ({ error }) => {
      retries.total++;
      if (error instanceof KlaviyoApiError && error.status === 429) retries.throttled++;
    },
  });
  const identifierKey = identifierKeyOfRun(key);
  const table = settings.SYNC_STATE_TABLE;
  return {
    tenant,
    target,
    policies: policiesFrom(settings)(tenant),
    klaviyo,
    identifierKey,
    // The worker's erasure records, in its table: a run applies or binds nothing of an erased customer.
    ...(table &&
      dynamodb && {
        erasures: {
          records: createDynamoCustomerRecords(dynamodb, table),
          identifierKeyFor: async () => identifierKey,
        },
      }),
    bulk: klaviyo,
    scan: klaviyo,
    retries,
    pacing: pacing.description,
    ...openStore(settings, dynamodb),
  };
}

/**
 * What paces a run's Klaviyo requests. Given SYNC_STATE_TABLE, the tenant's quota that the
 * deployed workers share through the table (KLAVIYO_QUOTA_SHARE of Klaviyo's limits), so a run and
 * the workers stay under the account's limits together; `--rate-per-second` caps the run on top.
 * Without the table, the in-process pacer keeps the run alone under Klaviyo's limits (or that rate).
 */
export function requestGateOf(
  tenant: string,
  ratePerSecond: number | undefined,
  settings: Pick<CliSettings, 'SYNC_STATE_TABLE' | 'KLAVIYO_QUOTA_SHARE'>,
  dynamodb: DynamoDBClient | undefined,
): { gate: RequestGate; description: string } {
  const rate = ratePerSecond === undefined ? '' : `, at most ${ratePerSecond}/s per endpoint`;
  if (!settings.SYNC_STATE_TABLE || !dynamodb) {
    return {
      gate: createKlaviyoPacer(ratePerSecond),
      description: `in this process${rate || " at Klaviyo's limits"}`,
    };
  }
  const shared = createDynamoRequestQuota({
    client: dynamodb,
    tableName: settings.SYNC_STATE_TABLE,
    account: tenant,
    limitsOf: (endpoint) => shareOf(limitsOf(endpoint), settings.KLAVIYO_QUOTA_SHARE),
  });
  return {
    gate: ratePerSecond === undefined ? shared : bothGates(createKlaviyoPacer(ratePerSecond), shared),
    description: `by tenant ${tenant}'s quota shared with the workers (KLAVIYO_QUOTA_SHARE ${settings.KLAVIYO_QUOTA_SHARE})${rate}`,
  };
}

/** Waits for `own` first, then `shared`: a shared slot is taken only once the request may go at once. */
export const bothGates = (own: RequestGate, shared: RequestGate): RequestGate => ({
  async wait(endpoint) {
    await own.wait(endpoint);
    await shared.wait(endpoint);
  },
  observe(endpoint, report) {
    own.observe?.(endpoint, report);
    shared.observe?.(endpoint, report);
  },
});
