import { createHash } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { createDynamoRequestQuota } from '../lib/adapters/dynamo-request-quota.js';
import { createDynamoAuditLog, createDynamoSyncState } from '../lib/adapters/dynamo-sync-state.js';
import { createMemorySyncState } from '../lib/adapters/memory-sync-state.js';
import { klaviyoKeySecretId, readTenantSecret } from '../lib/adapters/tenant-secrets.js';
import {
  defaultTenantSetting,
  parseSettings,
  policiesFrom,
  settingsSchema,
  type TenantPolicies,
} from '../lib/config.js';
import { ConfigurationError, PermanentError } from '../lib/errors.js';
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
import { type IdentifierKey, identifierKeyOf } from '../lib/privacy/identifier-digest.js';
import { UsageError } from './io.js';

/**
 * What the CLI reads from the environment: the service's settings it needs, with the service's
 * defaults and checks. SYNC_STATE_TABLE is optional here. AWS SDK clients read their own
 * settings (AWS_REGION, credentials, AWS_ENDPOINT_URL_*) from process.env, as everywhere.
 */
const cliSettingsSchema = settingsSchema
  .pick({
    TENANT_POLICIES: true,
    SHOP_TENANTS: true,
    CONFLICT_RETRY_ATTEMPTS: true,
    AUDIT_RETENTION_DAYS: true,
    DEFAULT_PHONE_REGION: true,
    KLAVIYO_BASE_URL: true,
    KLAVIYO_REVISION: true,
    KLAVIYO_TIMEOUT_MS: true,
    KLAVIYO_MAX_ATTEMPTS: true,
    KLAVIYO_RETRY_BUDGET_MS: true,
    KLAVIYO_QUOTA_SHARE: true,
  })
  .extend({
    DEFAULT_TENANT: defaultTenantSetting,
    SYNC_STATE_TABLE: z.string().optional(),
    // Optional here (the service has a default): set, the tenant's key is read from its secret.
    TENANT_SECRET_PREFIX: z
      .string()
      .optional()
      .transform((prefix) => prefix || undefined),
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
  return {
    tenant,
    target,
    policies: policiesFrom(settings)(tenant),
    klaviyo,
    identifierKey: identifierKeyOfRun(key),
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

/**
 * Which Klaviyo account a run writes to: the base URL and a fingerprint of the key (never the key).
 * A results file or checkpoint is resumed only by a run against the same target and tenant.
 */
export interface KlaviyoTarget {
  baseUrl: string;
  keyFingerprint: string;
  /** For people: where the key came from (`KLAVIYO_API_KEY`, `secret <id>`). */
  keySource: string;
}

/** 12 hex digits of a SHA-256 of the key: tells keys apart on screen and in files, reveals nothing. */
export const keyFingerprint = (apiKey: string) =>
  createHash('sha256').update(`klaviyo-identity-sync key:${apiKey}`).digest('hex').slice(0, 12);

export const targetOf = (baseUrl: string, apiKey: string, keySource: string): KlaviyoTarget => ({
  baseUrl: baseUrl.replace(/\/+$/, ''),
  keyFingerprint: keyFingerprint(apiKey),
  keySource,
});

/** `http://127.0.0.1:4569 (key 1a2b3c4d5e6f from secret …/demo)` */
export const describeTarget = ({ baseUrl, keyFingerprint, keySource }: KlaviyoTarget) =>
  `${baseUrl} (key ${keyFingerprint} from ${keySource})`;

/** What a results line or checkpoint records of the target and tenant: 16 hex digits. */
export const targetIdOf = ({ baseUrl, keyFingerprint }: KlaviyoTarget, tenant: string) =>
  createHash('sha256')
    .update(JSON.stringify([baseUrl, keyFingerprint, tenant]))
    .digest('hex')
    .slice(0, 16);

/** The tenants a deployment configures without a secret per tenant: DEFAULT_TENANT, TENANT_POLICIES', SHOP_TENANTS'. */
export function configuredTenants(
  settings: Pick<CliSettings, 'DEFAULT_TENANT' | 'TENANT_POLICIES' | 'SHOP_TENANTS'>,
): Set<string> {
  return new Set(
    [
      settings.DEFAULT_TENANT,
      ...Object.keys(settings.TENANT_POLICIES),
      ...Object.values(settings.SHOP_TENANTS),
    ].filter((tenant) => tenant !== ''),
  );
}

const NOTHING_DONE = 'nothing was read or written';

/**
 * The run's Klaviyo key, tied to its tenant, decided before anything is read or written:
 * - With TENANT_SECRET_PREFIX, the tenant's own key from its secret (as the worker reads it): a
 *   tenant without a secret is unknown, and a key given besides (KLAVIYO_API_KEY, --secret-id)
 *   must be that same key.
 * - Without it, the bare key given (KLAVIYO_API_KEY or --secret-id): a trial run, only for a
 *   tenant the settings name and never with SYNC_STATE_TABLE (the workers' state, which trusts
 *   the profile ids a run records there).
 */
/** A run's Klaviyo key, where it came from, and the tenant's identifier key when its secret has one. */
export interface KlaviyoKey {
  apiKey: string;
  source: string;
  identifierKey?: string;
}

/** The key for identifiers at rest: the secret's identifierKey, else derived from the Klaviyo key (as the worker does). */
export const identifierKeyOfRun = ({ apiKey, identifierKey }: KlaviyoKey) =>
  identifierKeyOf({ klaviyoPrivateKey: apiKey, identifierKey });

export async function klaviyoKeyOf(
  tenant: string,
  secretId: string | undefined,
  settings: CliSettings,
): Promise<KlaviyoKey> {
  const prefix = settings.TENANT_SECRET_PREFIX;
  if (!prefix) {
    if (settings.SYNC_STATE_TABLE) {
      throw new ConfigurationError(
        `SYNC_STATE_TABLE is the deployed workers' state: set TENANT_SECRET_PREFIX too, so the run uses tenant ${tenant}'s own Klaviyo key from its secret (deployed: klaviyo-identity-sync/<stage>/tenants/); for a trial run with a bare key, unset SYNC_STATE_TABLE`,
      );
    }
    if (!configuredTenants(settings).has(tenant)) {
      throw new ConfigurationError(
        `unknown tenant '${tenant}': it is not DEFAULT_TENANT, nor in TENANT_POLICIES or SHOP_TENANTS (set TENANT_SECRET_PREFIX to use the deployment's tenants); ${NOTHING_DONE}`,
      );
    }
    const given = await givenKeyOf(secretId, settings);
    if (!given)
      throw new UsageError('a Klaviyo private key is needed: set KLAVIYO_API_KEY or pass --secret-id');
    return given;
  }
  const tenantSecretId = klaviyoKeySecretId(prefix, tenant);
  const tenantSecret = await withSecrets((client) => readTenantSecret(client, tenantSecretId)).then(
    (secret) => secret,
    (error: unknown) => {
      if (error instanceof PermanentError && error.reason === 'tenant_secret_missing') {
        throw new ConfigurationError(
          `unknown tenant '${tenant}': there is no secret ${tenantSecretId} (TENANT_SECRET_PREFIX + tenant + /klaviyo); ${NOTHING_DONE}`,
        );
      }
      throw error;
    },
  );
  const tenantKey = tenantSecret.klaviyoPrivateKey;
  const given = secretId === tenantSecretId ? undefined : await givenKeyOf(secretId, settings);
  if (given && given.apiKey !== tenantKey) {
    throw new ConfigurationError(
      `the Klaviyo key given (${given.source}, key ${keyFingerprint(given.apiKey)}) is not tenant ${tenant}'s (secret ${tenantSecretId} holds key ${keyFingerprint(tenantKey)}): leave it out to use the tenant's key, or name the right --tenant; ${NOTHING_DONE}`,
    );
  }
  return {
    apiKey: tenantKey,
    source: `secret ${tenantSecretId}`,
    ...(tenantSecret.identifierKey && { identifierKey: tenantSecret.identifierKey }),
  };
}

/** The key given on the command line or in the environment: `--secret-id` (a secret's full id) wins over KLAVIYO_API_KEY. */
async function givenKeyOf(
  secretId: string | undefined,
  settings: CliSettings,
): Promise<KlaviyoKey | undefined> {
  if (secretId) {
    const secret = await withSecrets((client) => readTenantSecret(client, secretId));
    return {
      apiKey: secret.klaviyoPrivateKey,
      source: `secret ${secretId}`,
      ...(secret.identifierKey && { identifierKey: secret.identifierKey }),
    };
  }
  return settings.KLAVIYO_API_KEY
    ? { apiKey: settings.KLAVIYO_API_KEY, source: 'KLAVIYO_API_KEY' }
    : undefined;
}

async function withSecrets<T>(use: (client: SecretsManagerClient) => Promise<T>): Promise<T> {
  const client = new SecretsManagerClient({});
  try {
    return await use(client);
  } finally {
    client.destroy();
  }
}

/** Klaviyo refused the key itself (revoked, wrong account, missing scope): no row can succeed. */
export const isKeyRefused = (error: unknown) =>
  error instanceof KlaviyoApiError && (error.status === 401 || error.status === 403);
