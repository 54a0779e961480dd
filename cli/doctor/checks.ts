import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { approximateMessageCount } from '../../lib/adapters/sqs-queues.js';
import { readTenantSecret, readWebhookSecret } from '../../lib/adapters/tenant-secrets.js';
import { IdentitySyncError } from '../../lib/errors.js';
import { Reason } from '../../lib/reasons.js';
import { counted } from '../io.js';
import type { CliSettings } from '../settings.js';

/** Doctor's checks: each reads one part of the stack and says what it found, and what to do when it failed. */
export type CheckStatus = 'ok' | 'FAIL' | 'skip';

export interface CheckResult {
  check: string;
  status: CheckStatus;
  /** What was found; for a failure, also what to do. */
  detail: string;
}

/** Where the checks look: the tenant's secret and the stack's parts (undefined: not configured). */
export interface DoctorTargets {
  /** The tenant's Klaviyo key secret. */
  secretId: string;
  webhookSecretId: string;
  queueUrl: string | undefined;
  deadLetterQueueUrl: string | undefined;
  table: string | undefined;
  webhookUrl: string | undefined;
}

/** A request that does not answer within this long fails its check. */
const TIMEOUT_MS = 10_000;
const AWS_CLIENT_OPTIONS = {
  maxAttempts: 2,
  requestHandler: { connectionTimeout: TIMEOUT_MS / 2, requestTimeout: TIMEOUT_MS },
};

/** The secret first (the Klaviyo check needs its key), then the rest at once, reported in a fixed order. */
export async function runChecks(targets: DoctorTargets, settings: CliSettings): Promise<CheckResult[]> {
  const secrets = new SecretsManagerClient(AWS_CLIENT_OPTIONS);
  const sqs = new SQSClient(AWS_CLIENT_OPTIONS);
  const dynamodb = new DynamoDBClient(AWS_CLIENT_OPTIONS);
  try {
    const secret = await checkTenantSecret(secrets, targets.secretId);
    return [
      secret.result,
      ...(await Promise.all([
        checkWebhookSecret(secrets, targets.webhookSecretId),
        checkKlaviyo(secret.klaviyoKey, settings),
        checkQueue(sqs, 'queue', targets.queueUrl, '--queue-url or IDENTITY_CHANGES_QUEUE_URL'),
        checkQueue(
          sqs,
          'dead-letter queue',
          targets.deadLetterQueueUrl,
          '--dead-letter-queue-url or DEAD_LETTER_QUEUE_URL',
        ),
        checkTable(dynamodb, targets.table),
        checkWebhook(targets.webhookUrl),
      ])),
    ];
  } finally {
    secrets.destroy();
    sqs.destroy();
    dynamodb.destroy();
  }
}

// --- The checks (I/O) -----------------------------------------------------------------------

const ok = (check: string, detail: string): CheckResult => ({ check, status: 'ok', detail });
const fail = (check: string, detail: string): CheckResult => ({ check, status: 'FAIL', detail });
const skip = (check: string, detail: string): CheckResult => ({ check, status: 'skip', detail });

const SECRET = 'tenant secret';

async function checkTenantSecret(
  client: SecretsManagerClient,
  secretId: string,
): Promise<{ result: CheckResult; klaviyoKey?: string }> {
  try {
    const secret = await readTenantSecret(client, secretId);
    return {
      result: ok(SECRET, `${secretId} exists and parses: a Klaviyo private key`),
      klaviyoKey: secret.klaviyoPrivateKey,
    };
  } catch (error) {
    return { result: fail(SECRET, secretAdvice(error, secretId)) };
  }
}

/** The secret the webhook intakes read (they may not read the Klaviyo key's). */
async function checkWebhookSecret(client: SecretsManagerClient, secretId: string): Promise<CheckResult> {
  const check = 'webhook secret';
  try {
    const secret = await readWebhookSecret(client, secretId);
    return ok(
      check,
      `${secretId} exists and parses: ${counted(secret.shopifyWebhookSecrets.length, 'Shopify secret')}, ${counted(secret.erpWebhookSecrets.length, 'ERP secret')}`,
    );
  } catch (error) {
    return fail(check, secretAdvice(error, secretId));
  }
}

/** What a failed secret read means and what to do about it. */
export function secretAdvice(error: unknown, secretId: string): string {
  const reason = error instanceof IdentitySyncError ? error.reason : undefined;
  switch (reason) {
    case Reason.TenantSecretMissing:
      return `${secretId} does not exist: create it (README, "The tenant secret"), or point TENANT_SECRET_PREFIX or --secret-id at it (deployed, the prefix is klaviyo-identity-sync/<stage>/tenants/)`;
    case Reason.TenantSecretInvalid:
      return `${(error as Error).message}: fix the secret's JSON (…/klaviyo: klaviyoPrivateKey only; …/webhook: shopifyWebhookSecrets, erpWebhookSecrets)`;
    case Reason.TenantSecretUnreadable:
      return `${(error as Error).message}: allow secretsmanager:GetSecretValue (and kms:Decrypt for its key) to whoever runs this, and check the value is JSON`;
    default:
      return `Secrets Manager did not answer for ${secretId} (${causeOf(error)}): check AWS_REGION, the credentials and AWS_ENDPOINT_URL_SECRETS_MANAGER`;
  }
}

