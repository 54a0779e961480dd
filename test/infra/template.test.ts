import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { SETTLE_SECONDS as FORGET_SETTLE_SECONDS } from '../../cli/commands/forget.js';
import { OUTCOMES, PARKED_REASON } from '../../lib/observability/telemetry.js';
import { type Json, type Resource, usePackagedService } from '../support/osls.js';

/**
 * Packages the service with osls (offline, dummy credentials, default stage `dev`) and checks the
 * CloudFormation template it generates.
 */

const packaged = usePackagedService();
let resources: Record<string, Resource>;
let zips: Record<string, Buffer>;

const arnOf = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });

/** Each entry's Unix mode, read from a zip's central directory (the high half of its external attributes). */
function unixModesIn(zip: Buffer): Map<string, number> {
  const modes = new Map<string, number>();
  for (let at = zip.indexOf(CENTRAL_ENTRY); at >= 0; at = zip.indexOf(CENTRAL_ENTRY, at + 4)) {
    const nameLength = zip.readUInt16LE(at + 28);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    modes.set(name, zip.readUInt32LE(at + 38) >>> 16);
  }
  return modes;
}
const CENTRAL_ENTRY = Buffer.from([0x50, 0x4b, 0x01, 0x02]);

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

const WEBHOOK = 'klaviyo-identity-sync-dev-shopify-webhook';
const ERP_WEBHOOK = 'klaviyo-identity-sync-dev-erp-webhook';
const WORKER = 'klaviyo-identity-sync-dev-sync-worker';
const EVENTBRIDGE = 'klaviyo-identity-sync-dev-shopify-eventbridge';
const FUNCTIONS = [WEBHOOK, ERP_WEBHOOK, WORKER, EVENTBRIDGE];

beforeAll(async () => {
  resources = packaged.resources;
  zips = {
    webhook: await readFile(join(packaged.dir, 'shopify-webhook.zip')),
    erpWebhook: await readFile(join(packaged.dir, 'erp-webhook.zip')),
    worker: await readFile(join(packaged.dir, 'sync-worker.zip')),
    eventBridge: await readFile(join(packaged.dir, 'shopify-eventbridge.zip')),
  };
});

