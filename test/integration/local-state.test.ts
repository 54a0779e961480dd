import { join } from 'node:path';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { localStateDir } from '../../scripts/local-stack/local-state.js';
import { type LocalPeers, startLocalPeers, TABLE_NAME } from '../../scripts/local-stack/peers.js';
import { useTempDir } from '../support/temp-dir.js';

/** `npm start --persist`: the peers keep their state in a folder across a restart. */
const stateDir = useTempDir('local-state');

describe('the local state', () => {
  it('is kept in .local/ with --persist (as npm passes it on) or in LOCAL_STATE_DIR; else in memory', () => {
    expect(localStateDir('/repo', {}, ['node', 'start-local.ts'])).toBeUndefined();
    expect(localStateDir('/repo', {}, ['node', 'start-local.ts', '--persist'])).toBe(join('/repo', '.local'));
    expect(localStateDir('/repo', { npm_config_persist: 'true' }, [])).toBe(join('/repo', '.local'));
    expect(localStateDir('/repo', { LOCAL_STATE_DIR: 'state' }, [])).toBe(join('/repo', 'state'));
  });

  it('survives a restart: queued and parked messages, the table, the sandbox profiles', async () => {
    let peers: LocalPeers | undefined = await startLocalPeers({ stateDir: stateDir() });
    let profileId: string;
    try {
      await peers.sqs.send(
        new SendMessageCommand({
          QueueUrl: peers.deadLetterQueueUrl,
          MessageBody: '{"kept":true}',
          MessageGroupId: 'g',
          MessageDeduplicationId: 'kept-1',
        }),
      );
      await peers.dynamodb.send(
        new PutItemCommand({ TableName: TABLE_NAME, Item: { pk: { S: 'kept' }, sk: { S: '1' } } }),
      );
      profileId = (peers.klaviyo as KlaviyoSandbox).seedProfile({
        email: 'kept@example.com',
        external_id: 'kept-1',
      }).id;
    } finally {
      await peers.stop();
    }

    peers = await startLocalPeers({ stateDir: stateDir() });
    try {
      const { Messages = [] } = await peers.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: peers.deadLetterQueueUrl, MaxNumberOfMessages: 10 }),
      );
      expect(Messages.map((message) => message.Body)).toEqual(['{"kept":true}']);
      const { Item } = await peers.dynamodb.send(
        new GetItemCommand({ TableName: TABLE_NAME, Key: { pk: { S: 'kept' }, sk: { S: '1' } } }),
      );
      expect(Item).toBeDefined();
      expect(peers.klaviyo?.getProfile(profileId)).toMatchObject({
        email: 'kept@example.com',
        external_id: 'kept-1',
      });
      // The demo customer is there once, not seeded again over the kept one.
      expect(
        peers.klaviyo
          ?.listProfiles()
          .filter((profile) => profile.external_id === DEMO_TENANT.customer.externalId),
      ).toHaveLength(1);
    } finally {
      await peers.stop();
      peers = undefined;
    }
  });
});
