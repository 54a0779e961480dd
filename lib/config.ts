import * as z from 'zod';
import { ConfigurationError } from './errors.js';
import { defaultPolicies, type Policies } from './policies.js';
import { describeIssues } from './validation.js';

/** The Klaviyo API revision we build against; one place, overridable by KLAVIYO_REVISION. */
export const KLAVIYO_REVISION = '2026-10-15';
export const KLAVIYO_PRODUCTION_URL = 'https://a.klaviyo.com';

/**
 * Tenant names: they end secret ids and URL paths, so a safe alphabet, a letter or digit first,
 * and at most 64 characters (a name from a request path is checked before any secret is read).
 */
export const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A shop's permanent domain as Shopify sends it in its shop-domain header: `<name>.myshopify.com`. */
export const SHOP_DOMAIN = /^[a-z0-9][a-z0-9-]{0,99}\.myshopify\.com$/;
const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);
/** Loopback is all of 127.0.0.0/8, not only 127.0.0.1. */
const isLoopback = (hostname: string) =>
  LOOPBACK_HOSTS.has(hostname) || /^127(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(hostname);

/**
 * DEFAULT_TENANT is the CLI's tenant when `--tenant` is not given (cli/session.ts), and nothing
 * else: it is no function setting, so a shop not in SHOP_TENANTS is never given a tenant by it.
 */
export const defaultTenantSetting = z
  .string()
  .refine((tenant) => tenant === '' || TENANT_NAME.test(tenant), 'must be a tenant name or empty')
  .default('default');

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Per-tenant policies, as JSON: `{"acme": {"onDuplicateProfile": "park", "dryRun": true}}`. */
const tenantPolicySchema = z
  .object({
    onMissingProfile: z.enum(['create', 'skip']).optional(),
    onDuplicateProfile: z.enum(['merge', 'park', 'skip']).optional(),
    dryRun: z.boolean().optional(),
    verifyUnchanged: z.boolean().optional(),
    /** What a customer's erasure asks of Klaviyo: nothing (default), or to delete the customer's profile. */
    onCustomerRedact: z.enum(['keep-klaviyo', 'delete-klaviyo-profile']).optional(),
  })
  .strict();

const jsonSetting = <T extends z.ZodType>(schema: T, what: string) =>
  z
    .string()
    .default('{}')
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: `must be a JSON object of ${what}` });
        return z.NEVER;
      }
    })
    .pipe(schema);

