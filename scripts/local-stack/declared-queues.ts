import { readServiceYaml } from './service-yaml.js';

/**
 * The SQS queues infra/queues.yml declares for CloudFormation, as CreateQueue takes them, so the
 * local stack creates the deployed queues (names, FIFO settings, retention, redrive) instead of
 * declaring them a second time.
 */
export interface DeclaredQueue {
  /** The CloudFormation logical id, e.g. `IdentityChangesQueue`. */
  logicalId: string;
  name: string;
  /** SQS attributes, but the redrive policy: its target's ARN exists only once that queue does. */
  attributes: Record<string, string>;
  redrive?: { deadLetterTargetId: string; maxReceiveCount: number };
}

/** CloudFormation properties that SQS takes as attributes of the same name (fauxqs keeps them all). */
const SQS_ATTRIBUTES = new Set([
  'FifoQueue',
  'ContentBasedDeduplication',
  'DeduplicationScope',
  'FifoThroughputLimit',
  'VisibilityTimeout',
  'MessageRetentionPeriod',
  'DelaySeconds',
  'MaximumMessageSize',
  'ReceiveMessageWaitTimeSeconds',
  'SqsManagedSseEnabled',
]);
/** Properties with nothing to do locally: it has one source queue, so allowing only it changes nothing. */
const LOCALLY_IRRELEVANT = new Set(['RedriveAllowPolicy']);

interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
}

/** The queues of infra/queues.yml as stage `stage` of serverless.yml's service names them. */
export async function declaredQueues(stage: string): Promise<DeclaredQueue[]> {
  const { service } = await readServiceYaml('serverless.yml');
  const { Resources } = (await readServiceYaml('infra/queues.yml')) as {
    Resources: Record<string, Resource>;
  };
  const variables: Record<string, string> = { 'self:service': String(service), 'sls:stage': stage };
  return Object.entries(Resources)
    .filter(([, resource]) => resource.Type === 'AWS::SQS::Queue')
    .map(([logicalId, { Properties }]) => toDeclaredQueue(logicalId, Properties, variables));
}

function toDeclaredQueue(
  logicalId: string,
  properties: Record<string, unknown>,
  variables: Record<string, string>,
): DeclaredQueue {
  const queue: DeclaredQueue = {
    logicalId,
    name: substitute(String(properties.QueueName), variables),
    attributes: {},
  };
  for (const [property, value] of Object.entries(properties)) {
    if (SQS_ATTRIBUTES.has(property)) queue.attributes[property] = String(value);
    else if (property === 'RedrivePolicy') queue.redrive = redriveOf(logicalId, value);
    else if (property !== 'QueueName' && !LOCALLY_IRRELEVANT.has(property)) {
      // A new property must be mapped (or found irrelevant) here, or the local queue would differ.
      throw new Error(`infra/queues.yml: ${logicalId}.${property} has no local equivalent`);
    }
  }
  return queue;
}

function redriveOf(logicalId: string, policy: unknown): DeclaredQueue['redrive'] {
  const { deadLetterTargetArn, maxReceiveCount } = policy as Record<string, unknown>;
  const target = (deadLetterTargetArn as { 'Fn::GetAtt'?: string[] } | undefined)?.['Fn::GetAtt'];
  if (target?.[1] !== 'Arn' || target[0] === undefined) {
    throw new Error(`infra/queues.yml: ${logicalId}'s deadLetterTargetArn must be !GetAtt <queue>.Arn`);
  }
  return { deadLetterTargetId: target[0], maxReceiveCount: Number(maxReceiveCount) };
}

/** Serverless variables such as `${sls:stage}`, from `variables`; any other is an error. */
function substitute(text: string, variables: Record<string, string>): string {
  return text.replace(/\$\{([^}]+)\}/g, (variable, name: string) => {
    const value = variables[name];
    if (value === undefined) throw new Error(`infra/queues.yml: no local value for ${variable}`);
    return value;
  });
}
