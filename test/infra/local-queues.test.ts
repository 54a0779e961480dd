import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { expect, it } from 'vitest';
import { offlineEnvironment } from '../../scripts/local-stack/offline.js';
import { startLocalPeers } from '../../scripts/local-stack/peers.js';
import { type Json, localServiceConfig, type Resource } from '../support/osls.js';

/**
 * The local stack's queues are those infra/queues.yml declares, as osls itself resolves them for
 * stage `local`: same names, and every plain property and the redrive policy as SQS attributes.
 */
it('creates the queues of infra/queues.yml, with their attributes', async () => {
  const peers = await startLocalPeers();
  try {
    const env = offlineEnvironment({ env: peers.env, httpPort: 3000, lambdaPort: 3002 });
    const { Resources } = (await localServiceConfig(env)).resources as {
      Resources: Record<string, Resource>;
    };
    const queues = Object.entries(Resources).filter(([, resource]) => resource.Type === 'AWS::SQS::Queue');
    expect(queues.length).toBeGreaterThan(0);

    const attributesOf = async (queueName: unknown) => {
      const { QueueUrl } = await peers.sqs.send(new GetQueueUrlCommand({ QueueName: String(queueName) }));
      const command = new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] });
      return ((await peers.sqs.send(command)).Attributes ?? {}) as Record<string, string | undefined>;
    };
    for (const [logicalId, { Properties }] of queues) {
      const attributes = await attributesOf(Properties.QueueName);
      for (const [property, value] of Object.entries(Properties)) {
        if (property === 'QueueName' || typeof value === 'object') continue;
        expect(attributes[property], `${logicalId}.${property}`).toBe(String(value));
      }
      const redrive = Properties.RedrivePolicy as Json | undefined;
      if (!redrive) continue;
      const [targetId] = (redrive.deadLetterTargetArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'];
      const target = await attributesOf(Resources[targetId as string]?.Properties.QueueName);
      expect(JSON.parse(attributes.RedrivePolicy ?? '{}'), `${logicalId}.RedrivePolicy`).toEqual({
        deadLetterTargetArn: target.QueueArn,
        maxReceiveCount: redrive.maxReceiveCount,
      });
    }
  } finally {
    await peers.stop();
  }
});
