import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { createDynamoAuditLog } from '../../lib/adapters/dynamo-sync-state.js';
import { createSqsChangeQueue } from '../../lib/adapters/sqs-queues.js';
import type { IdentityChange } from '../../lib/identity-change.js';
import type { ChangeQueue } from '../../lib/ports.js';
import { auditedValue, identifierKeyOf } from '../../lib/privacy/identifier-digest.js';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { DEMO_TENANT } from '../../scripts/local-stack/demo-tenant.js';
import { putTenantSecrets, TABLE_NAME } from '../../scripts/local-stack/peers.js';
import { aChange } from '../support/factories.js';
import { type Harness, useHarness } from '../support/harness.js';

/** An email as the audit trail keeps it for the demo tenant. */
const audited = (email: string) => auditedValue(identifierKeyOf(DEMO_TENANT), 'email', email);

/**
 * Each situation of the decision table, through the real worker (queue → resolver → Klaviyo
 * sandbox, state and audit in dynalite). Changes are queued as the intake would queue them.
 */
let harness: Harness;
let klaviyo: KlaviyoSandbox;
let queue: ChangeQueue;
let serial = 0;
let clock = Date.parse('2026-06-01T00:00:00Z');

const uniqueId = (label: string) => `${label}-${++serial}`;
/** Emails unique to one test: Klaviyo identifiers are unique across the shared sandbox. */
function emailsOfThisTest() {
  const run = ++serial;
  return (label: string) => `${label}.${run}@example.com`;
}

async function apply(...changes: Partial<IdentityChange>[]) {
  for (const change of changes) {
    clock += 1000;
    await queue.enqueue(
      aChange({
        tenant: DEMO_TENANT.tenant,
        phoneNumber: undefined,
        occurredAt: new Date(clock).toISOString(),
        sourceEventId: uniqueId('event'),
        ...change,
      }),
    );
  }
  await harness.drain(30_000);
}

const requestsTo = (path: string) => klaviyo.requests.filter((request) => request.path === path);

useHarness(
  {
    env: {
      CONFLICT_RETRY_ATTEMPTS: '2',
      TENANT_POLICIES: JSON.stringify({
        strict: { onMissingProfile: 'skip', onDuplicateProfile: 'park' },
        rehearsal: { dryRun: true },
      }),
    },
  },
  (started) => {
    harness = started;
    klaviyo = started.peers.klaviyo as KlaviyoSandbox;
    queue = createSqsChangeQueue(harness.peers.sqs, harness.peers.queueUrl);
    for (const tenant of ['strict', 'rehearsal']) {
      putTenantSecrets(harness.peers.secrets, tenant, { klaviyoPrivateKey: DEMO_TENANT.klaviyoPrivateKey });
    }
  },
);

describe('finding the profile', () => {
  it('finds a profile by the previous email and binds the external_id in the same PATCH', async () => {
    const email = emailsOfThisTest();
    const externalId = uniqueId('erp');
    const profile = klaviyo.seedProfile({ email: email('before') });
    await apply({ externalId, previous: { email: email('before') }, email: email('after') });
    expect(klaviyo.getProfile(profile.id)).toMatchObject({ email: email('after'), external_id: externalId });
    const patches = requestsTo(`/api/profiles/${profile.id}`).filter((request) => request.method === 'PATCH');
    expect(patches).toHaveLength(1);
  });

  it('finds a profile by the previous phone', async () => {
    const externalId = uniqueId('erp');
    const profile = klaviyo.seedProfile({ phone_number: '+14155551201' });
    await apply({
      externalId,
      previous: { phoneNumber: '+14155551201' },
      phoneNumber: '+14155551202',
      email: undefined,
    });
    expect(klaviyo.getProfile(profile.id)).toMatchObject({
      phone_number: '+14155551202',
      external_id: externalId,
    });
  });

  it("binds a profile Klaviyo's own Shopify integration keyed by email only", async () => {
    const email = emailsOfThisTest();
    const externalId = uniqueId('shopify');
    const profile = klaviyo.seedProfile({ email: email('integration') });
    await apply({ externalId, email: email('integration') });
    expect(klaviyo.getProfile(profile.id)?.external_id).toBe(externalId);
    expect(klaviyo.listProfiles().filter((p) => p.email === email('integration'))).toHaveLength(1);
  });

  it('does not take a profile found by the previous email that belongs to another customer', async () => {
    const email = emailsOfThisTest();
    const externalId = uniqueId('erp');
    const someoneElse = klaviyo.seedProfile({ email: email('shared'), external_id: uniqueId('other') });
    await apply({ externalId, previous: { email: email('shared') }, email: email('mine') });
    expect(klaviyo.getProfile(someoneElse.id)?.email).toBe(email('shared'));
    expect(klaviyo.findProfile({ external_id: externalId })).toMatchObject({ email: email('mine') });
  });

  it('creates nothing when the tenant says to skip changes with no profile', async () => {
    const email = emailsOfThisTest();
    const externalId = uniqueId('strict');
    await apply({ tenant: 'strict', externalId, email: email('nobody') });
    expect(klaviyo.findProfile({ external_id: externalId })).toBeUndefined();
    expect(requestsTo('/api/profile-import')).toHaveLength(0);
  });
});

