import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Json, type Resource, usePackagedService } from '../support/osls.js';

/**
 * Packages the service with osls (offline, dummy credentials, default stage `dev`) and checks the
 * CloudFormation template it generates.
 */

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  NotResource?: unknown;
  NotAction?: unknown;
}

const packaged = usePackagedService();
let resources: Record<string, Resource>;
let zips: Record<string, Buffer>;

const arnOf = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });
const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

function ofType(type: string): [string, Resource][] {
  return Object.entries(resources).filter(([, resource]) => resource.Type === type);
}

function resource(logicalId: string, type: string): Json {
  const found = resources[logicalId];
  expect(found, `resource ${logicalId}`).toBeDefined();
  expect(found?.Type).toBe(type);
  return found?.Properties ?? {};
}

function lambda(functionName: string): Json {
  const found = ofType('AWS::Lambda::Function').find(([, r]) => r.Properties.FunctionName === functionName);
  expect(found, `function ${functionName}`).toBeDefined();
  return found?.[1].Properties ?? {};
}

function logicalIdOfFunction(functionName: string): string | undefined {
  return ofType('AWS::Lambda::Function').find(([, r]) => r.Properties.FunctionName === functionName)?.[0];
}

/** Every statement of every IAM policy in the template, inline role policies included. */
function iamStatements(): Statement[] {
  const documents: Json[] = [];
  for (const [, role] of ofType('AWS::IAM::Role')) {
    for (const policy of asArray(role.Properties.Policies as Json[] | undefined)) {
      documents.push(policy.PolicyDocument as Json);
    }
  }
  for (const [, policy] of [...ofType('AWS::IAM::Policy'), ...ofType('AWS::IAM::ManagedPolicy')]) {
    documents.push(policy.Properties.PolicyDocument as Json);
  }
  return documents.flatMap((document) => asArray(document.Statement as Statement | Statement[]));
}

const actionsOf = (statement: Statement) => asArray(statement.Action);
const resourcesOf = (statement: Statement) => asArray(statement.Resource);

/** The resources the template grants `action` on, over all statements. */
function grantedResources(action: string): unknown[] {
  return iamStatements()
    .filter((s) => s.Effect === 'Allow' && actionsOf(s).includes(action))
    .flatMap(resourcesOf);
}

const WEBHOOK = 'klaviyo-identity-sync-dev-shopify-webhook';
const ERP_WEBHOOK = 'klaviyo-identity-sync-dev-erp-webhook';
const WORKER = 'klaviyo-identity-sync-dev-sync-worker';
// biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax, not a JS template
const SECRET_ARN_SUB = 'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:';
const SECRET_ARN = { 'Fn::Sub': `${SECRET_ARN_SUB}klaviyo-identity-sync/dev/tenants/*` };

beforeAll(async () => {
  resources = packaged.resources;
  zips = {
    webhook: await readFile(join(packaged.dir, 'shopify-webhook.zip')),
    erpWebhook: await readFile(join(packaged.dir, 'erp-webhook.zip')),
    worker: await readFile(join(packaged.dir, 'sync-worker.zip')),
  };
});

describe('functions', () => {
  it.each([WEBHOOK, ERP_WEBHOOK, WORKER])('%s runs nodejs24.x on arm64', (name) => {
    const fn = lambda(name);
    expect(fn.Runtime).toBe('nodejs24.x');
    expect(fn.Architectures).toEqual(['arm64']);
  });

  it('defines exactly the three functions, with their timeouts', () => {
    expect(ofType('AWS::Lambda::Function')).toHaveLength(3);
    expect(lambda(WEBHOOK).Timeout).toBe(10);
    expect(lambda(ERP_WEBHOOK).Timeout).toBe(10);
    expect(lambda(WORKER).Timeout).toBe(60);
  });

  it('bundles each function on its own, as an ES module', () => {
    expect(lambda(WEBHOOK).Handler).toBe('functions/shopify-webhook.handler');
    expect(lambda(ERP_WEBHOOK).Handler).toBe('functions/erp-webhook.handler');
    expect(lambda(WORKER).Handler).toBe('functions/sync-worker.handler');
    // Zip entry names are stored uncompressed in the archive headers.
    expect(zips.webhook?.includes('functions/shopify-webhook.mjs')).toBe(true);
    expect(zips.webhook?.includes('functions/sync-worker.mjs')).toBe(false);
    expect(zips.erpWebhook?.includes('functions/erp-webhook.mjs')).toBe(true);
    expect(zips.erpWebhook?.includes('functions/shopify-webhook.mjs')).toBe(false);
    expect(zips.worker?.includes('functions/sync-worker.mjs')).toBe(true);
    expect(zips.worker?.includes('functions/shopify-webhook.mjs')).toBe(false);
    expect(zips.worker?.includes('node_modules/')).toBe(false);
  });

  it.each([WEBHOOK, ERP_WEBHOOK, WORKER])('%s gets the resource references and settings', (name) => {
    const variables = (lambda(name).Environment as { Variables: Json }).Variables;
    expect(variables.IDENTITY_CHANGES_QUEUE_URL).toEqual({ Ref: 'IdentityChangesQueue' });
    expect(variables.DEAD_LETTER_QUEUE_URL).toEqual({ Ref: 'IdentityChangesDeadLetterQueue' });
    expect(variables.SYNC_STATE_TABLE).toEqual({ Ref: 'SyncStateTable' });
    expect(variables).toMatchObject({
      TENANT_SECRET_PREFIX: 'klaviyo-identity-sync/dev/tenants/',
      DEFAULT_TENANT: 'default',
      SHOP_TENANTS: '{}',
      DEFAULT_PHONE_REGION: 'US',
      KLAVIYO_BASE_URL: 'https://a.klaviyo.com',
      KLAVIYO_REVISION: '2026-07-15',
      SECRET_CACHE_TTL_SECONDS: '300',
      POWERTOOLS_SERVICE_NAME: 'klaviyo-identity-sync',
      POWERTOOLS_METRICS_NAMESPACE: 'KlaviyoIdentitySync',
      LOG_LEVEL: 'INFO',
    });
  });
});

