import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoRequestQuota } from './adapters/dynamo-request-quota.js';
import { createDynamoAuditLog, createDynamoSyncState } from './adapters/dynamo-sync-state.js';
import { createSqsChangeQueue, createSqsDeadLetters, createSqsRedeliveries } from './adapters/sqs-queues.js';
import { createTenantSecrets } from './adapters/tenant-secrets.js';
import type { Config } from './config.js';
import { erpWebhookSource } from './erp/receive-webhook.js';
import { type IntakeDependencies, receiveWebhook, type WebhookIntake } from './intake/receive.js';
import type { WebhookSource } from './intake/source.js';
import { limitsOf, shareOf } from './klaviyo/limits.js';
import { maskIdentifiersInText } from './observability/mask.js';
import {
  telemetry as defaultTelemetry,
  PARKED_REASON,
  parkedReasonDimension,
  type Telemetry,
} from './observability/telemetry.js';
import type { DeadLetters, KlaviyoForTenant, RequestGate, TenantSecrets } from './ports.js';
import { type ShopifyEventIntake, shopifyEventBridgeIntake } from './shopify/eventbridge.js';
import { shopifyWebhookSource } from './shopify/receive-webhook.js';
import type { BatchDependencies } from './sync/process-batch.js';

/**
 * Wires the core to the real adapters. AWS SDK clients take endpoints from the standard
 * environment (AWS_ENDPOINT_URL_SQS, …), which is all the local stack changes.
 */
const systemClock = () => new Date();

function tenantSecretsFor(config: Config): TenantSecrets {
  return createTenantSecrets({
    prefix: config.tenantSecretPrefix,
    cacheTtlSeconds: config.secretCacheTtlSeconds,
    minFreshIntervalSeconds: config.secretRefreshMinSeconds,
  });
}

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

/** A signed webhook's intake: the queues, and the tenant secrets its signatures are checked with. */
function intakeOf(source: WebhookSource, config: Config, telemetry: Telemetry): WebhookIntake {
  const deps = { ...queueIntake(config, telemetry), secrets: tenantSecretsFor(config) };
  return (request) => receiveWebhook(source, request, deps);
}

export function createShopifyIntake(config: Config, telemetry: Telemetry = defaultTelemetry): WebhookIntake {
  return intakeOf(shopifyWebhookSource(config), config, telemetry);
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

/** Klaviyo clients built from each tenant's private key, as read (and cached) from its secret. */
export function klaviyoForTenants(
  config: Config,
  secrets: TenantSecrets,
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

export function createSyncWorker(config: Config, telemetry: Telemetry = defaultTelemetry): BatchDependencies {
  const dynamodb = new DynamoDBClient({});
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
      });
    gates.set(tenant, gate);
    return gate;
  };
  return {
    state: createDynamoSyncState(dynamodb, config.syncStateTable),
    audit: createDynamoAuditLog(dynamodb, config.syncStateTable, config.auditRetentionDays),
    policiesFor: config.policiesFor,
    klaviyoFor: klaviyoForTenants(config, tenantSecretsFor(config), telemetry, gateFor),
    deadLetters: countedDeadLetters(sqs, config, telemetry),
    redeliveries: createSqsRedeliveries(sqs, config.queueUrl),
    retries: config.retries,
    telemetry,
    clock: systemClock,
  };
}
