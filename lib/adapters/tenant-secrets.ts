import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as z from 'zod';
import { TENANT_NAME } from '../config.js';
import { PermanentError, TransientError } from '../errors.js';
import type { KlaviyoKeySecret, TenantSecrets, WebhookSecret, WebhookSecrets } from '../ports.js';
import { describeIssues } from '../validation.js';

/**
 * Two secrets per tenant, so that each function reads only what it uses (infra/iam.yml grants
 * them apart): the internet-facing intakes the webhook secrets, the worker the Klaviyo key.
 * - `<prefix><tenant>/webhook`: `{"shopifyWebhookSecrets": [...], "erpWebhookSecrets": ["whsec_…"]}`
 * - `<prefix><tenant>/klaviyo`: `{"klaviyoPrivateKey": "pk_…"}`
 */
export const webhookSecretId = (prefix: string, tenant: string) => `${prefix}${tenant}/webhook`;
export const klaviyoKeySecretId = (prefix: string, tenant: string) => `${prefix}${tenant}/klaviyo`;

/** Validated, so a malformed secret is named, not guessed at. */
const webhookSecretSchema = z.strictObject({
  shopifyWebhookSecrets: z.array(z.string().min(1)).default([]),
  /** Standard Webhooks secrets (`whsec_…`) for the ERP endpoint; several during a rotation. */
  erpWebhookSecrets: z.array(z.string().startsWith('whsec_')).default([]),
}) satisfies z.ZodType<WebhookSecret>;

const klaviyoKeySecretSchema = z.strictObject({
  klaviyoPrivateKey: z
    .string()
    .startsWith('pk_', 'must be a Klaviyo private key (pk_…); public keys cannot change identifiers'),
  /** Keys the digests of emails and phones at rest (lib/privacy); optional: else derived from the Klaviyo key. */
  identifierKey: z
    .string()
    .min(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)')
    .optional(),
}) satisfies z.ZodType<KlaviyoKeySecret>;

export interface TenantSecretsOptions {
  /** Secret ids of tenant T start with `${prefix}${T}/` (lib/config.ts: the prefix ends in `/`). */
  prefix: string;
  /** How long a value is reused before Secrets Manager is asked again: rotations show up within it. */
  cacheTtlSeconds: number;
  /**
   * Least time between two reads that bypass the cache. A request that fails to verify asks for a
   * fresh read (a rotation may have added a secret), so without this bound every forged request
   * would be a Secrets Manager call.
   */
  minFreshIntervalSeconds: number;
  /** How many tenants without a secret are remembered at most (default MAX_REMEMBERED_MISSING). */
  maxRememberedMissing?: number;
  client?: SecretsManagerClient;
}

/**
 * How long a tenant without a secret is remembered as such. The tenant comes from a request (the
 * ERP path), so without this anyone could make every request a Secrets Manager call; short, so a
 * newly created tenant is served within a minute.
 */
const MISSING_TENANT_TTL_MS = 60_000;
/** How many such tenants are remembered at most: names are the caller's, memory is ours. */
export const MAX_REMEMBERED_MISSING = 1_000;

/** The tenants' webhook secrets, as the intakes read them (cached across warm invocations). */
export function createWebhookSecrets(options: TenantSecretsOptions): WebhookSecrets {
  return createSecretStore(options, webhookSecretId, webhookSecretSchema);
}

/** The tenants' Klaviyo keys, as the worker reads them (cached across warm invocations). */
export function createKlaviyoKeys(options: TenantSecretsOptions): TenantSecrets<KlaviyoKeySecret> {
  return createSecretStore(options, klaviyoKeySecretId, klaviyoKeySecretSchema);
}

/** One tenant's Klaviyo key secret by its full id (`<prefix><tenant>/klaviyo`), read once (the CLI's `--secret-id`). */
export function readTenantSecret(client: SecretsManagerClient, secretId: string): Promise<KlaviyoKeySecret> {
  return fetchSecret(new SecretsProvider({ awsSdkV3Client: client }), secretId, klaviyoKeySecretSchema, {
    forceFetch: true,
  });
}

/** One tenant's webhook secret by its full id (`<prefix><tenant>/webhook`), read once (doctor). */
export function readWebhookSecret(client: SecretsManagerClient, secretId: string): Promise<WebhookSecret> {
  return fetchSecret(new SecretsProvider({ awsSdkV3Client: client }), secretId, webhookSecretSchema, {
    forceFetch: true,
  });
}

function createSecretStore<T>(
  options: TenantSecretsOptions,
  secretIdOf: (prefix: string, tenant: string) => string,
  schema: z.ZodType<T>,
): TenantSecrets<T> {
  const provider = new SecretsProvider({ awsSdkV3Client: options.client ?? new SecretsManagerClient({}) });
  const missing = new BoundedMap<string, { until: number; error: PermanentError }>(
    options.maxRememberedMissing ?? MAX_REMEMBERED_MISSING,
  );
  // Booked only for secrets that exist (a fresh read follows a cached one that succeeded).
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
      // A name no tenant can have is not worth a call: Secrets Manager would refuse it anyway.
      if (!TENANT_NAME.test(tenant)) {
        throw new PermanentError('tenant_secret_missing', `No tenant is named ${tenant.slice(0, 80)}`);
      }
      const secretId = secretIdOf(options.prefix, tenant);
      const known = missing.get(secretId);
      if (known && known.until > Date.now()) throw known.error;
      try {
        return await fetchSecret(provider, secretId, schema, {
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

async function fetchSecret<T>(
  provider: SecretsProvider,
  secretId: string,
  schema: z.ZodType<T>,
  caching: { maxAge?: number; forceFetch: boolean },
): Promise<T> {
  let value: unknown;
  try {
    value = await provider.get(secretId, { ...caching, transform: 'json' });
  } catch (error) {
    throw classify(error, secretId);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new PermanentError(
      'tenant_secret_invalid',
      `Secret ${secretId} is malformed: ${describeIssues(parsed.error)}`,
    );
  }
  return parsed.data;
}

function classify(error: unknown, secretId: string) {
  const name = findErrorName(error);
  // ValidationException: a name Secrets Manager cannot hold (too long): no such secret either.
  if (name === 'ResourceNotFoundException' || name === 'ValidationException') {
    return new PermanentError('tenant_secret_missing', `Secret ${secretId} does not exist`, { cause: error });
  }
  if (name === 'TransformParameterError') {
    // Not JSON. No cause: the parser's message quotes the secret's first characters, and logs
    // print an error's causes.
    return new PermanentError('tenant_secret_unreadable', `Secret ${secretId} cannot be read: not JSON`);
  }
  if (name === 'AccessDeniedException' || name === 'DecryptionFailure') {
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

/** A Map that forgets its least recently used entry beyond `maxSize` entries. */
class BoundedMap<K, V> {
  readonly #entries = new Map<K, V>();
  constructor(readonly maxSize: number) {}

  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V) {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.maxSize) this.#entries.delete(this.#entries.keys().next().value as K);
  }

  get size() {
    return this.#entries.size;
  }
}