describe('HTTP API', () => {
  /** The function an HTTP API route invokes, through its integration. */
  function functionOfRoute(route: Json): unknown {
    const target = route.Target as { 'Fn::Join': [string, unknown[]] };
    const integrationRef = target['Fn::Join'][1].find(
      (part): part is { Ref: string } => typeof part === 'object' && part !== null && 'Ref' in part,
    );
    expect(integrationRef).toBeDefined();
    const integration = resource(integrationRef?.Ref ?? '', 'AWS::ApiGatewayV2::Integration');
    expect(integration.IntegrationType).toBe('AWS_PROXY');
    expect(integration.PayloadFormatVersion).toBe('2.0');
    return integration.IntegrationUri;
  }

  it('is one HTTP API with exactly the two webhook routes', () => {
    const apis = ofType('AWS::ApiGatewayV2::Api');
    expect(apis).toHaveLength(1);
    expect(apis[0]?.[1].Properties.ProtocolType).toBe('HTTP');
    const routeKeys = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    expect(routeKeys.sort()).toEqual(['POST /webhooks/erp/{tenant}', 'POST /webhooks/shopify']);
  });

  it.each([
    ['POST /webhooks/shopify', WEBHOOK],
    ['POST /webhooks/erp/{tenant}', ERP_WEBHOOK],
  ])('routes %s to %s with payload v2', (routeKey, functionName) => {
    const route = ofType('AWS::ApiGatewayV2::Route').find(([, r]) => r.Properties.RouteKey === routeKey);
    expect(route, routeKey).toBeDefined();
    expect(functionOfRoute(route?.[1].Properties ?? {})).toEqual(
      arnOf(logicalIdOfFunction(functionName) ?? ''),
    );
  });
});

describe('queues', () => {
  it('is a high-throughput FIFO queue that takes explicit deduplication ids', () => {
    const queue = resource('IdentityChangesQueue', 'AWS::SQS::Queue');
    expect(queue.FifoQueue).toBe(true);
    expect(queue.QueueName).toBe('klaviyo-identity-sync-dev-identity-changes.fifo');
    expect(queue.ContentBasedDeduplication).toBe(false);
    expect(queue.DeduplicationScope).toBe('messageGroup');
    expect(queue.FifoThroughputLimit).toBe('perMessageGroupId');
  });

  it('redrives to the FIFO dead-letter queue after 5 receives', () => {
    const queue = resource('IdentityChangesQueue', 'AWS::SQS::Queue');
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: arnOf('IdentityChangesDeadLetterQueue'),
      maxReceiveCount: 5,
    });
    const dlq = resource('IdentityChangesDeadLetterQueue', 'AWS::SQS::Queue');
    expect(dlq.FifoQueue).toBe(true);
    expect(String(dlq.QueueName)).toMatch(/^klaviyo-identity-sync-dev-.+\.fifo$/);
    expect(dlq.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  it('hides a message for at least 6 times the worker timeout (AWS guidance)', () => {
    const queue = resource('IdentityChangesQueue', 'AWS::SQS::Queue');
    expect(Number(queue.VisibilityTimeout)).toBeGreaterThanOrEqual(6 * Number(lambda(WORKER).Timeout));
  });

  it('feeds the worker in batches of 10 with partial batch responses', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(1);
    const mapping = mappings[0]?.[1].Properties ?? {};
    expect(mapping.EventSourceArn).toEqual(arnOf('IdentityChangesQueue'));
    expect(mapping.FunctionName).toEqual(arnOf(logicalIdOfFunction(WORKER) ?? ''));
    expect(mapping.BatchSize).toBe(10);
    expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(mapping.ScalingConfig).toEqual({ MaximumConcurrency: 5 });
  });
});

