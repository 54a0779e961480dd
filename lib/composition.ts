import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoCustomerRecords } from './adapters/dynamo-customer-records.js';
import { createDynamoRequestQuota } from './adapters/dynamo-request-quota.js';
import { createDynamoSeenBodies } from './adapters/dynamo-seen-bodies.js';
import { createDynamoAuditLog, createDynamoSyncState } from './adapters/dynamo-sync-state.js';
import { createSqsParkedLetters } from './adapters/sqs-parked-letters.js';
import { createSqsChangeQueue, createSqsDeadLetters, createSqsRedeliveries } from './adapters/sqs-queues.js';
import {
  createKlaviyoKeys,
  createWebhookSecrets,
  type TenantSecretsOptions,
} from './adapters/tenant-secrets.js';
import type { Config } from './config.js';
import { erpWebhookSource } from './erp/receive-webhook.js';
import { type IntakeDependencies, receiveWebhook, type WebhookIntake } from './intake/receive.js';
import { REPLAY_WINDOW_SECONDS, type WebhookSource } from './intake/source.js';
import { limitsOf, shareOf } from './klaviyo/limits.js';
import { maskIdentifiersInText } from './observability/mask.js';
import {
  telemetry as defaultTelemetry,
  PARKED_REASON,
  parkedReasonDimension,
  type Telemetry,
} from './observability/telemetry.js';
import type {
  DeadLetters,
  ExportDestination,
  IdentifierKeyForTenant,
  KlaviyoForTenant,
  KlaviyoKeySecret,
  RequestGate,
  TenantSecrets,
} from './ports.js';
import { identifierKeyOf } from './privacy/identifier-digest.js';
import { type ShopifyEventIntake, shopifyEventBridgeIntake } from './shopify/eventbridge.js';
import { shopifyWebhookSource } from './shopify/receive-webhook.js';
import type { WorkerDependencies } from './sync/handle-message.js';

/**
 * Wires the core to the real adapters. AWS SDK clients take endpoints from the standard
 * environment (AWS_ENDPOINT_URL_SQS, …), which is all the local stack changes.
 */
const systemClock = () => new Date();

const secretsOptions = (config: Config): TenantSecretsOptions => ({
  prefix: config.tenantSecretPrefix,
  cacheTtlSeconds: config.secretCacheTtlSeconds,
  minFreshIntervalSeconds: config.secretRefreshMinSeconds,
});

/** The dead-letter queue, each letter counted by reason (the dashboard's parked changes). */
function countedDeadLetters(sqs: SQSClient, config: Config, telemetry: Telemetry): DeadLetters {
  const deadLetters = createSqsDeadLetters(sqs, config.deadLetterQueueUrl);
  return {
    async park(letter, from) {
      await deadLetters.park(letter, from);
      telemetry.count('Parked', 1, { [PARKED_REASON]: parkedReasonDimension(letter.reason) });
    },
  };
}

/** What every intake needs: the changes queue and the dead-letter queue. */
function queueIntake(config: Config, telemetry: Telemetry): Omit<IntakeDependencies, 'secrets'> {
  const sqs = new SQSClient({});
  return {
    queue: createSqsChangeQueue(sqs, config.queueUrl),
    deadLetters: countedDeadLetters(sqs, config, telemetry),
    telemetry,
    clock: systemClock,
  };
}

/** A signed webhook's intake: the queues, and the webhook secrets (only) its signatures are checked with. */
function intakeOf(
  source: WebhookSource,
  config: Config,
  telemetry: Telemetry,
  more: Partial<IntakeDependencies> = {},
): WebhookIntake {
  const deps = {
    ...queueIntake(config, telemetry),
    secrets: createWebhookSecrets(secretsOptions(config)),
    ...more,
  };
  return (request) => receiveWebhook(source, request, deps);
}

/** Shopify signs only the body: its replays under fresh delivery ids are told by the body's digest. */
export function createShopifyIntake(config: Config, telemetry: Telemetry = defaultTelemetry): WebhookIntake {
  const seenBodies = createDynamoSeenBodies(
    new DynamoDBClient({}),
    config.syncStateTable,
    REPLAY_WINDOW_SECONDS,
  );
  return intakeOf(shopifyWebhookSource(config), config, telemetry, { seenBodies });
}

/** Shopify's deliveries through Amazon EventBridge: the Shopify intake, with no secret to read. */
export function createShopifyEventBridgeIntake(
  config: Config,
  telemetry: Telemetry = defaultTelemetry,
): ShopifyEventIntake {
  return shopifyEventBridgeIntake(config, queueIntake(config, telemetry));
}

export function createErpIntake(config: Config, telemetry: Telemetry = defaultTelemetry): WebhookIntake {
  return intakeOf(erpWebhookSource(config), config, telemetry);
}

