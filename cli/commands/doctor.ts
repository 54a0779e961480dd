import { klaviyoKeySecretId, webhookSecretId } from '../../lib/adapters/tenant-secrets.js';
import { commandLine } from '../command-line.js';
import { runChecks } from '../doctor/checks.js';
import { formatDoctorReport } from '../doctor/report.js';
import { EXIT_ATTENTION, EXIT_OK } from '../io.js';
import { cliSettings, SERVICE_SECRET_PREFIX, tenantOf } from '../settings.js';

const USAGE = `Usage: identity-sync doctor [--tenant T] [--secret-id ID] [--queue-url URL]
                            [--dead-letter-queue-url URL] [--table NAME] [--webhook-url URL]

Checks that a deployed stack (or the local one) is ready for tenant T, one line per check, and
says what to do about each that fails:
  tenant secret      TENANT_SECRET_PREFIX + T + /klaviyo (or --secret-id) exists and parses
  webhook secret     TENANT_SECRET_PREFIX + T + /webhook exists and parses
  Klaviyo key        the secret's key is accepted and can read profiles (one GET /api/profiles)
  queue              the identity changes queue answers (GetQueueAttributes)
  dead-letter queue  the dead-letter queue answers, and how much is parked on it
  table              the state table answers (DescribeTable)
  webhook            the Shopify webhook URL answers an unsigned delivery with 401
Nothing is written anywhere.
  --tenant T                   the tenant (default: DEFAULT_TENANT)
  --secret-id ID               the Klaviyo key secret's full id (default: TENANT_SECRET_PREFIX + T + /klaviyo)
  --queue-url URL              default: IDENTITY_CHANGES_QUEUE_URL
  --dead-letter-queue-url URL  default: DEAD_LETTER_QUEUE_URL
  --table NAME                 default: SYNC_STATE_TABLE
  --webhook-url URL            e.g. https://<api-id>.execute-api.<region>.amazonaws.com/webhooks/shopify
                               (default: SHOPIFY_WEBHOOK_URL; without one the check is skipped)
  -h, --help                   this help
AWS region, credentials and endpoints come from the environment, as for the AWS CLI.
Exit code: 0 when no check failed, 1 when one did, 2 for usage errors.`;

/** `identity-sync doctor`: is the stack ready for this tenant? */
export const doctor = commandLine(
  USAGE,
  {
    options: {
      tenant: { type: 'string' },
      'secret-id': { type: 'string' },
      'queue-url': { type: 'string' },
      'dead-letter-queue-url': { type: 'string' },
      table: { type: 'string' },
      'webhook-url': { type: 'string' },
    },
  },
  async ({ values }, io) => {
    const settings = cliSettings(io.env);
    const prefix = settings.TENANT_SECRET_PREFIX ?? SERVICE_SECRET_PREFIX;
    const tenant = tenantOf(values.tenant, settings);
    const results = await runChecks(
      {
        secretId: values['secret-id'] ?? klaviyoKeySecretId(prefix, tenant),
        webhookSecretId: webhookSecretId(prefix, tenant),
        queueUrl: values['queue-url'] ?? settings.IDENTITY_CHANGES_QUEUE_URL,
        deadLetterQueueUrl: values['dead-letter-queue-url'] ?? settings.DEAD_LETTER_QUEUE_URL,
        table: values.table ?? settings.SYNC_STATE_TABLE,
        webhookUrl: values['webhook-url'] ?? settings.SHOPIFY_WEBHOOK_URL,
      },
      settings,
    );
    io.stdout.write(formatDoctorReport(tenant, results));
    return results.some((result) => result.status === 'FAIL') ? EXIT_ATTENTION : EXIT_OK;
  },
);
