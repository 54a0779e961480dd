import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as z from 'zod';
import { PermanentError, TransientError } from '../errors.js';
import type { TenantSecret, TenantSecrets } from '../ports.js';
import { describeIssues } from '../validation.js';

/** One secret per tenant, JSON; validated so a malformed secret is named, not guessed at. */
const tenantSecretSchema = z.object({
  klaviyoPrivateKey: z
    .string()
    .startsWith('pk_', 'must be a Klaviyo private key (pk_…); public keys cannot change identifiers'),
  shopifyWebhookSecrets: z.array(z.string().min(1)).default([]),
  /** Standard Webhooks secrets (`whsec_…`) for the ERP endpoint; several during a rotation. */
  erpWebhookSecrets: z.array(z.string().startsWith('whsec_')).default([]),
  /** Keys the digests of emails and phones at rest (lib/privacy); optional: else derived from the Klaviyo key. */
  identifierKey: z
    .string()
    .min(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)')
    .optional(),
});

export interface TenantSecretsOptions {
  /** Secret id of tenant T is `${prefix}${T}`. */
  prefix: string;
  /** How long a value is reused before Secrets Manager is asked again: rotations show up within it. */
  cacheTtlSeconds: number;
  /**
   * Least time between two reads that bypass the cache. A request that fails to verify asks for a
   * fresh read (a rotation may have added a secret), so without this bound every forged request
   * would be a Secrets Manager call.
   */
  minFreshIntervalSeconds: number;
  client?: SecretsManagerClient;
}

/**
 * How long a tenant without a secret is remembered as such. The tenant comes from a request (the
 * ERP path), so without this anyone could make every request a Secrets Manager call; short, so a
 * newly created tenant is served within a minute.
 */
const MISSING_TENANT_TTL_MS = 60_000;

/** Tenant secrets from AWS Secrets Manager, cached across invocations of a warm Lambda. */
export function createTenantSecrets(options: TenantSecretsOptions): TenantSecrets {
  const provider = new SecretsProvider({ awsSdkV3Client: options.client ?? new SecretsManagerClient({}) });
  const missing = new Map<string, { until: number; error: PermanentError }>();
  const lastFreshRead = new Map<string, number>();
  /** Whether a cache-bypassing read of `secretId` may happen now; if so, it is booked. */
  const mayReadFresh = (secretId: string) => {
    const now = Date.now();
    const last = lastFreshRead.get(secretId) ?? Number.NEGATIVE_INFINITY;
    if (now - last < options.minFreshIntervalSeconds * 1000) return false;
    lastFreshRead.set(secretId, now);
    return true;
  };
  return {
    async get(tenant, { fresh = false } = {}) {
      const secretId = `${options.prefix}${tenant}`;
      const known = missing.get(secretId);
      if (known && known.until > Date.now()) throw known.error;
      try {
        return await fetchTenantSecret(provider, secretId, {
          maxAge: options.cacheTtlSeconds,
          forceFetch: fresh && mayReadFresh(secretId),
        });
      } catch (error) {
        if (error instanceof PermanentError && error.reason === 'tenant_secret_missing') {
          missing.set(secretId, { until: Date.now() + MISSING_TENANT_TTL_MS, error });
        }
        throw error;
      }
    },
  };
}

/** One tenant secret by its full id, read once (the CLI's `--secret-id`). */
export function readTenantSecret(client: SecretsManagerClient, secretId: string): Promise<TenantSecret> {
  return fetchTenantSecret(new SecretsProvider({ awsSdkV3Client: client }), secretId, { forceFetch: true });
}

async function fetchTenantSecret(
  provider: SecretsProvider,
  secretId: string,
  caching: { maxAge?: number; forceFetch: boolean },
): Promise<TenantSecret> {
  let value: unknown;
  try {
    value = await provider.get(secretId, { ...caching, transform: 'json' });
  } catch (error) {
    throw classify(error, secretId);
  }
  const parsed = tenantSecretSchema.safeParse(value);
  if (!parsed.success) {
    throw new PermanentError(
      'tenant_secret_invalid',
      `Secret ${secretId} is malformed: ${describeIssues(parsed.error)}`,
    );
  }
  return parsed.data satisfies TenantSecret;
}

function classify(error: unknown, secretId: string) {
  const name = findErrorName(error);
  if (name === 'ResourceNotFoundException') {
    return new PermanentError('tenant_secret_missing', `Secret ${secretId} does not exist`, { cause: error });
  }
  if (
    name === 'TransformParameterError' ||
    name === 'AccessDeniedException' ||
    name === 'DecryptionFailure'
  ) {
    return new PermanentError('tenant_secret_unreadable', `Secret ${secretId} cannot be read: ${name}`, {
      cause: error,
    });
  }
  return new TransientError('tenant_secret_unavailable', `Secrets Manager failed for ${secretId}`, {
    cause: error,
  });
}

/** Powertools wraps SDK errors (GetParameterError); the SDK's own name sits in the cause. */
function findErrorName(error: unknown): string | undefined {
  for (let current = error as { name?: string; cause?: unknown } | undefined; current; ) {
    if (current.name && current.name !== 'GetParameterError' && current.name !== 'Error') return current.name;
    current = current.cause as typeof current;
  }
  return undefined;
}
