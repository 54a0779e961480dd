import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import dynalite from 'dynalite';
import { klaviyoKeySecretId, webhookSecretId } from '../../lib/adapters/tenant-secrets.js';
import type { TenantSecret } from '../../lib/ports.js';
import { type KlaviyoSandbox, startKlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { type LocalSecretsManager, startLocalSecretsManager } from '../../local/secrets-manager.js';
import { declaredQueues } from './declared-queues.js';
import { DEMO_TENANT } from './demo-tenant.js';
import { fauxqsApp, loadSandboxProfiles, saveSandboxProfiles, statePaths } from './local-state.js';
import { LOCAL_STAGE } from './offline.js';

/**
 * The protocol peers the functions talk to, all on loopback: fauxqs (the SQS FIFO queue and
 * dead-letter queue of infra/queues.yml), dynalite (DynamoDB), a Secrets Manager endpoint, an S3
 * endpoint (the exports bucket) and the Klaviyo sandbox. The same handlers run against them as against AWS; only endpoints differ.
 */
export interface LocalPeers {
  /** Environment for the functions: endpoints, resource names, demo tenant. */
  env: Record<string, string>;
  queueUrl: string;
  queueArn: string;
  deadLetterQueueUrl: string;
  /** Where Lambda keeps the Shopify EventBridge events it could not deliver (local/lambda-async.ts locally). */
  shopifyEventFailuresQueueUrl: string;
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  secrets: LocalSecretsManager;
  /** The exports bucket's endpoint (EXPORTS_BUCKET in it). */
  s3: LocalS3;
  /** Absent when the stack talks to another Klaviyo (a real account, or `klaviyoBaseUrl`). */
  klaviyo: KlaviyoSandbox | undefined;
  klaviyoBaseUrl: string;
  stop(): Promise<void>;
}

export interface LocalPeersOptions {
  /** 0 (the default) picks free ports, as tests want; `npm start` passes fixed ones. */
  ports?: { sqs?: number; dynamodb?: number; secretsManager?: number; klaviyo?: number; s3?: number };
  /** A real private key: seeded into the local secret, and the sandbox is not started. */
  klaviyoPrivateKey?: string;
  /** Where Klaviyo is; given, the sandbox is not started. Default: the sandbox, or real Klaviyo with a real key. */
  klaviyoBaseUrl?: string;
  /** Seconds a failed message stays hidden before SQS redelivers it. Default: infra/queues.yml's. */
  visibilityTimeoutSeconds?: number;
  /** Deliveries before SQS moves a message to the dead-letter queue. Default: infra/queues.yml's. */
  maxReceiveCount?: number;
  /** Where the sandbox's rate-limit windows start (KlaviyoSandboxOptions.rateLimitPhaseMs). */
  klaviyoRateLimitPhaseMs?: number | 'random';
  /**
   * Where the queues, the table and the sandbox's profiles are kept across restarts (see
   * local-state.ts); in memory without it.
   */
  stateDir?: string;
}

const REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
export const TABLE_NAME = 'identity-sync-state';
export const TENANT_SECRET_PREFIX = 'klaviyo-identity-sync/local/tenants/';
export const EXPORTS_BUCKET = 'identity-sync-exports';

/**
 * Seeds a tenant's secrets as deployed (lib/adapters/tenant-secrets.ts): the webhook secrets in
 * `<prefix><tenant>/webhook`, the Klaviyo key in `<prefix><tenant>/klaviyo`; a part not given is
 * not written.
 */
export function putTenantSecrets(
  secrets: Pick<LocalSecretsManager, 'putSecret'>,
  tenant: string,
  { klaviyoPrivateKey, identifierKey, ...webhook }: Partial<TenantSecret>,
) {
  if (klaviyoPrivateKey !== undefined) {
    secrets.putSecret(klaviyoKeySecretId(TENANT_SECRET_PREFIX, tenant), {
      klaviyoPrivateKey,
      ...(identifierKey !== undefined && { identifierKey }),
    });
  }
  if (webhook.shopifyWebhookSecrets !== undefined || webhook.erpWebhookSecrets !== undefined) {
    secrets.putSecret(webhookSecretId(TENANT_SECRET_PREFIX, tenant), webhook);
  }
}

export async function startLocalPeers(options: LocalPeersOptions = {}): Promise<LocalPeers> {
  const ports = options.ports ?? {};
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const kept = options.stateDir ? statePaths(options.stateDir) : undefined;
    // Not startFauxqs: it listens on 0.0.0.0 whatever `host` says (that only names queue URLs).
    const fauxqs = await fauxqsApp(kept?.sqs);
    await fauxqs.listen({ port: ports.sqs ?? 0, host: '127.0.0.1' });
    stops.push(() => fauxqs.close());
    const sqsUrl = `http://127.0.0.1:${(fauxqs.server.address() as AddressInfo).port}`;

    if (kept) await mkdir(kept.dynamodb, { recursive: true });
    const dynamo = dynalite({
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
      ...(kept && { path: kept.dynamodb }),
    });
    await new Promise<void>((resolve) => dynamo.listen(ports.dynamodb ?? 0, '127.0.0.1', () => resolve()));
    stops.push(() => new Promise((resolve) => dynamo.close(resolve)));
    const dynamoUrl = `http://127.0.0.1:${(dynamo.address() as { port: number }).port}`;

    const sandbox =
      options.klaviyoPrivateKey || options.klaviyoBaseUrl
        ? undefined
        : await startKlaviyoSandbox({
            port: ports.klaviyo ?? 0,
            apiKeys: [DEMO_TENANT.klaviyoPrivateKey],
            rateLimitPhaseMs: options.klaviyoRateLimitPhaseMs,
          });
    if (sandbox) stops.push(() => sandbox.stop());
    // Pushed after the sandbox's stop, so run before it (stops run in reverse).
    if (sandbox && kept) stops.push(() => saveSandboxProfiles(sandbox, kept.sandboxProfiles));
    const klaviyoBaseUrl = options.klaviyoBaseUrl ?? sandbox?.url ?? 'https://a.klaviyo.com';

    const secrets = await startLocalSecretsManager({ port: ports.secretsManager ?? 0, region: REGION });
    stops.push(() => secrets.stop());
    const s3 = await startLocalS3({ port: ports.s3 ?? 0, buckets: [EXPORTS_BUCKET] });
    stops.push(() => s3.stop());
    putTenantSecrets(secrets, DEMO_TENANT.tenant, {
      klaviyoPrivateKey: options.klaviyoPrivateKey ?? DEMO_TENANT.klaviyoPrivateKey,
      shopifyWebhookSecrets: [DEMO_TENANT.shopifyWebhookSecret],
      erpWebhookSecrets: [DEMO_TENANT.erpWebhookSecret],
      identifierKey: DEMO_TENANT.identifierKey,
    });

    const sqs = new SQSClient({ region: REGION, endpoint: sqsUrl, credentials: LOCAL_CREDENTIALS });
    const dynamodb = new DynamoDBClient({
      region: REGION,
      endpoint: dynamoUrl,
      credentials: LOCAL_CREDENTIALS,
    });
    const queues = await createQueues(sqs, sqsUrl, options);
    await createStateTable(dynamodb);
    const restored = sandbox && kept ? await loadSandboxProfiles(sandbox, kept.sandboxProfiles) : false;
    if (!restored)
      sandbox?.seedProfile({
        external_id: DEMO_TENANT.customer.externalId,
        email: DEMO_TENANT.customer.email,
        phone_number: DEMO_TENANT.customer.phoneNumber,
        first_name: 'Ada',
        last_name: 'Lovelace',
      });

    return {
      env: {
        AWS_REGION: REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_SQS: sqsUrl,
        AWS_ENDPOINT_URL_DYNAMODB: dynamoUrl,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        AWS_ENDPOINT_URL_S3: s3.url,
        EXPORTS_BUCKET,
        IDENTITY_CHANGES_QUEUE_URL: queues.queueUrl,
        DEAD_LETTER_QUEUE_URL: queues.deadLetterQueueUrl,
        SHOPIFY_EVENT_FAILURES_QUEUE_URL: queues.shopifyEventFailuresQueueUrl,
        SYNC_STATE_TABLE: TABLE_NAME,
        TENANT_SECRET_PREFIX,
        // The CLI's tenant when --tenant is not given (the functions do not read it).
        DEFAULT_TENANT: DEMO_TENANT.tenant,
        // The demo shop is the stack's only shop: any other is refused, as deployed.
        SHOP_TENANTS: JSON.stringify({ [DEMO_TENANT.shopDomain]: DEMO_TENANT.tenant }),
        KLAVIYO_BASE_URL: klaviyoBaseUrl,
      },
      ...queues,
      sqs,
      dynamodb,
      secrets,
      s3,
      klaviyo: sandbox,
      klaviyoBaseUrl,
      async stop() {
        sqs.destroy();
        dynamodb.destroy();
        for (const stop of stops.reverse()) await stop();
      },
    };
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw error;
  }
}