export const settingsSchema = z.object({
  IDENTITY_CHANGES_QUEUE_URL: z.url(),
  DEAD_LETTER_QUEUE_URL: z.url(),
  SYNC_STATE_TABLE: z.string().min(1),
  // The stack's exports bucket (infra/exports.yml); empty or unset: no exports.
  EXPORTS_BUCKET: z.string().optional(),
  // Ends in `/`: the IAM grants are `<prefix>*/…`, which must not reach a neighbouring prefix.
  TENANT_SECRET_PREFIX: z
    .string()
    .min(1)
    .endsWith('/', 'must end in / (e.g. klaviyo-identity-sync/prod/tenants/)')
    .default('klaviyo-identity-sync/tenants/'),
  SHOPIFY_EVENT_BUS_NAME: z
    .string()
    .regex(
      /^(aws\.partner\/shopify\.com\/\d+\/[.\-_A-Za-z0-9]+)?$/,
      'must be a Shopify partner event bus name, aws.partner/shopify.com/<app id>/<name>, or empty',
    )
    .default(''),
  SHOP_TENANTS: jsonSetting(
    z.record(z.string(), z.string().regex(TENANT_NAME, 'must be a tenant name')).superRefine((map, ctx) => {
      for (const shop of Object.keys(map).filter((key) => !SHOP_DOMAIN.test(key))) {
        ctx.addIssue({
          code: 'custom',
          message: `key ${JSON.stringify(shop)} must be a shop's <name>.myshopify.com domain, lower-case, without scheme, path or trailing dot`,
        });
      }
    }),
    'shop domain to tenant',
  ),
  TENANT_POLICIES: jsonSetting(z.record(z.string().min(1), tenantPolicySchema), 'tenant to policy'),
  CONFLICT_RETRY_ATTEMPTS: positiveInt(4),
  AUDIT_RETENTION_DAYS: positiveInt(400),
  DEFAULT_PHONE_REGION: z
    .string()
    .regex(/^[A-Z]{2}$/, 'must be an ISO 3166 alpha-2 region such as US')
    .default('US'),
  // The private key travels in its requests: https, but for a stand-in on this machine.
  KLAVIYO_BASE_URL: z
    .url()
    .refine((url) => {
      // Run on what z.url() refused too: no URL, no verdict of ours.
      const { protocol, hostname } = URL.parse(url) ?? { protocol: 'https:', hostname: '' };
      return protocol === 'https:' || (protocol === 'http:' && isLoopback(hostname));
    }, 'must be an https URL (http only for loopback: 127.0.0.0/8, localhost or [::1])')
    .default(KLAVIYO_PRODUCTION_URL),
  KLAVIYO_REVISION: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a YYYY-MM-DD revision date')
    .default(KLAVIYO_REVISION),
  KLAVIYO_TIMEOUT_MS: positiveInt(10_000),
  KLAVIYO_MAX_ATTEMPTS: positiveInt(4),
  KLAVIYO_RETRY_BUDGET_MS: positiveInt(20_000),
  KLAVIYO_QUOTA_SHARE: z.coerce
    .number()
    .gt(0, "must be a fraction of the account's rate limits, above 0")
    .max(1, "must be a fraction of the account's rate limits, at most 1")
    .default(1),
  SECRET_CACHE_TTL_SECONDS: positiveInt(300),
  // Longer: a key Klaviyo refuses (401) is read again at once, so only an unrevoked old key lingers.
  KLAVIYO_KEY_CACHE_TTL_SECONDS: positiveInt(3_600),
  SECRET_REFRESH_MIN_SECONDS: z.coerce.number().int().min(0).default(30),
  RETRY_FIRST_DELAY_SECONDS: positiveInt(30),
  // SQS hides a message for at most 12 hours.
  RETRY_MAX_DELAY_SECONDS: positiveInt(900).pipe(z.number().max(43_200, 'must be at most 43200 (12 hours)')),
  // Below the queue's 4-day retention (infra/queues.yml), or SQS would drop the change first.
  MAX_CHANGE_AGE_HOURS: z.coerce
    .number()
    .positive()
    .lt(96, "must be below the queue's retention, 96")
    .default(72),
});

export type Settings = z.output<typeof settingsSchema>;

export interface Config {
  queueUrl: string;
  deadLetterQueueUrl: string;
  syncStateTable: string;
  /** Where a customer's data exports go (Shopify's customers/data_request); undefined: data requests are parked until set. */
  exportsBucket: string | undefined;
  tenantSecretPrefix: string;
  /** Shop domain (lower-case `<name>.myshopify.com`) to tenant; a shop not in it is refused. */
  shopTenants: Record<string, string>;
  /** The partner event bus Shopify delivers to through EventBridge, if the stack takes its events. */
  shopifyEventBusName: string | undefined;
  defaultPhoneRegion: string;
  klaviyo: {
    baseUrl: string;
    revision: string;
    timeoutMs: number;
    maxAttempts: number;
    retryBudgetMs: number;
    /** The fraction of the account's per-endpoint limits this service (workers and CLI) may use. */
    quotaShare: number;
  };
  secretCacheTtlSeconds: number;
  /** How long the worker reuses a tenant's Klaviyo key secret (re-read at once when Klaviyo answers 401). */
  klaviyoKeyCacheTtlSeconds: number;
  /** Least time between two reads of a tenant secret that bypass the cache. */
  secretRefreshMinSeconds: number;
  auditRetentionDays: number;
  /** When a change that failed for now is tried again, and how long it may keep failing before it is parked. */
  retries: RetrySchedule;
  /** The policies a tenant's changes are applied under. */
  policiesFor(tenant: string): TenantPolicies;
}