describe('functions', () => {
  it.each(FUNCTIONS)('%s runs nodejs24.x on arm64', (name) => {
    const fn = lambda(name);
    expect(fn.Runtime).toBe('nodejs24.x');
    expect(fn.Architectures).toEqual(['arm64']);
  });

  // From measurements (bench/RESULTS.md): the intakes that answer a caller buy CPU; the rest stay small.
  it.each([
    [WEBHOOK, 1024],
    [ERP_WEBHOOK, 1024],
    [EVENTBRIDGE, 256],
    [WORKER, 512],
  ])('%s gets %i MB', (name, megabytes) => {
    expect(lambda(name).MemorySize).toBe(megabytes);
  });

  it.each(FUNCTIONS)("%s logs JSON, without Lambda's START, END and REPORT lines", (name) => {
    expect(lambda(name).LoggingConfig).toEqual({
      LogFormat: 'JSON',
      ApplicationLogLevel: 'INFO',
      SystemLogLevel: 'WARN',
    });
  });

  it('defines exactly the four functions, with their timeouts', () => {
    expect(ofType('AWS::Lambda::Function')).toHaveLength(4);
    expect(lambda(EVENTBRIDGE).Timeout).toBe(10);
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
    expect(lambda(EVENTBRIDGE).Handler).toBe('functions/shopify-eventbridge.handler');
    expect(zips.eventBridge?.includes('functions/shopify-eventbridge.mjs')).toBe(true);
    expect(zips.eventBridge?.includes('functions/shopify-webhook.mjs')).toBe(false);
  });

  it('starts the worker through its exec wrapper, packaged and executable beside its bundle, with the flags it adds', () => {
    const variables = (lambda(WORKER).Environment as { Variables: Json }).Variables;
    expect(variables).toMatchObject({
      AWS_LAMBDA_EXEC_WRAPPER: '/var/task/functions/node-flags.sh',
      LAMBDA_NODE_FLAGS: '--max-semi-space-size=1',
      MALLOC_ARENA_MAX: '2',
    });
    // Lambda runs the wrapper only if it is executable: its Unix mode, from the zip's central directory.
    expect(unixModesIn(zips.worker as Buffer).get('functions/node-flags.sh')).toBe(0o100755);
    // Only the worker has it.
    expect(zips.webhook?.includes('functions/node-flags.sh')).toBe(false);
    expect(
      (lambda(WEBHOOK).Environment as { Variables: Json }).Variables.AWS_LAMBDA_EXEC_WRAPPER,
    ).toBeUndefined();
  });

  it.each(FUNCTIONS)('%s gets the resource references and settings', (name) => {
    const variables = (lambda(name).Environment as { Variables: Json }).Variables;
    expect(variables.IDENTITY_CHANGES_QUEUE_URL).toEqual({ Ref: 'IdentityChangesQueue' });
    expect(variables.DEAD_LETTER_QUEUE_URL).toEqual({ Ref: 'IdentityChangesDeadLetterQueue' });
    expect(variables.SYNC_STATE_TABLE).toEqual({ Ref: 'SyncStateTable' });
    expect(variables.EXPORTS_BUCKET).toEqual({ Ref: 'ExportsBucket' });
    expect(variables).toMatchObject({
      TENANT_SECRET_PREFIX: 'klaviyo-identity-sync/dev/tenants/',
      SHOP_TENANTS: '{}',
      DEFAULT_PHONE_REGION: 'US',
      KLAVIYO_BASE_URL: 'https://a.klaviyo.com',
      KLAVIYO_REVISION: '2026-10-15',
      SECRET_CACHE_TTL_SECONDS: '300',
      KLAVIYO_KEY_CACHE_TTL_SECONDS: '3600',
      POWERTOOLS_SERVICE_NAME: 'klaviyo-identity-sync',
      POWERTOOLS_METRICS_NAMESPACE: 'KlaviyoIdentitySync',
      LOG_LEVEL: 'INFO',
    });
  });
});

describe('Shopify through EventBridge', () => {
  const rule = () => resource('ShopifyEventBridgeRule', 'AWS::Events::Rule');
  const BUS = { Ref: 'ShopifyEventBusName' };
  let template: { Conditions: Json; Parameters: Json };
  beforeAll(async () => {
    template = JSON.parse(
      await readFile(join(packaged.dir, 'cloudformation-template-update-stack.json'), 'utf8'),
    ) as typeof template;
  });

  it('has its rule and invoke permission only when SHOPIFY_EVENT_BUS_NAME names the bus (empty here)', () => {
    for (const logicalId of ['ShopifyEventBridgeRule', 'ShopifyEventBridgeInvokePermission']) {
      expect(resources[logicalId]).toMatchObject({ Condition: 'ShopifyEventBusConfigured' });
    }
    expect(template.Parameters.ShopifyEventBusName).toMatchObject({ Type: 'String', Default: '' });
    expect(template.Conditions.ShopifyEventBusConfigured).toEqual({
      'Fn::Not': [{ 'Fn::Equals': [BUS, ''] }],
    });
    expect((lambda(EVENTBRIDGE).Environment as { Variables: Json }).Variables.SHOPIFY_EVENT_BUS_NAME).toBe(
      '',
    );
  });

  it('sends the customer topics of the partner bus to the shopify-eventbridge function', () => {
    const { EventPattern, Targets, EventBusName } = rule();
    expect(EventBusName).toEqual(BUS);
    expect(EventPattern).toEqual({
      source: [BUS],
      detail: {
        metadata: { 'X-Shopify-Topic': ['customers/create', 'customers/update', 'customers/merge'] },
      },
    });
    const target = arnOf(logicalIdOfFunction(EVENTBRIDGE) ?? '');
    expect(Targets).toEqual([{ Id: 'shopify-eventbridge', Arn: target }]);
    expect(resource('ShopifyEventBridgeInvokePermission', 'AWS::Lambda::Permission')).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: target,
      Principal: 'events.amazonaws.com',
      SourceArn: arnOf('ShopifyEventBridgeRule'),
    });
  });

  it('retries a failed event twice for up to 6 hours, then keeps it on the failure queue', () => {
    const [config, ...others] = ofType('AWS::Lambda::EventInvokeConfig');
    expect(others).toEqual([]);
    expect(config?.[1].Properties).toEqual({
      FunctionName: { Ref: logicalIdOfFunction(EVENTBRIDGE) },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 6 * 3600,
      DestinationConfig: { OnFailure: { Destination: arnOf('ShopifyEventFailuresQueue') } },
    });
  });

  it('keeps failed events on an encrypted standard queue for 14 days (Lambda takes no FIFO queue)', () => {
    const queue = resource('ShopifyEventFailuresQueue', 'AWS::SQS::Queue');
    expect(queue).toEqual({
      QueueName: 'klaviyo-identity-sync-dev-shopify-event-failures',
      MessageRetentionPeriod: 14 * 24 * 3600,
      SqsManagedSseEnabled: true,
    });
  });
});