describe('alarms', () => {
  const alarmOn = (metric: string) =>
    ofType('AWS::CloudWatch::Alarm').find(([, alarm]) => alarm.Properties.MetricName === metric)?.[1]
      .Properties;

  it('alarm on parked changes, stuck changes and worker errors, to one SNS topic', () => {
    resource('AlertsTopic', 'AWS::SNS::Topic');
    const parked = alarmOn('ApproximateNumberOfMessagesVisible');
    expect(parked?.Dimensions).toEqual([
      { Name: 'QueueName', Value: { 'Fn::GetAtt': ['IdentityChangesDeadLetterQueue', 'QueueName'] } },
    ]);
    expect(parked).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    const stuck = alarmOn('ApproximateAgeOfOldestMessage');
    expect(stuck?.Dimensions).toEqual([
      { Name: 'QueueName', Value: { 'Fn::GetAtt': ['IdentityChangesQueue', 'QueueName'] } },
    ]);
    expect(alarmOn('Errors')?.Dimensions).toEqual([{ Name: 'FunctionName', Value: WORKER }]);
    for (const [, alarm] of ofType('AWS::CloudWatch::Alarm')) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: 'AlertsTopic' }]);
    }
  });
});

describe('sync state table', () => {
  it('keys on pk/sk strings, bills per request, expires items and keeps backups', () => {
    const table = resource('SyncStateTable', 'AWS::DynamoDB::Table');
    expect(table.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(table.AttributeDefinitions).toEqual([
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
    ]);
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(table.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
  });
});

describe('IAM', () => {
  it('scopes every statement to named resources', () => {
    const statements = iamStatements();
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements) {
      expect(statement.Effect).toBe('Allow');
      expect(statement.NotResource).toBeUndefined();
      expect(statement.NotAction).toBeUndefined();
      expect(resourcesOf(statement).length).toBeGreaterThan(0);
      for (const r of resourcesOf(statement)) expect(r, JSON.stringify(statement)).not.toBe('*');
      for (const action of actionsOf(statement)) expect(action).not.toMatch(/(^\*$|:\*$)/);
    }
  });

  it('grants only logs, SQS, DynamoDB and Secrets Manager actions', () => {
    const services = new Set(iamStatements().flatMap((s) => actionsOf(s).map((a) => a.split(':')[0])));
    expect([...services].sort()).toEqual(['dynamodb', 'logs', 'secretsmanager', 'sqs']);
  });

  it('lets the functions send to the queue and the dead-letter queue', () => {
    const granted = grantedResources('sqs:SendMessage');
    expect(granted).toContainEqual(arnOf('IdentityChangesQueue'));
    expect(granted).toContainEqual(arnOf('IdentityChangesDeadLetterQueue'));
  });

  it.each([
    'sqs:ReceiveMessage',
    'sqs:DeleteMessage',
    'sqs:GetQueueAttributes',
    'sqs:ChangeMessageVisibility',
  ])('grants the event source %s on the queue only', (action) => {
    const granted = grantedResources(action);
    expect(granted.length).toBeGreaterThan(0);
    for (const r of granted) expect(r).toEqual(arnOf('IdentityChangesQueue'));
  });

  it('grants SQS actions on the two queues only', () => {
    const sqs = iamStatements().filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
    expect(sqs.length).toBeGreaterThan(0);
    for (const statement of sqs) {
      expect(actionsOf(statement).every((a) => a.startsWith('sqs:'))).toBe(true);
      for (const r of resourcesOf(statement)) {
        expect([arnOf('IdentityChangesQueue'), arnOf('IdentityChangesDeadLetterQueue')]).toContainEqual(r);
      }
    }
  });

  it('grants item reads, writes and queries on the table only', () => {
    const dynamo = iamStatements().filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    const actions = dynamo.flatMap(actionsOf).sort();
    expect(actions).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
    for (const r of dynamo.flatMap(resourcesOf)) expect(r).toEqual(arnOf('SyncStateTable'));
  });

  it('reads secrets under the tenant prefix only', () => {
    const secrets = iamStatements().filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')));
    expect(secrets.flatMap(actionsOf)).toEqual(['secretsmanager:GetSecretValue']);
    expect(secrets.flatMap(resourcesOf)).toEqual([SECRET_ARN]);
  });
});
