import { createHash } from 'node:crypto';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { klaviyoKeySecretId, readTenantSecret } from '../lib/adapters/tenant-secrets.js';
import { ConfigurationError, PermanentError } from '../lib/errors.js';
import { KlaviyoApiError } from '../lib/klaviyo/errors.js';
import { identifierKeyOf } from '../lib/privacy/identifier-digest.js';
import { UsageError } from './io.js';
import { type CliSettings, configuredTenants } from './settings.js';

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