describe('floods', () => {
  it('throttles every route of the HTTP API (HTTP_API_RATE_LIMIT, HTTP_API_BURST_LIMIT)', () => {
    const [stage, ...others] = ofType('AWS::ApiGatewayV2::Stage');
    expect(others).toEqual([]);
    expect(stage?.[1].Properties.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: 500,
      ThrottlingBurstLimit: 1000,
    });
  });

  it("reserves the worker's concurrency, at least the SQS trigger's maximum", () => {
    const reserved = lambda(WORKER).ReservedConcurrentExecutions;
    expect(reserved).toBe(5);
    const [mapping] = ofType('AWS::Lambda::EventSourceMapping');
    const scaling = mapping?.[1].Properties.ScalingConfig as { MaximumConcurrency: number } | undefined;
    expect(reserved).toBeGreaterThanOrEqual(scaling?.MaximumConcurrency ?? Number.POSITIVE_INFINITY);
  });
});

/** cfn-lint, when this machine has it (CI does): W3005 is osls's own redundant DependsOn on roles and integrations. */
const cfnLint = await promisify(execFile)('cfn-lint', ['--version']).then(
  () => true,
  () => false,
);

describe.runIf(cfnLint)('cfn-lint', () => {
  it('finds nothing wrong in the packaged template', async () => {
    const template = join(packaged.dir, 'cloudformation-template-update-stack.json');
    const result = await promisify(execFile)('cfn-lint', ['--ignore-checks', 'W3005', '--', template]).then(
      () => '',
      (error: { stdout?: string; message: string }) => error.stdout || error.message,
    );
    expect(result).toBe('');
  }, 120_000);
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

  it('redrives to the FIFO dead-letter queue after 500 receives, a backstop (the worker parks)', () => {
    const queue = resource('IdentityChangesQueue', 'AWS::SQS::Queue');
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: arnOf('IdentityChangesDeadLetterQueue'),
      maxReceiveCount: 500,
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

  it("waits out the worker's timeout before forget's second sweep", () => {
    expect(FORGET_SETTLE_SECONDS).toBeGreaterThan(Number(lambda(WORKER).Timeout));
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

  /** The alarm on messages waiting on a queue, by the queue's logical id. */
  const waitingOn = (queue: string) =>
    ofType('AWS::CloudWatch::Alarm').find(
      ([, alarm]) =>
        alarm.Properties.MetricName === 'ApproximateNumberOfMessagesVisible' &&
        JSON.stringify(alarm.Properties.Dimensions) ===
          JSON.stringify([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }]),
    )?.[1].Properties;

  it('alarm on parked changes, kept EventBridge events, stuck changes and worker errors, to one SNS topic', () => {
    resource('AlertsTopic', 'AWS::SNS::Topic');
    for (const queue of ['IdentityChangesDeadLetterQueue', 'ShopifyEventFailuresQueue']) {
      expect(waitingOn(queue), queue).toMatchObject({
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        Statistic: 'Maximum',
      });
    }
    const stuck = alarmOn('ApproximateAgeOfOldestMessage');
    expect(stuck?.Dimensions).toEqual([
      { Name: 'QueueName', Value: { 'Fn::GetAtt': ['IdentityChangesQueue', 'QueueName'] } },
    ]);
    expect(alarmOn('Errors')?.Dimensions).toEqual([{ Name: 'FunctionName', Value: WORKER }]);
    for (const [name, alarm] of ofType('AWS::CloudWatch::Alarm')) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: 'AlertsTopic' }]);
      // Whoever heard of the trouble hears that it cleared; an announcement has nothing to clear.
      if (name === 'DataRequestExportedAlarm') expect(alarm.Properties.OKActions).toBeUndefined();
      else expect(alarm.Properties.OKActions, name).toEqual([{ Ref: 'AlertsTopic' }]);
    }
  });
});

