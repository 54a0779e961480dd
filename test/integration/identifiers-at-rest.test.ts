import { type AttributeValue, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKlaviyoKeys } from '../../lib/adapters/tenant-secrets.js';
import { identifierKeysOf } from '../../lib/composition.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import { customerRecordKey } from '../../lib/privacy/identifier-digest.js';
import type { WorkerDependencies } from '../../lib/sync/handle-message.js';
import { processQueuedBatch, type QueuedRecord } from '../../lib/sync/receive-batch.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { LOCAL_CREDENTIALS, TABLE_NAME, TENANT_SECRET_PREFIX } from '../../scripts/local-stack/peers.js';
import { aChange } from '../support/factories.js';
import { aLocalWorker, useLocalPeers } from '../support/local-peers.js';

/**
 * Minimal at rest: after changes go through the worker's path (DynamoDB in dynalite, the tenant
 * secret from the local Secrets Manager endpoint, the Klaviyo sandbox), no customer's email or
 * phone is anywhere in the state table, in any attribute, in any case.
 */
const peers = useLocalPeers();
let secretsClient: SecretsManagerClient;
beforeAll(() => {
  secretsClient = new SecretsManagerClient({
    region: 'us-east-1',
    endpoint: peers.secrets.url,
    credentials: LOCAL_CREDENTIALS,
  });
});
afterAll(() => secretsClient?.destroy());

const tenant = DEMO_TENANT.tenant;
const FIRST = '2026-05-01T12:00:00.000Z';
const LATER = '2026-05-01T13:00:00.000Z';

function worker(): WorkerDependencies {
  const secrets = createKlaviyoKeys({
    prefix: TENANT_SECRET_PREFIX,
    cacheTtlSeconds: 60,
    minFreshIntervalSeconds: 1,
    client: secretsClient,
  });
  return aLocalWorker(peers, { identifierKeyFor: identifierKeysOf(secrets) });
}

const queued = (change: IdentityChange): QueuedRecord => ({
  id: change.sourceEventId,
  groupId: `${change.tenant}:${change.externalId}`,
  body: JSON.stringify(change),
  attempt: 1,
});

/** Every item of the table, as one lower-cased text: whatever attribute a value would hide in. */
async function wholeTableText(): Promise<string> {
  const items: Record<string, AttributeValue>[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await peers.dynamodb.send(
      new ScanCommand({ TableName: TABLE_NAME, ExclusiveStartKey: startKey }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return JSON.stringify(items).toLowerCase();
}

/** A value in every form it could be found in: as it is, lower-cased, a phone's digits without `+`. */
const formsOf = (value: string) => [value.toLowerCase(), ...(value.startsWith('+') ? [value.slice(1)] : [])];

const sandbox = () => {
  if (!peers.klaviyo) throw new Error('these tests need the Klaviyo sandbox');
  return peers.klaviyo;
};

describe('identifiers at rest', () => {
  it('reads a record in the old plaintext format as no record: one lookup, and the plaintext is removed', async () => {
    const profile = sandbox().seedProfile({
      external_id: 'legacy-1',
      email: 'Legacy.Person@Example.com',
      phone_number: '+14155550177',
    });
    // As the worker wrote it before digests: identifiers and a pending change in plaintext.
    await peers.dynamodb.send(
      new PutItemCommand({
        TableName: TABLE_NAME,
        Item: {
          pk: { S: customerRecordKey(tenant, 'legacy-1') },
          sk: { S: 'state' },
          lastOccurredAt: { S: FIRST },
          lastOccurredAtMs: { N: String(Date.parse(FIRST)) },
          profileId: { S: profile.id },
          identifiers: {
            S: JSON.stringify({ email: 'Legacy.Person@Example.com', phone_number: '+14155550177' }),
          },
          pending: {
            S: JSON.stringify({
              identifiers: { email: 'legacy.wanted@example.com' },
              occurredAt: FIRST,
              sourceEventId: 'old-pending',
            }),
          },
        },
      }),
    );
    sandbox().clearRequests();
    const change = aChange({
      tenant,
      externalId: 'legacy-1',
      email: 'Legacy.Person@Example.com',
      phoneNumber: '+14155550177',
      occurredAt: LATER,
    });

    expect(await processQueuedBatch([queued(change)], worker())).toEqual({ failed: [] });

    // The plaintext record was not trusted: the profile was looked up once, and nothing written.
    expect(sandbox().requests.map((request) => request.method)).toEqual(['GET']);
    const text = await wholeTableText();
    for (const value of ['legacy.person@example.com', '14155550177', 'legacy.wanted@example.com']) {
      expect(text).not.toContain(value);
    }
  });

  it('keeps no email or phone of ten customers anywhere in the table once their changes are applied', async () => {
    const deps = worker();
    const customers = Array.from({ length: 10 }, (_, i) => {
      const n = String(i).padStart(2, '0');
      return {
        externalId: `at-rest-${n}`,
        old: { email: `Old.Customer${n}@Example.com`, phone: `+141555502${n}` },
        new: { email: `New.Customer${n}@Example.com`, phone: `+141555503${n}` },
      };
    });
    const profiles = customers.map((customer) =>
      sandbox().seedProfile({
        external_id: customer.externalId,
        email: customer.old.email,
        phone_number: customer.old.phone,
      }),
    );
    const changeOf = (customer: (typeof customers)[number], occurredAt: string) =>
      aChange({
        tenant,
        externalId: customer.externalId,
        email: customer.new.email,
        phoneNumber: customer.new.phone,
        occurredAt,
      });

    // Applied (found by external_id, one PATCH each) ...
    expect(
      await processQueuedBatch(
        customers.map((c) => queued(changeOf(c, FIRST))),
        deps,
      ),
    ).toEqual({
      failed: [],
    });
    for (const [i, customer] of customers.entries()) {
      expect(sandbox().getProfile(profiles[i]?.id ?? '')).toMatchObject({
        email: customer.new.email,
        phone_number: customer.new.phone,
      });
    }
    // ... delivered again: answered from the digests alone, no Klaviyo request ...
    sandbox().clearRequests();
    expect(
      await processQueuedBatch(
        customers.map((c) => queued(changeOf(c, LATER))),
        deps,
      ),
    ).toEqual({
      failed: [],
    });
    expect(sandbox().requests).toEqual([]);
    // ... and one blocked by another customer's email: its change waits, pending, in the record.
    const [first, second] = customers;
    if (!first || !second) throw new Error('ten customers');
    const blocked = aChange({
      tenant,
      externalId: first.externalId,
      email: second.new.email,
      phoneNumber: undefined,
      occurredAt: '2026-05-01T14:00:00.000Z',
    });
    expect((await processQueuedBatch([queued(blocked)], deps)).failed).toHaveLength(1);
    expect((await deps.state.getState(tenant, first.externalId)).pending).toMatchObject({
      sealedIdentifiers: expect.stringMatching(/^v1\./),
    });
    expect(await deps.audit.history(tenant, first.externalId)).toHaveLength(2);

    const text = await wholeTableText();
    for (const customer of customers) {
      for (const value of [customer.old.email, customer.old.phone, customer.new.email, customer.new.phone]) {
        for (const form of formsOf(value)) expect(text, `${form} is in the table`).not.toContain(form);
      }
    }
  });
});
