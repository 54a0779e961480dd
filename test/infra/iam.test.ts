import { describe, expect, it } from 'vitest';
import { type Json, type Resource, usePackagedService } from '../support/osls.js';

/**
 * Least privilege, read from the packaged CloudFormation template: each function runs under its
 * own role (infra/iam.yml) granting exactly what that function does, each right on a named
 * resource. A right added anywhere, to any role, fails here until it is listed below.
 */
interface Statement {
  Effect: string;
  Action?: string | string[];
  Resource?: unknown;
  NotAction?: unknown;
  NotResource?: unknown;
  Condition?: unknown;
}

const packaged = usePackagedService();

const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];
const arnOf = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });
const QUEUE = arnOf('IdentityChangesQueue');
const DEAD_LETTER_QUEUE = arnOf('IdentityChangesDeadLetterQueue');
const TABLE = arnOf('SyncStateTable');
// biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax, not a JS template
const ACCOUNT = '${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}';
const sub = (service: string, rest: string) => ({
  'Fn::Sub': `arn:${ACCOUNT.replace('%s', service)}:${rest}`,
});
/**
 * The tenants' two secrets, granted apart: the intakes read only the webhook secrets, the worker
 * only the Klaviyo keys. The wildcards: the tenant, and the 6 characters Secrets Manager appends.
 */
const WEBHOOK_SECRETS = sub('secretsmanager', 'secret:klaviyo-identity-sync/dev/tenants/*/webhook-??????');
const KLAVIYO_KEY_SECRETS = sub(
  'secretsmanager',
  'secret:klaviyo-identity-sync/dev/tenants/*/klaviyo-??????',
);
/** The exports bucket's objects (infra/exports.yml): the worker writes customers' data exports there. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax, not a JS template
const EXPORTS = { 'Fn::Sub': '${ExportsBucket.Arn}/*' };
/** A log group's streams: what Lambda's logging needs (the group itself is the stack's). */
const logsOf = (fn: string) => sub('logs', `log-group:/aws/lambda/klaviyo-identity-sync-dev-${fn}:*`);

/** One right: an action on a resource, as the template spells it. */
const grant = (action: string, resource: unknown) => `${action} on ${JSON.stringify(resource)}`;
const writeLogs = (fn: string) => [
  grant('logs:CreateLogStream', logsOf(fn)),
  grant('logs:PutLogEvents', logsOf(fn)),
];
const intake = (fn: string) => [
  ...writeLogs(fn),
  grant('sqs:SendMessage', QUEUE),
  grant('sqs:SendMessage', DEAD_LETTER_QUEUE),
];

/** Every right of every function, by function; nothing else may be granted. */
const RIGHTS: Record<string, string[]> = {
  'shopify-webhook': [
    ...intake('shopify-webhook'),
    grant('secretsmanager:GetSecretValue', WEBHOOK_SECRETS),
    // Seen bodies' digests: Shopify signs only the body, so its replays are told by them.
    grant('dynamodb:PutItem', TABLE),
  ],
  'erp-webhook': [...intake('erp-webhook'), grant('secretsmanager:GetSecretValue', WEBHOOK_SECRETS)],
  // Its deliveries come through EventBridge unsigned: no secret to read. Lambda sends an event it
  // could not queue to the on-failure destination with the function's role.
  'shopify-eventbridge': [
    ...intake('shopify-eventbridge'),
    grant('sqs:SendMessage', arnOf('ShopifyEventFailuresQueue')),
  ],
  'sync-worker': [
    ...writeLogs('sync-worker'),
    // The SQS trigger polls with the function's role; ChangeMessageVisibility hands failures back.
    ...['ReceiveMessage', 'DeleteMessage', 'GetQueueAttributes', 'ChangeMessageVisibility'].map((action) =>
      grant(`sqs:${action}`, QUEUE),
    ),
    grant('sqs:SendMessage', DEAD_LETTER_QUEUE),
    // Erasure drops an erased customer's parked letters; a data request reads them.
    ...['ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility', 'GetQueueAttributes'].map((action) =>
      grant(`sqs:${action}`, DEAD_LETTER_QUEUE),
    ),
    ...['GetItem', 'PutItem', 'UpdateItem', 'Query'].map((action) => grant(`dynamodb:${action}`, TABLE)),
    // Erasure: a customer's items deleted in batches, a shop's found by Scan.
    ...['BatchWriteItem', 'Scan'].map((action) => grant(`dynamodb:${action}`, TABLE)),
    grant('secretsmanager:GetSecretValue', KLAVIYO_KEY_SECRETS),
    // A customer's data export: written, never read (operators fetch it with their own credentials).
    grant('s3:PutObject', EXPORTS),
  ],
};

