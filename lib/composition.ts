import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoSyncState } from './adapters/dynamo-sync-state.js';
import { createSqsChangeQueue, createSqsDeadLetters } from './adapters/sqs-queues.js';
import { createTenantSecrets } from './adapters/tenant-secrets.js';
import type { Config } from './config.js';
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
  });
}

export function createShopifyIntake(
  config: Config,
  telemetry: Telemetry = defaultTelemetry,
): ShopifyIntakeDependencies {
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
  return {
    state: createDynamoSyncState(new DynamoDBClient({}), config.syncStateTable),
    klaviyoFor: klaviyoForTenants(config, tenantSecretsFor(config), telemetry),
    deadLetters: createSqsDeadLetters(new SQSClient({}), config.deadLetterQueueUrl),
    telemetry,
    clock: systemClock,
  };
}
