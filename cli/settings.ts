import { z } from 'zod';
import { defaultTenantSetting, parseSettings, settingsSchema } from '../lib/config.js';
import { UsageError } from './io.js';

/**
 * What the CLI reads from the environment: the service's settings it needs, with the service's
 * defaults and checks. SYNC_STATE_TABLE is optional here. AWS SDK clients read their own
 * settings (AWS_REGION, credentials, AWS_ENDPOINT_URL_*) from process.env, as everywhere.
 */
/** The service's check of TENANT_SECRET_PREFIX (it ends in /), and its default. */
const SECRET_PREFIX = settingsSchema.shape.TENANT_SECRET_PREFIX.unwrap();
export const SERVICE_SECRET_PREFIX: string = settingsSchema.shape.TENANT_SECRET_PREFIX.parse(undefined);

/** A URL, or unset (empty is unset, as the commands have always read it). */
const optionalUrl = z
  .url()
  .optional()
  .or(z.literal('').transform(() => undefined));

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
      .transform((prefix) => prefix || undefined)
      .pipe(SECRET_PREFIX.optional()),
    KLAVIYO_API_KEY: z.string().startsWith('pk_', 'must be a Klaviyo private key (pk_…)').optional(),
    // Where the stack's parts are, for the commands that read them (a flag may name them instead):
    // each such command says which it is missing.
    IDENTITY_CHANGES_QUEUE_URL: optionalUrl,
    DEAD_LETTER_QUEUE_URL: optionalUrl,
    SHOPIFY_EVENT_FAILURES_QUEUE_URL: optionalUrl,
    SHOPIFY_WEBHOOK_URL: optionalUrl,
  });

export type CliSettings = z.output<typeof cliSettingsSchema>;

export const cliSettings = (env: Record<string, string | undefined>): CliSettings =>
  parseSettings(cliSettingsSchema, env);

export function tenantOf(flag: string | undefined, settings: CliSettings): string {
  const tenant = flag ?? settings.DEFAULT_TENANT;
  if (!tenant) throw new UsageError('--tenant is required when DEFAULT_TENANT is empty');
  return tenant;
}

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