async function checkKlaviyo(key: string | undefined, settings: CliSettings): Promise<CheckResult> {
  const check = 'Klaviyo key';
  if (!key) return fail(check, 'not tried: the tenant secret is needed first (above)');
  const url = `${settings.KLAVIYO_BASE_URL.replace(/\/+$/, '')}/api/profiles?${new URLSearchParams({ 'page[size]': '1' })}`;
  try {
    const response = await fetch(url, {
      headers: {
        authorization: `Klaviyo-API-Key ${key}`,
        revision: settings.KLAVIYO_REVISION,
        accept: 'application/vnd.api+json',
      },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = (await response.json().catch(() => undefined)) as
      | { errors?: { detail?: string }[] }
      | undefined;
    return klaviyoVerdict(response.status, body?.errors?.[0]?.detail, settings.KLAVIYO_REVISION);
  } catch (error) {
    return fail(
      check,
      `no answer from ${settings.KLAVIYO_BASE_URL} (${causeOf(error)}): check KLAVIYO_BASE_URL and the network`,
    );
  }
}

/** What Klaviyo's answer to `GET /api/profiles?page[size]=1` says about the key. */
export function klaviyoVerdict(status: number, detail: string | undefined, revision: string): CheckResult {
  const check = 'Klaviyo key';
  const said = detail ? `: ${detail}` : '';
  if (status >= 200 && status < 300)
    return ok(check, `accepted; it read a page of profiles (revision ${revision}; writing is not tried)`);
  if (status === 401)
    return fail(
      check,
      `refused (401${said}): put a valid private key (pk_…) in the secret's klaviyoPrivateKey`,
    );
  if (status === 403)
    return fail(
      check,
      `may not read profiles (403${said}): give the key the profiles:read and profiles:write scopes`,
    );
  if (status === 429)
    return fail(
      check,
      `throttled (429): the account's profile requests are spent for now; run doctor again in a minute`,
    );
  if (status >= 500) return fail(check, `Klaviyo answered ${status}: on its side; try again later`);
  if (/revision/i.test(detail ?? ''))
    return fail(
      check,
      `revision ${revision} refused (${status}${said}): set KLAVIYO_REVISION to one Klaviyo supports`,
    );
  return fail(check, `Klaviyo answered ${status}${said}`);
}

async function checkQueue(
  sqs: SQSClient,
  check: string,
  queueUrl: string | undefined,
  setting: string,
): Promise<CheckResult> {
  if (!queueUrl)
    return fail(check, `no queue URL: pass ${setting} (README, "Deploying": the stack's resources)`);
  try {
    const messages = await approximateMessageCount(sqs, queueUrl);
    const parked = check === 'dead-letter queue' && messages > 0 ? ' (see identity-sync dead-letters)' : '';
    return ok(check, `${queueUrl} answers: about ${counted(messages, 'message')}${parked}`);
  } catch (error) {
    return fail(
      check,
      `${queueUrl} does not answer (${causeOf(error)}): check the URL (${setting}), AWS_REGION, the credentials (sqs:GetQueueAttributes) and AWS_ENDPOINT_URL_SQS`,
    );
  }
}

async function checkTable(dynamodb: DynamoDBClient, table: string | undefined): Promise<CheckResult> {
  const check = 'table';
  if (!table)
    return fail(
      check,
      'no table: pass --table or SYNC_STATE_TABLE (README, "Deploying": the stack\'s resources)',
    );
  try {
    const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: table }));
    if (Table?.TableStatus !== 'ACTIVE')
      return fail(
        check,
        `${table} is ${Table?.TableStatus ?? 'in no known state'}: wait for ACTIVE (or see the stack's events)`,
      );
    return ok(check, `${table} answers (ACTIVE)`);
  } catch (error) {
    return fail(
      check,
      `${table} does not answer (${causeOf(error)}): check the name (--table or SYNC_STATE_TABLE), AWS_REGION, the credentials (dynamodb:DescribeTable) and AWS_ENDPOINT_URL_DYNAMODB`,
    );
  }
}

async function checkWebhook(webhookUrl: string | undefined): Promise<CheckResult> {
  const check = 'webhook';
  if (!webhookUrl)
    return skip(check, 'no URL given: pass --webhook-url (osls deploy prints it) or set SHOPIFY_WEBHOOK_URL');
  try {
    // Unsigned and empty: refused before any secret is read, so it costs the stack nothing.
    const response = await fetch(webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await response.body?.cancel();
    return webhookVerdict(response.status, webhookUrl);
  } catch (error) {
    return fail(
      check,
      `no answer from ${webhookUrl} (${causeOf(error)}): check the URL and that the stack is deployed`,
    );
  }
}

/** What the webhook's answer to an unsigned, empty delivery says. */
export function webhookVerdict(status: number, webhookUrl: string): CheckResult {
  const check = 'webhook';
  if (status === 401) return ok(check, `${webhookUrl} answers an unsigned delivery with 401, as it should`);
  if (status === 404)
    return fail(
      check,
      `${webhookUrl} answered 404: no such route; the URL ends in /webhooks/shopify (osls deploy prints it)`,
    );
  if (status >= 500)
    return fail(
      check,
      `${webhookUrl} answered ${status}: the function fails; read its log (npx osls logs -f shopify-webhook --stage <stage>)`,
    );
  return fail(
    check,
    `${webhookUrl} answered ${status} to an unsigned delivery, not 401: is it this service's webhook?`,
  );
}

/** The first cause of the error chain (our errors wrap the SDK's), as one short phrase. */
export const causeOf = (error: unknown) => {
  let root = error as { name?: string; message?: string; code?: string; cause?: unknown } | undefined;
  while (root?.cause instanceof Error) root = root.cause as typeof root;
  const { name, message } = root ?? {};
  // The SDK's words for a shell with no region say nothing about what to set.
  if (/region is missing/i.test(String(message))) return 'no AWS region: set AWS_REGION, e.g. us-east-1';
  const code = (root?.cause as { code?: string } | undefined)?.code;
  return [name && name !== 'Error' ? name : undefined, code ?? message].filter(Boolean).join(': ');
};
