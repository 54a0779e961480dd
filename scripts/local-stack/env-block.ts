import { DEMO_TENANT } from './demo-tenant.js';
import { EVENTBRIDGE_FUNCTION_NAME, invocationUrl } from './offline.js';

/**
 * The environment the `identity-sync` CLI needs to talk to the local stack, printed by `npm start`
 * as a block to paste into another shell: then every command finds the stack's queues, table,
 * secrets and endpoints (`send` included), and the default tenant is the stack's.
 */

/** What the CLI reads, taken from the peers' environment (dummy credentials, loopback endpoints). */
const FROM_THE_PEERS = [
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_ENDPOINT_URL_SQS',
  'AWS_ENDPOINT_URL_DYNAMODB',
  'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  'AWS_ENDPOINT_URL_S3',
  'SYNC_STATE_TABLE',
  'EXPORTS_BUCKET',
  'IDENTITY_CHANGES_QUEUE_URL',
  'DEAD_LETTER_QUEUE_URL',
  'SHOPIFY_EVENT_FAILURES_QUEUE_URL',
  'TENANT_SECRET_PREFIX',
  'DEFAULT_TENANT',
  'KLAVIYO_BASE_URL',
] as const;

export interface CliEnvironmentExtras {
  /** Where `doctor` checks that the webhook answers; known once serverless-offline runs. */
  SHOPIFY_WEBHOOK_URL?: string;
  /** For `apply` and `bind`: only the sandbox's demo key, never a real one (it is a credential). */
  KLAVIYO_API_KEY?: string;
  /** `send`'s base URL: the HTTP API (serverless-offline). */
  IDENTITY_SYNC_API_URL?: string;
  /** `send --as eventbridge`: the shopify-eventbridge function's invocation URL (serverless-offline). */
  SHOPIFY_EVENTBRIDGE_INVOKE_URL?: string;
  /** `send`'s signing secrets and shop: the demo tenant's (made up, not credentials). */
  ERP_WEBHOOK_SECRET?: string;
  SHOPIFY_WEBHOOK_SECRET?: string;
  SHOPIFY_SHOP_DOMAIN?: string;
}

/**
 * What `npm start` adds for the CLI once serverless-offline runs: where the API and the
 * EventBridge function are, the demo tenant's (made-up) secrets and shop, and the sandbox's key.
 */
export function localStackExtras(offline: { webhookUrl: string; lambdaUrl: string }, withSandbox: boolean) {
  return {
    SHOPIFY_WEBHOOK_URL: offline.webhookUrl,
    KLAVIYO_API_KEY: withSandbox ? DEMO_TENANT.klaviyoPrivateKey : undefined,
    IDENTITY_SYNC_API_URL: new URL(offline.webhookUrl).origin,
    SHOPIFY_EVENTBRIDGE_INVOKE_URL: invocationUrl(offline.lambdaUrl, EVENTBRIDGE_FUNCTION_NAME),
    ERP_WEBHOOK_SECRET: DEMO_TENANT.erpWebhookSecret,
    SHOPIFY_WEBHOOK_SECRET: DEMO_TENANT.shopifyWebhookSecret,
    SHOPIFY_SHOP_DOMAIN: DEMO_TENANT.shopDomain,
  } satisfies CliEnvironmentExtras;
}

export function cliEnvironment(
  peersEnv: Record<string, string>,
  extras: CliEnvironmentExtras = {},
): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const name of FROM_THE_PEERS) {
    const value = peersEnv[name];
    if (value === undefined) throw new Error(`the local peers' environment has no ${name}`);
    variables[name] = value;
  }
  for (const [name, value] of Object.entries(extras)) if (value) variables[name] = value;
  return variables;
}

export type Shell = 'posix' | 'powershell';

/** One assignment a line, single-quoted so nothing in a value is expanded. */
export function environmentBlock(variables: Record<string, string>, shell: Shell = 'posix'): string {
  const line =
    shell === 'posix'
      ? (name: string, value: string) => `export ${name}='${value.replaceAll("'", `'\\''`)}'`
      : (name: string, value: string) => `$env:${name} = '${value.replaceAll("'", "''")}'`;
  return Object.entries(variables)
    .map(([name, value]) => line(name, value))
    .join('\n');
}

export const shellOf = (platform: NodeJS.Platform = process.platform): Shell =>
  platform === 'win32' ? 'powershell' : 'posix';
