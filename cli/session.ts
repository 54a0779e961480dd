import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { createDynamoAuditLog, createDynamoSyncState } from '../lib/adapters/dynamo-sync-state.js';
import { createMemorySyncState } from '../lib/adapters/memory-sync-state.js';
import { readTenantSecret } from '../lib/adapters/tenant-secrets.js';
import { parseSettings, policiesFrom, settingsSchema, type TenantPolicies } from '../lib/config.js';
import { createKlaviyoClient } from '../lib/klaviyo/client.js';
import { KlaviyoApiError } from '../lib/klaviyo/errors.js';
import { createKlaviyoPacer } from '../lib/klaviyo/pacer.js';
import type { AuditLog, KlaviyoProfiles, SyncStateStore } from '../lib/ports.js';
import { UsageError } from './io.js';

/**
 * What the CLI reads from the environment: the service's settings it needs, with the service's
 * defaults and checks. SYNC_STATE_TABLE is optional here. AWS SDK clients read their own
 * settings (AWS_REGION, credentials, AWS_ENDPOINT_URL_*) from process.env, as everywhere.
 */
const cliSettingsSchema = settingsSchema
  .pick({
    DEFAULT_TENANT: true,
    TENANT_POLICIES: true,
    CONFLICT_RETRY_ATTEMPTS: true,
    AUDIT_RETENTION_DAYS: true,
    DEFAULT_PHONE_REGION: true,
    KLAVIYO_BASE_URL: true,
    KLAVIYO_REVISION: true,
    KLAVIYO_TIMEOUT_MS: true,
    KLAVIYO_MAX_ATTEMPTS: true,
    KLAVIYO_RETRY_BUDGET_MS: true,
  })
  .extend({
    SYNC_STATE_TABLE: z.string().optional(),
    KLAVIYO_API_KEY: z.string().startsWith('pk_', 'must be a Klaviyo private key (pk_…)').optional(),
  });

export type CliSettings = z.output<typeof cliSettingsSchema>;

export const cliSettings = (env: Record<string, string | undefined>): CliSettings =>
  parseSettings(cliSettingsSchema, env);

export function tenantOf(flag: string | undefined, settings: CliSettings): string {
  const tenant = flag ?? settings.DEFAULT_TENANT;
  if (!tenant) throw new UsageError('--tenant is required when DEFAULT_TENANT is empty');
  return tenant;
}

/** Sync state and audit: DynamoDB, shared with the deployed worker, when SYNC_STATE_TABLE is set. */
export interface Store {
  state: SyncStateStore;
  audit: AuditLog;
  /** For people: where the state lives. */
  description: string;
  close(): void;
}

export function openStore(settings: CliSettings): Store {
  if (!settings.SYNC_STATE_TABLE) {
    const memory = createMemorySyncState();
    return { state: memory, audit: memory, description: 'in memory for this run', close: () => undefined };
  }
  const dynamodb = new DynamoDBClient({});
  return {
    state: createDynamoSyncState(dynamodb, settings.SYNC_STATE_TABLE),
    audit: createDynamoAuditLog(dynamodb, settings.SYNC_STATE_TABLE, settings.AUDIT_RETENTION_DAYS),
    description: `DynamoDB table ${settings.SYNC_STATE_TABLE}`,
    close: () => dynamodb.destroy(),
  };
}

export interface Session extends Store {
  tenant: string;
  policies: TenantPolicies;
  klaviyo: KlaviyoProfiles;
  /** Requests the Klaviyo client had to retry, for the summary. */
  retries: { total: number; throttled: number };
}

export interface SessionOptions {
  tenant?: string;
  secretId?: string;
  ratePerSecond?: number;
}

/** Everything a batch run talks to: the tenant's Klaviyo account, paced, and the sync state. */
export async function openSession(options: SessionOptions, settings: CliSettings): Promise<Session> {
  const tenant = tenantOf(options.tenant, settings);
  const apiKey = await apiKeyOf(options.secretId, settings);
  const retries = { total: 0, throttled: 0 };
  const klaviyo = createKlaviyoClient({
    baseUrl: settings.KLAVIYO_BASE_URL,
    apiKey,
    revision: settings.KLAVIYO_REVISION,
    timeoutMs: settings.KLAVIYO_TIMEOUT_MS,
    retry: { maxAttempts: settings.KLAVIYO_MAX_ATTEMPTS, budgetMs: settings.KLAVIYO_RETRY_BUDGET_MS },
    pacer: createKlaviyoPacer(options.ratePerSecond),
    onRetry: ({ error }) => {
      retries.total++;
      if (error instanceof KlaviyoApiError && error.status === 429) retries.throttled++;
    },
  });
  return { tenant, policies: policiesFrom(settings)(tenant), klaviyo, retries, ...openStore(settings) };
}

/** `--secret-id` (a tenant secret's full id) wins over KLAVIYO_API_KEY. */
async function apiKeyOf(secretId: string | undefined, settings: CliSettings): Promise<string> {
  if (secretId) {
    const client = new SecretsManagerClient({});
    try {
      return (await readTenantSecret(client, secretId)).klaviyoPrivateKey;
    } finally {
      client.destroy();
    }
  }
  if (settings.KLAVIYO_API_KEY) return settings.KLAVIYO_API_KEY;
  throw new UsageError('a Klaviyo private key is needed: set KLAVIYO_API_KEY or pass --secret-id');
}

/** Klaviyo refused the key itself (revoked, wrong account, missing scope): no row can succeed. */
export const isKeyRefused = (error: unknown) =>
  error instanceof KlaviyoApiError && (error.status === 401 || error.status === 403);