const ofType = (type: string) =>
  Object.entries(packaged.resources).filter(([, resource]) => resource.Type === type);

/** The function's name without the service and stage, e.g. `sync-worker`. */
const shortName = (fn: Resource) =>
  String(fn.Properties.FunctionName).replace(/^klaviyo-identity-sync-dev-/, '');

function roleOf(fn: Resource): [string, Resource] {
  const role = fn.Properties.Role as { 'Fn::GetAtt'?: [string, string] } | undefined;
  const logicalId = role?.['Fn::GetAtt']?.[0] ?? '';
  const found = packaged.resources[logicalId];
  expect(found?.Type, `${shortName(fn)}'s role ${JSON.stringify(role)}`).toBe('AWS::IAM::Role');
  return [logicalId, found as Resource];
}

const statementsOf = (role: Resource): Statement[] =>
  asArray(role.Properties.Policies as Json[] | undefined).flatMap((policy) =>
    asArray((policy.PolicyDocument as Json).Statement as Statement | Statement[]),
  );

const rightsOf = (role: Resource) =>
  statementsOf(role).flatMap((statement) =>
    asArray(statement.Action).flatMap((action) => asArray(statement.Resource).map((r) => grant(action, r))),
  );

describe('least privilege (infra/iam.yml)', () => {
  it('gives each function a role of its own', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.map(([, fn]) => shortName(fn)).sort()).toEqual(Object.keys(RIGHTS).sort());
    const roles = functions.map(([, fn]) => roleOf(fn)[0]);
    expect(new Set(roles).size).toBe(functions.length);
  });

  it('has no IAM role or policy but those roles', () => {
    const roles = ofType('AWS::Lambda::Function').map(([, fn]) => roleOf(fn)[0]);
    const iam = Object.entries(packaged.resources).filter(([, resource]) =>
      resource.Type.startsWith('AWS::IAM::'),
    );
    expect(iam.map(([logicalId]) => logicalId).sort()).toEqual([...roles].sort());
  });

  it.each(Object.keys(RIGHTS))('grants %s exactly what it uses, each on a named resource', (name) => {
    const fn = ofType('AWS::Lambda::Function').find(([, f]) => shortName(f) === name)?.[1];
    expect(fn, name).toBeDefined();
    const [, role] = roleOf(fn as Resource);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.PermissionsBoundary).toBeUndefined();
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ],
    });
    for (const statement of statementsOf(role)) {
      expect(statement.Effect).toBe('Allow');
      expect(statement.NotAction ?? statement.NotResource ?? statement.Condition).toBeUndefined();
    }
    expect(rightsOf(role).sort()).toEqual([...(RIGHTS[name] as string[])].sort());
  });

  it('grants no wildcard action, and no wildcard resource but the ARN suffixes', () => {
    const allowed = [
      JSON.stringify(WEBHOOK_SECRETS),
      JSON.stringify(KLAVIYO_KEY_SECRETS),
      JSON.stringify(EXPORTS),
      ...Object.keys(RIGHTS).map((fn) => JSON.stringify(logsOf(fn))),
    ];
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      for (const statement of statementsOf(roleOf(fn)[1])) {
        for (const action of asArray(statement.Action)) expect(action).not.toMatch(/\*/);
        for (const resource of asArray(statement.Resource)) {
          const text = JSON.stringify(resource);
          if (text.includes('*')) expect(allowed, text).toContain(text);
        }
      }
    }
  });
});