export interface RetrySchedule {
  firstDelaySeconds: number;
  maxDelaySeconds: number;
  /** A change still failing this long after it was queued is parked as retries_exhausted. */
  maxChangeAgeMs: number;
}

export interface TenantPolicies extends Policies {
  dryRun: boolean;
  /** Absent: keep-klaviyo. */
  onCustomerRedact?: 'keep-klaviyo' | 'delete-klaviyo-profile';
}

/** Parses `env` against `schema` (every setting, or the ones a command needs); throws naming every culprit. */
export function parseSettings<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): z.output<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigurationError(`Invalid configuration: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}

/** Parses the environment once; a missing or malformed setting throws naming every culprit. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const s = parseSettings(settingsSchema, env);
  return {
    queueUrl: s.IDENTITY_CHANGES_QUEUE_URL,
    deadLetterQueueUrl: s.DEAD_LETTER_QUEUE_URL,
    syncStateTable: s.SYNC_STATE_TABLE,
    exportsBucket: s.EXPORTS_BUCKET || undefined,
    tenantSecretPrefix: s.TENANT_SECRET_PREFIX,
    shopTenants: s.SHOP_TENANTS,
    shopifyEventBusName: s.SHOPIFY_EVENT_BUS_NAME || undefined,
    defaultPhoneRegion: s.DEFAULT_PHONE_REGION,
    klaviyo: {
      baseUrl: s.KLAVIYO_BASE_URL.replace(/\/+$/, ''),
      revision: s.KLAVIYO_REVISION,
      timeoutMs: s.KLAVIYO_TIMEOUT_MS,
      maxAttempts: s.KLAVIYO_MAX_ATTEMPTS,
      retryBudgetMs: s.KLAVIYO_RETRY_BUDGET_MS,
      quotaShare: s.KLAVIYO_QUOTA_SHARE,
    },
    secretCacheTtlSeconds: s.SECRET_CACHE_TTL_SECONDS,
    klaviyoKeyCacheTtlSeconds: s.KLAVIYO_KEY_CACHE_TTL_SECONDS,
    secretRefreshMinSeconds: s.SECRET_REFRESH_MIN_SECONDS,
    auditRetentionDays: s.AUDIT_RETENTION_DAYS,
    retries: {
      firstDelaySeconds: s.RETRY_FIRST_DELAY_SECONDS,
      maxDelaySeconds: s.RETRY_MAX_DELAY_SECONDS,
      maxChangeAgeMs: s.MAX_CHANGE_AGE_HOURS * 3_600_000,
    },
    policiesFor: policiesFrom(s),
  };
}

/** Each tenant's policies: the defaults, then CONFLICT_RETRY_ATTEMPTS, then the tenant's own. */
export const policiesFrom =
  (s: Pick<Settings, 'CONFLICT_RETRY_ATTEMPTS' | 'TENANT_POLICIES'>) =>
  (tenant: string): TenantPolicies => ({
    ...defaultPolicies,
    conflictAttempts: s.CONFLICT_RETRY_ATTEMPTS,
    dryRun: false,
    ...(Object.hasOwn(s.TENANT_POLICIES, tenant) ? s.TENANT_POLICIES[tenant] : {}),
  });

/**
 * Which tenant a shop belongs to: SHOP_TENANTS's, or none. There is no fallback: every shop that
 * installs the app signs with the same client secret, so an unmapped shop is anyone's dev store.
 */
export function tenantForShop(
  config: Pick<Config, 'shopTenants'>,
  shopDomain: string | undefined,
): string | undefined {
  // Own keys only: a shop domain such as `constructor` must not find Object's prototype.
  const shop = shopDomain?.toLowerCase();
  return shop && Object.hasOwn(config.shopTenants, shop) ? config.shopTenants[shop] : undefined;
}
