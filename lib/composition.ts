import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoAuditLog, createDynamoSyncState } from './adapters/dynamo-sync-state.js';
import { createSqsChangeQueue, createSqsDeadLetters } from './adapters/sqs-queues.js';
import { createTenantSecrets } from './adapters/tenant-secrets.js';
import type { Config } from './config.js';
import type { ErpIntakeDependencies } from './erp/receive-webhook.js';
import { createKlaviyoClient } from './klaviyo/client.js';
import { telemetry as defaultTelemetry, type Telemetry } from './observability/telemetry.js';
import type { KlaviyoForTenant, TenantSecrets } from './ports.js';
import type { ShopifyIntakeDependencies } from './shopify/receive-webhook.js';
import type { WorkerDependencies } from './sync/process-queued-change.js';

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

/** What every webhook intake needs: tenant secrets, the changes queue and the dead-letter queue. */
function webhookIntake(config: Config, telemetry: Telemetry) {
  const sqs = new SQSClient({});
  return {
    config,
    secrets: tenantSecretsFor(config),
    queue: createSqsChangeQueue(sqs, config.queueUrl),
    deadLetters: createSqsDeadLetters(sqs, config.deadLetterQueueUrl),
    telemetry,
    clock: systemClock,
  };
}

export function createShopifyIntake(
  config: Config,
  telemetry: Telemetry = defaultTelemetry,
): ShopifyIntakeDependencies {
  return webhookIntake(config, telemetry);
}

export function createErpIntake(
  config: Config,
  telemetry: Telemetry = defaultTelemetry,
): ErpIntakeDependencies {
  return webhookIntake(config, telemetry);
}

/** Klaviyo clients built from each tenant's private key, as read (and cached) from its secret. */
export function klaviyoForTenants(
  config: Config,
  secrets: TenantSecrets,
  telemetry: Telemetry,
): KlaviyoForTenant {
  return async (tenant, options) => {
    const { klaviyoPrivateKey } = await secrets.get(tenant, options);
    return createKlaviyoClient({
      baseUrl: config.klaviyo.baseUrl,
      apiKey: klaviyoPrivateKey,
      revision: config.klaviyo.revision,
      timeoutMs: config.klaviyo.timeoutMs,
      retry: { maxAttempts: config.klaviyo.maxAttempts, budgetMs: config.klaviyo.retryBudgetMs },
      onRetry: ({ method, path, attempt, delayMs, error }) =>
        telemetry.log.warn('Klaviyo request retried', {
          tenant,
          method,
          path,
          attempt,
          delayMs,
          error: error.message,
        }),
    });
  };
}

export function createSyncWorker(
  config: Config,
  telemetry: Telemetry = defaultTelemetry,
): WorkerDependencies {
  const dynamodb = new DynamoDBClient({});
  return {
    state: createDynamoSyncState(dynamodb, config.syncStateTable),
    audit: createDynamoAuditLog(dynamodb, config.syncStateTable, config.auditRetentionDays),
    policiesFor: config.policiesFor,
    klaviyoFor: klaviyoForTenants(config, tenantSecretsFor(config), telemetry),
    deadLetters: createSqsDeadLetters(new SQSClient({}), config.deadLetterQueueUrl),
    telemetry,
    clock: systemClock,
  };
}
