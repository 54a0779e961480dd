import { describe, expect, it } from 'vitest';
import { createDynamoAuditLog, createDynamoSyncState } from '../../lib/adapters/dynamo-sync-state.js';
import { TransientError } from '../../lib/errors.js';
import { defaultPolicies } from '../../lib/policies.js';
import type { AppliedChange, SyncStateStore } from '../../lib/ports.js';
import { processQueuedChange } from '../../lib/sync/handle-message.js';
import { syncIdentityChange } from '../../lib/sync/sync-identity-change.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { TABLE_NAME } from '../../scripts/local-stack/peers.js';
import { aChange, anAppliedChange, recordedDigestsOf, testIdentifierKeyFor } from '../support/factories.js';
import { aLocalWorker, useLocalPeers } from '../support/local-peers.js';

/**
 * The customer's record in DynamoDB (dynalite, the real SDK client): what the record path and the
 * staleness guard rest on, and how a worker that died between Klaviyo's PATCH and the state write
 * converges when the change is delivered again.
 */
const peers = useLocalPeers();

const FIRST = '2026-05-01T12:00:00.000Z';
const LATER = '2026-05-01T13:00:00.000Z';
const tenant = DEMO_TENANT.tenant;

const store = () => createDynamoSyncState(peers.dynamodb, TABLE_NAME);

const appliedChange = (externalId: string, overrides: Partial<AppliedChange> = {}) =>
  anAppliedChange(tenant, externalId, overrides);

// What every state store does is the contract's (sync-state-contract.test.ts); here, what rests on DynamoDB's.
describe('a crash between the PATCH and the state write', () => {
  it('converges when the change is delivered again: the PATCH repeated, then the record', async () => {
    const sandbox = peers.klaviyo;
    if (!sandbox) throw new Error('these tests need the Klaviyo sandbox');
    const profile = sandbox.seedProfile({ external_id: 'crash-1', email: 'crash.before@example.com' });
    const dynamo = store();
    await dynamo.recordApplied(
      appliedChange('crash-1', {
        profileId: profile.id,
        digests: recordedDigestsOf({ email: 'crash.before@example.com', phone_number: null }),
      }),
    );
    let crashes = 1;
    const crashingOnce: SyncStateStore = {
      ...dynamo,
      async recordApplied(change) {
        if (crashes-- > 0) throw new TransientError('state_unavailable', 'the worker died here');
        return dynamo.recordApplied(change);
      },
    };
    const audit = createDynamoAuditLog(peers.dynamodb, TABLE_NAME, 30);
    const deps = aLocalWorker(peers, { state: crashingOnce, audit });
    const change = aChange({
      tenant,
      externalId: 'crash-1',
      email: 'crash.after@example.com',
      phoneNumber: undefined,
      occurredAt: LATER,
    });
    const body = JSON.stringify(change);
    sandbox.clearRequests();

    await expect(processQueuedChange(body, deps)).rejects.toBeInstanceOf(TransientError);
    expect(sandbox.getProfile(profile.id)?.email).toBe('crash.after@example.com');
    expect((await dynamo.getState(tenant, 'crash-1')).lastAppliedAt).toBe(FIRST);

    expect(await processQueuedChange(body, deps, { attempt: 2 })).toMatchObject({
      outcome: 'applied',
      profileId: profile.id,
    });
    // Planned from the record both times: two identical PATCHes, no lookup.
    expect(sandbox.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      `PATCH /api/profiles/${profile.id}`,
      `PATCH /api/profiles/${profile.id}`,
    ]);
    expect(sandbox.getProfile(profile.id)).toMatchObject({
      email: 'crash.after@example.com',
      external_id: 'crash-1',
    });
    expect(await dynamo.getState(tenant, 'crash-1')).toEqual({
      lastAppliedAt: LATER,
      profileId: profile.id,
      digests: recordedDigestsOf({ email: 'crash.after@example.com', phone_number: null }),
    });
    expect(await audit.history(tenant, 'crash-1')).toMatchObject([
      { outcome: 'applied', sourceEventId: change.sourceEventId },
    ]);
  });
});

describe('a decision that changed nothing', () => {
  /** The real client, counting the writes it sends (PutItem, UpdateItem…) by command. */
  const countingWrites = () => {
    const writes: string[] = [];
    const client = Object.create(peers.dynamodb) as typeof peers.dynamodb;
    client.send = ((command: { constructor: { name: string } }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      if (/^(Put|Update|Delete)Item$/.test(name)) writes.push(name);
      return peers.dynamodb.send(command as never);
    }) as typeof client.send;
    return { client, writes };
  };

  it('costs one DynamoDB write (the state), and history still shows it, with how many there were', async () => {
    const { client, writes } = countingWrites();
    const state = createDynamoSyncState(client, TABLE_NAME);
    const audit = createDynamoAuditLog(client, TABLE_NAME, 1);
    const identifiers = { email: 'same@example.com', phone_number: null };
    await state.recordApplied(appliedChange('no-op', { digests: recordedDigestsOf(identifiers) }));
    writes.length = 0;

    const sync = (sourceEventId: string, occurredAt: string) =>
      syncIdentityChange(
        aChange({
          tenant,
          externalId: 'no-op',
          email: identifiers.email,
          phoneNumber: undefined,
          occurredAt,
          sourceEventId,
        }),
        {
          state,
          audit,
          klaviyo: () => Promise.reject(new Error('a no-op needs no Klaviyo client')),
          identifierKey: testIdentifierKeyFor,
          policies: defaultPolicies,
          clock: () => new Date(occurredAt),
        },
      );
    expect(await sync('unchanged-1', '2026-05-01T12:30:00.000Z')).toMatchObject({ outcome: 'unchanged' });
    expect(writes).toEqual(['UpdateItem']);
    expect(await sync('unchanged-2', LATER)).toMatchObject({ outcome: 'unchanged' });
    expect(writes).toEqual(['UpdateItem', 'UpdateItem']);

    expect(await audit.history(tenant, 'no-op')).toEqual([
      expect.objectContaining({
        outcome: 'unchanged',
        sourceEventId: 'unchanged-2',
        decidedAt: LATER,
        profileIds: ['01P'],
        reason: 'unchanged: the last of 2 such decisions',
      }),
    ]);
  });
});