describe('exports bucket (infra/exports.yml)', () => {
  it('is private, encrypted, unversioned, and expires exports after EXPORT_RETENTION_DAYS (30)', () => {
    const bucket = resource('ExportsBucket', 'AWS::S3::Bucket');
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    expect(bucket.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(bucket.VersioningConfiguration).toBeUndefined();
    expect(bucket.LifecycleConfiguration).toEqual({
      Rules: [
        {
          Id: 'expire-exports',
          Status: 'Enabled',
          ExpirationInDays: 30,
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
        },
      ],
    });
    expect(bucket.BucketName).toBeUndefined(); // CloudFormation's unique name
  });

  it('refuses every request that is not over TLS, and grants nothing', () => {
    expect(resource('ExportsBucketPolicy', 'AWS::S3::BucketPolicy')).toEqual({
      Bucket: { Ref: 'ExportsBucket' },
      PolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'TlsOnly',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:*',
            // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax
            Resource: [arnOf('ExportsBucket'), { 'Fn::Sub': '${ExportsBucket.Arn}/*' }],
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ],
      },
    });
  });

  it('announces each data request export on the alerts topic (the EMF metric DataRequestExported)', () => {
    const { POWERTOOLS_METRICS_NAMESPACE: namespace, POWERTOOLS_SERVICE_NAME: service } = (
      lambda(WORKER).Environment as { Variables: Json }
    ).Variables;
    const alarm = ofType('AWS::CloudWatch::Alarm').find(
      ([, found]) => found.Properties.MetricName === 'DataRequestExported',
    )?.[1].Properties;
    expect(alarm).toMatchObject({
      Namespace: namespace,
      Dimensions: [{ Name: 'service', Value: service }],
      Statistic: 'Sum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: 'AlertsTopic' }],
    });
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

describe('dashboard', () => {
  type MetricRow = (string | Json)[];
  interface Widget {
    type: string;
    properties: { title?: string; metrics?: MetricRow[] };
  }
  /** A charted metric: namespace, name and dimensions, CloudWatch's "." shorthand resolved. */
  interface Charted {
    namespace: string;
    name: string;
    dimensions: Record<string, string>;
    widget: string;
  }

  /** The dashboard's body as CloudFormation gets it, its ${…} placeholders still text. */
  function dashboardBody(): { widgets: Widget[]; placeholders: string[] } {
    const [dashboard, ...others] = ofType('AWS::CloudWatch::Dashboard');
    expect(others).toEqual([]);
    const body = (dashboard?.[1].Properties.DashboardBody as { 'Fn::Sub': string } | undefined)?.['Fn::Sub'];
    if (!body) throw new Error('the dashboard has no DashboardBody (Fn::Sub)');
    return {
      widgets: (JSON.parse(body) as { widgets: Widget[] }).widgets,
      placeholders: [...body.matchAll(/\$\{([^}]+)\}/g)].map((match) => match[1] as string),
    };
  }

  function chartedMetrics(widgets: Widget[]): Charted[] {
    const charted: Charted[] = [];
    for (const widget of widgets) {
      const title = widget.properties.title ?? '';
      let previous: string[] = [];
      for (const row of widget.properties.metrics ?? []) {
        const [first] = row;
        if (typeof first === 'object' && typeof first.expression === 'string') {
          // SEARCH('{Namespace,dim,…} MetricName="Name" …', …)
          const [, namespace = '', dims = '', name = ''] =
            /\{([^,}]+),([^}]*)\}\s+MetricName="([^"]+)"/.exec(first.expression) ?? [];
          const dimensions = Object.fromEntries(dims.split(',').map((d) => [d, '(searched)']));
          for (const [, key, value] of first.expression.matchAll(/ (\w+)="([^"]+)"/g)) {
            if (key !== 'MetricName') dimensions[key as string] = value as string;
          }
          charted.push({ namespace, name, dimensions, widget: title });
          continue;
        }
        const values = row.filter((part): part is string => typeof part === 'string');
        const resolved = values.map((value, i) => (value === '.' ? (previous[i] ?? '') : value));
        previous = resolved;
        const [namespace = '', name = '', ...pairs] = resolved;
        const dimensions: Record<string, string> = {};
        for (let i = 0; i + 1 < pairs.length; i += 2) dimensions[pairs[i] as string] = pairs[i + 1] as string;
        charted.push({ namespace, name, dimensions, widget: title });
      }
    }
    return charted;
  }

  const workerEnvironment = () => (lambda(WORKER).Environment as { Variables: Json }).Variables;

  it('charts every metric the code counts, and no other of ours, in its namespace and service', () => {
    const { widgets } = dashboardBody();
    const { POWERTOOLS_METRICS_NAMESPACE: namespace, POWERTOOLS_SERVICE_NAME: service } = workerEnvironment();
    const ours = chartedMetrics(widgets).filter((metric) => !metric.namespace.startsWith('AWS/'));
    expect(ours.length).toBeGreaterThan(0);
    for (const metric of ours) {
      expect(metric.namespace, metric.name).toBe(namespace);
      expect(metric.dimensions.service, metric.name).toBe(service);
      expect(OUTCOMES, `${metric.name} in "${metric.widget}"`).toContain(metric.name);
    }
    expect(new Set(ours.map((metric) => metric.name))).toEqual(new Set(OUTCOMES));
  });

  it('charts parked letters by their reason dimension', () => {
    const parked = chartedMetrics(dashboardBody().widgets).filter((metric) => metric.name === 'Parked');
    expect(parked).toHaveLength(1);
    expect(Object.keys(parked[0]?.dimensions ?? {})).toContain(PARKED_REASON);
  });

  it("charts the queues' depth and age and the HTTP API's answers by AWS's own metrics", () => {
    const aws = chartedMetrics(dashboardBody().widgets)
      .filter((metric) => metric.namespace.startsWith('AWS/'))
      // `${IdentityChangesQueue.QueueName}` (Fn::Sub) read as `IdentityChangesQueue.QueueName`.
      .map(({ namespace, name, dimensions }) => {
        const values = Object.values(dimensions).map((value) => value.replace(/^\$\{(.+)\}$/, '$1'));
        return `${namespace} ${name} ${values.join(' ')}`;
      });
    expect(aws.sort()).toEqual(
      [
        'AWS/ApiGateway 4xx HttpApi',
        'AWS/ApiGateway 5xx HttpApi',
        'AWS/ApiGateway Count HttpApi',
        'AWS/SQS ApproximateAgeOfOldestMessage IdentityChangesQueue.QueueName',
        'AWS/SQS ApproximateNumberOfMessagesNotVisible IdentityChangesQueue.QueueName',
        'AWS/SQS ApproximateNumberOfMessagesVisible IdentityChangesDeadLetterQueue.QueueName',
        'AWS/SQS ApproximateNumberOfMessagesVisible IdentityChangesQueue.QueueName',
      ].sort(),
    );
  });

  it('refers only to resources of this template and to pseudo parameters', () => {
    for (const placeholder of dashboardBody().placeholders) {
      if (placeholder.startsWith('AWS::')) continue;
      expect(resources[placeholder.split('.')[0] as string], placeholder).toBeDefined();
    }
  });
});