describe('conflicts', () => {
  it('parks a duplicate instead of merging when the tenant says park', async () => {
    const email = emailsOfThisTest();
    const externalId = uniqueId('strict');
    const ours = klaviyo.seedProfile({ external_id: externalId, email: email('strict.old') });
    const duplicate = klaviyo.seedProfile({ email: email('strict.new') });
    await apply({ tenant: 'strict', externalId, email: email('strict.new') });
    const [parked] = await harness.takeDeadLetters();
    expect(parked?.reason).toBe('duplicate_profile');
    expect(parked?.letter).toMatchObject({ context: { profileId: ours.id, holderId: duplicate.id } });
    expect(klaviyo.getProfile(duplicate.id)).toBeDefined();
    expect(requestsTo('/api/profile-merge')).toHaveLength(0);
  });

  it.each([
    ['A first', false],
    ['B first', true],
  ])('settles a two-customer swap of emails without a merge (%s)', async (_order, bFirst) => {
    const email = emailsOfThisTest();
    const [a, b] = [uniqueId('swap-a'), uniqueId('swap-b')];
    const [x, y] = [email('swap-x'), email('swap-y')];
    const profileA = klaviyo.seedProfile({ external_id: a, email: x });
    const profileB = klaviyo.seedProfile({ external_id: b, email: y });
    const changes = [
      { externalId: a, email: y },
      { externalId: b, email: x },
    ];
    await apply(...(bFirst ? changes.reverse() : changes));
    expect(klaviyo.getProfile(profileA.id)?.email).toBe(y);
    expect(klaviyo.getProfile(profileB.id)?.email).toBe(x);
    expect(requestsTo('/api/profile-merge')).toHaveLength(0);
    expect(await harness.takeDeadLetters()).toEqual([]);
  });
});

describe('dry run and audit', () => {
  it('looks up and plans in dry run, but writes nothing', async () => {
    const email = emailsOfThisTest();
    const externalId = uniqueId('rehearsal');
    const profile = klaviyo.seedProfile({ external_id: externalId, email: email('dry.old') });
    await apply({ tenant: 'rehearsal', externalId, email: email('dry.new') });
    expect(klaviyo.getProfile(profile.id)?.email).toBe(email('dry.old'));
    expect(klaviyo.requests.filter((request) => request.method !== 'GET')).toEqual([]);
    expect(klaviyo.requests.length).toBeGreaterThan(0);
  });

  it('records every decision with the identifiers before and after', async () => {
    const email = emailsOfThisTest();
    const externalId = uniqueId('audited');
    const profile = klaviyo.seedProfile({ email: email('audit.before') });
    await apply({ externalId, previous: { email: email('audit.before') }, email: email('audit.after') });
    await apply({ externalId, email: email('audit.after') });
    const history = await createDynamoAuditLog(harness.peers.dynamodb, TABLE_NAME, 400).history(
      'demo',
      externalId,
    );
    expect(history.map((entry) => entry.outcome)).toEqual(['unchanged', 'bound']);
    expect(history[1]).toMatchObject({
      plan: 'patch',
      profileIds: [profile.id],
      // Masked and digested with the tenant secret's identifierKey: no email as it is.
      before: { email: audited(email('audit.before')), external_id: null },
      after: { email: audited(email('audit.after')), external_id: externalId },
    });
    expect(JSON.stringify(history)).not.toContain(email('audit.before'));
  });
});

describe('replay', () => {
  it('applies a parked change moved back from the dead-letter queue as it is', async () => {
    const email = emailsOfThisTest();
    const externalId = uniqueId('replayed');
    const holder = klaviyo.seedProfile({ email: email('contested'), external_id: uniqueId('holder') });
    const profile = klaviyo.seedProfile({ external_id: externalId, email: email('mine') });
    await apply({ externalId, email: email('contested') });
    const [parked] = await harness.takeDeadLetters();
    expect(parked?.reason).toBe('identifier_held_by_other_customer');

    // The other customer lets go of the email; then the letter is redriven unchanged.
    klaviyo.deleteProfile(holder.id);
    await harness.peers.sqs.send(
      new SendMessageCommand({
        QueueUrl: harness.peers.queueUrl,
        MessageBody: JSON.stringify(parked?.letter),
        MessageGroupId: 'replay',
        MessageDeduplicationId: uniqueId('replay'),
      }),
    );
    await harness.drain();
    expect(klaviyo.getProfile(profile.id)?.email).toBe(email('contested'));
  });
});