/**
 * fauxqs names queues `http://sqs.<region>.<host>/…`, a host that need not resolve; the loopback
 * form of the same URL is what the functions get.
 */
const onLoopback = (queueUrl: string | undefined, sqsUrl: string) =>
  String(queueUrl).replace(/^https?:\/\/[^/]+/, sqsUrl);

/** The queues of infra/queues.yml this stack's env points at (its CloudFormation logical ids). */
const QUEUE_ID = 'IdentityChangesQueue';
const DEAD_LETTER_QUEUE_ID = 'IdentityChangesDeadLetterQueue';
const SHOPIFY_EVENT_FAILURES_QUEUE_ID = 'ShopifyEventFailuresQueue';

/** Creates infra/queues.yml's queues, dead-letter targets first: a redrive policy names its target's ARN. */
async function createQueues(sqs: SQSClient, sqsUrl: string, options: LocalPeersOptions) {
  const declared = await declaredQueues(LOCAL_STAGE);
  const created = new Map<string, { url: string; arn: string }>();
  for (const queue of declared.sort((a, b) => Number(Boolean(a.redrive)) - Number(Boolean(b.redrive)))) {
    const attributes = { ...queue.attributes };
    if (queue.redrive) {
      attributes.RedrivePolicy = JSON.stringify({
        deadLetterTargetArn: created.get(queue.redrive.deadLetterTargetId)?.arn,
        maxReceiveCount: options.maxReceiveCount ?? queue.redrive.maxReceiveCount,
      });
    }
    if (queue.logicalId === QUEUE_ID && options.visibilityTimeoutSeconds !== undefined) {
      attributes.VisibilityTimeout = String(options.visibilityTimeoutSeconds);
    }
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: queue.name, Attributes: attributes }),
    );
    const url = onLoopback(QueueUrl, sqsUrl);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    created.set(queue.logicalId, { url, arn: Attributes?.QueueArn as string });
  }
  const queue = created.get(QUEUE_ID);
  const deadLetterQueue = created.get(DEAD_LETTER_QUEUE_ID);
  const eventFailures = created.get(SHOPIFY_EVENT_FAILURES_QUEUE_ID);
  if (!queue || !deadLetterQueue || !eventFailures) {
    throw new Error(
      `infra/queues.yml must declare ${QUEUE_ID}, ${DEAD_LETTER_QUEUE_ID} and ${SHOPIFY_EVENT_FAILURES_QUEUE_ID}`,
    );
  }
  return {
    queueUrl: queue.url,
    queueArn: queue.arn,
    deadLetterQueueUrl: deadLetterQueue.url,
    shopifyEventFailuresQueueUrl: eventFailures.url,
  };
}

async function createStateTable(dynamodb: DynamoDBClient) {
  const created = dynamodb.send(
    new CreateTableCommand({
      TableName: TABLE_NAME,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      // dynalite wants provisioned throughput; the deployed table is on-demand.
      ProvisionedThroughput: { ReadCapacityUnits: 100, WriteCapacityUnits: 100 },
    }),
  );
  // Kept from an earlier run (stateDir): the table is there already.
  await created.catch((error: Error) => {
    if (error.name !== 'ResourceInUseException') throw error;
  });
}