/** Klaviyo clients built from each tenant's private key, as read (and cached) from its Klaviyo key secret. */
export function klaviyoForTenants(
  config: Config,
  secrets: TenantSecrets<KlaviyoKeySecret>,
  telemetry: Telemetry,
  gateFor?: (tenant: string) => RequestGate,
): KlaviyoForTenant {
  return async (tenant, options) => {
    const { klaviyoPrivateKey } = await secrets.get(tenant, options);
    // Imported on first use: the intakes' bundles then leave out the client (and its
    // bulk and scan code), and a worker whose batch needs no Klaviyo request never loads it.
    const { createKlaviyoClient } = await import('./klaviyo/client.js');
    return createKlaviyoClient({
      pacer: gateFor?.(tenant),
      baseUrl: config.klaviyo.baseUrl,
      apiKey: klaviyoPrivateKey,
      revision: config.klaviyo.revision,
      timeoutMs: config.klaviyo.timeoutMs,
      retry: { maxAttempts: config.klaviyo.maxAttempts, budgetMs: config.klaviyo.retryBudgetMs },
      onResponse: ({ status }) => {
        telemetry.count('KlaviyoRequest');
        if (status === 429) telemetry.count('KlaviyoThrottled');
      },
      onRetry: ({ method, path, attempt, delayMs, error }) => {
        telemetry.count('KlaviyoRetried');
        // Without the query, and the error's text masked: lookups carry customers' emails and phones.
        telemetry.log.warn('Klaviyo request retried', {
          tenant,
          method,
          path: path.split('?')[0],
          attempt,
          delayMs,
          error: maskIdentifiersInText(error.message),
        });
      },
    });
  };
}

/** Each tenant's key for identifiers at rest, from the same (cached) secret as its Klaviyo key. */
export const identifierKeysOf =
  (secrets: TenantSecrets): IdentifierKeyForTenant =>
  async (tenant) =>
    identifierKeyOf(await secrets.get(tenant));

/**
 * Customers' data exports, to the private bucket EXPORTS_BUCKET names. The S3 client is loaded on
 * the first export: data requests are rare, and the bundles need not start with it.
 */
function exportsTo(bucket: string): ExportDestination {
  let destination: Promise<ExportDestination> | undefined;
  return {
    async put(key, json) {
      destination ??= Promise.all([
        import('@aws-sdk/client-s3'),
        import('./adapters/s3-export-destination.js'),
      ]).then(([{ S3Client }, { createS3ExportDestination }]) =>
        createS3ExportDestination(new S3Client({}), bucket),
      );
      return (await destination).put(key, json);
    },
  };
}

export function createSyncWorker(
  config: Config,
  telemetry: Telemetry = defaultTelemetry,
  /** When the current invocation must stop waiting for Klaviyo quota (epoch ms). */
  quotaDeadline?: () => number | undefined,
): WorkerDependencies {
  const dynamodb = new DynamoDBClient({});
  // One cache of the tenants' Klaviyo key secrets, for the Klaviyo key and the identifier key alike.
  const klaviyoKeys = createKlaviyoKeys({
    ...secretsOptions(config),
    cacheTtlSeconds: config.klaviyoKeyCacheTtlSeconds,
  });
  const sqs = new SQSClient({});
  // One gate per tenant (each is its own Klaviyo account), shared by every instance through the table.
  const gates = new Map<string, RequestGate>();
  const gateFor = (tenant: string) => {
    const gate =
      gates.get(tenant) ??
      createDynamoRequestQuota({
        client: dynamodb,
        tableName: config.syncStateTable,
        account: tenant,
        limitsOf: (endpoint) => shareOf(limitsOf(endpoint), config.klaviyo.quotaShare),
        deadline: quotaDeadline,
      });
    gates.set(tenant, gate);
    return gate;
  };
  return {
    state: createDynamoSyncState(dynamodb, config.syncStateTable),
    audit: createDynamoAuditLog(dynamodb, config.syncStateTable, config.auditRetentionDays),
    policiesFor: config.policiesFor,
    klaviyoFor: klaviyoForTenants(config, klaviyoKeys, telemetry, gateFor),
    identifierKeyFor: identifierKeysOf(klaviyoKeys),
    deadLetters: countedDeadLetters(sqs, config, telemetry),
    redeliveries: createSqsRedeliveries(sqs, config.queueUrl),
    retries: config.retries,
    compliance: {
      records: createDynamoCustomerRecords(dynamodb, config.syncStateTable),
      letters: createSqsParkedLetters(sqs, config.deadLetterQueueUrl),
      exports: config.exportsBucket ? exportsTo(config.exportsBucket) : undefined,
    },
    telemetry,
    clock: systemClock,
  };
}
