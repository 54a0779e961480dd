import { describe, expect, it, vi } from 'vitest';
import type { DeadLetter } from '../../lib/dead-letter.js';
import { TransientError } from '../../lib/errors.js';
import {
  type Identifiers,
  type IdentityChange,
  messageGroupOf,
  serializeQueuedChange,
} from '../../lib/identity-change.js';
import type { KlaviyoProfiles, MovedMessage, SyncStateStore } from '../../lib/ports.js';
import { processQueuedChange } from '../../lib/sync/handle-message.js';
import { type BatchOptions, processQueuedBatch, type QueuedRecord } from '../../lib/sync/receive-batch.js';
import {
  aChange,
  aCustomerMerge,
  aMemoryWorker,
  type MemoryWorkerOptions,
  recordedDigestsOf,
} from '../support/factories.js';
import { klaviyoError } from '../support/memory-klaviyo.js';

/** The worker's batches, with Klaviyo, state and queues in memory. */
const FIRST = '2026-05-01T12:00:00.000Z';
const LATER = '2026-05-01T13:00:00.000Z';

function worker(options: MemoryWorkerOptions = {}) {
  const world = aMemoryWorker({ ...options, now: LATER });
  const run = (records: QueuedRecord[], options?: BatchOptions) =>
    processQueuedBatch(records, world.deps, options);
  return {
    ...world,
    run,
    /** A customer whose profile the state knows, as a first applied change leaves it. */
    knownCustomer: (externalId: string) =>
      world.knownCustomer(externalId, `${externalId}@example.com`, FIRST),
  };
}

/** The change as the queue delivers it: its group is its customer. */
const queued = (change: IdentityChange): QueuedRecord => ({
  id: change.sourceEventId,
  groupId: messageGroupOf(change),
  body: JSON.stringify(change),
  attempt: 1,
});

/** Customer `externalId`'s change to `email`, after the first one recorded. */
const emailChange = (externalId: string, email: string, occurredAt = LATER) =>
  aChange({ externalId, email, phoneNumber: undefined, occurredAt });

/** Klaviyo whose PATCHes first go through `before` (to hold them up or fail them). */
const beforeEachUpdate =
  (before: (id: string, attributes: Identifiers) => Promise<void>) =>
  (klaviyo: KlaviyoProfiles): KlaviyoProfiles => ({
    ...klaviyo,
    async updateProfile(id, attributes) {
      await before(id, attributes);
      return klaviyo.updateProfile(id, attributes);
    },
  });

const ids = (records: QueuedRecord[]) => records.map((record) => record.id);

describe('processQueuedBatch', () => {
  it('resolves known, email-only and new customers with the lookups batched', async () => {
    const { klaviyo, counts, run, knownCustomer, stateOf } = worker();
    const known = await knownCustomer('1001');
    const emailOnly = klaviyo.seed({ email: 'shopper@example.com' });
    const changes = [
      emailChange('1001', 'known.new@example.com'),
      aChange({ externalId: '1002', email: 'shopper@example.com', phoneNumber: '+14155550102' }),
      aChange({ externalId: '1003', email: 'first@example.com', phoneNumber: '+14155550103' }),
      // The new customer's next change finds the record its first one left.
      aChange({
        externalId: '1003',
        email: 'second@example.com',
        phoneNumber: '+14155550103',
        occurredAt: LATER,
      }),
    ];

    expect(await run(changes.map(queued))).toEqual({ failed: [] });

    expect(klaviyo.callsOf('findProfilesAmong')).toEqual([
      ['external_id', ['1002', '1003']],
      ['email', ['shopper@example.com', 'first@example.com']],
      ['phone_number', ['+14155550103']],
    ]);
    expect(klaviyo.callsOf('findProfiles')).toEqual([]);
    expect(klaviyo.callsOf('getProfile')).toEqual([]);
    const created = (await stateOf('1003')).profileId ?? '';
    expect(klaviyo.callsOf('importProfile')).toHaveLength(1);
    expect(klaviyo.callsOf('updateProfile')).toEqual(
      expect.arrayContaining([
        [known.id, { email: 'known.new@example.com' }],
        [emailOnly.id, { external_id: '1002', phone_number: '+14155550102' }],
        [created, { email: 'second@example.com' }],
      ]),
    );
    expect(klaviyo.callsOf('updateProfile')).toHaveLength(3);
    expect(Object.fromEntries(counts)).toEqual({ ChangeApplied: 2, ProfileBound: 1, ProfileCreated: 1 });
    expect(klaviyo.stored(created)).toMatchObject({ external_id: '1003', email: 'second@example.com' });
    expect(await stateOf('1002')).toMatchObject({
      profileId: emailOnly.id,
      digests: { email: recordedDigestsOf({ email: 'shopper@example.com' }).email },
    });
  });

  it("does not hold one customer's change up behind another customer's slow Klaviyo answer", async () => {
    let answerSlowOne = () => {};
    const slowAnswer = new Promise<void>((resolve) => {
      answerSlowOne = resolve;
    });
    let slowId = '';
    const { run, knownCustomer, stateOf } = worker({
      klaviyo: beforeEachUpdate(async (id) => {
        if (id === slowId) await slowAnswer;
      }),
    });
    slowId = (await knownCustomer('1001')).id;
    await knownCustomer('2002');

    const batch = run([
      queued(emailChange('1001', 'slow@example.com')),
      queued(emailChange('2002', 'quick@example.com')),
    ]);
    try {
      await vi.waitFor(async () =>
        expect((await stateOf('2002')).digests?.email).toBe(
          recordedDigestsOf({ email: 'quick@example.com' }).email,
        ),
      );
      expect((await stateOf('1001')).lastAppliedAt).toBe(FIRST);
    } finally {
      answerSlowOne();
    }
    expect(await batch).toEqual({ failed: [] });
    expect((await stateOf('1001')).digests?.email).toBe(
      recordedDigestsOf({ email: 'slow@example.com' }).email,
    );
  });

  it('hands back a change that failed for now with the rest of its group, and only those', async () => {
    const { klaviyo, run, knownCustomer, stateOf } = worker({
      klaviyo: beforeEachUpdate(async (_id, attributes) => {
        if (attributes.email === 'boom@example.com')
          throw klaviyoError(503, 'server_error', { method: 'PATCH' });
      }),
    });
    await knownCustomer('1001');
    await knownCustomer('2002');
    const a1 = emailChange('1001', 'a1@example.com', '2026-05-01T12:10:00.000Z');
    const a2 = emailChange('1001', 'boom@example.com', '2026-05-01T12:20:00.000Z');
    const a3 = emailChange('1001', 'a3@example.com', '2026-05-01T12:30:00.000Z');
    const b1 = emailChange('2002', 'b1@example.com', '2026-05-01T12:10:00.000Z');
    const b2 = emailChange('2002', 'b2@example.com', '2026-05-01T12:20:00.000Z');
    const records = [a1, b1, a2, b2, a3].map(queued);

    const { failed } = await run(records);

    expect(ids(failed)).toEqual([a2.sourceEventId, a3.sourceEventId]);
    expect((await stateOf('1001')).digests?.email).toBe(recordedDigestsOf({ email: 'a1@example.com' }).email);
    expect((await stateOf('2002')).digests?.email).toBe(recordedDigestsOf({ email: 'b2@example.com' }).email);
    // The rest of the failed group was not started: it must come back after the failed one.
    expect(klaviyo.callsOf('updateProfile').map(([, attributes]) => attributes)).not.toContainEqual({
      email: 'a3@example.com',
    });
  });

  it('hands every change back, spending no Klaviyo request, when there is no time for another', async () => {
    const { klaviyo, logs, run, knownCustomer } = worker();
    await knownCustomer('1001');
    const records = [emailChange('1001', 'a@example.com'), aChange({ externalId: '1003' })].map((change) =>
      queued(change),
    );

    const { failed } = await run(records, { hasTimeForAnother: () => false });

    expect(failed).toEqual(records);
    expect(klaviyo.calls).toEqual([]);
    expect(logs.filter((line) => line.level === 'warn')).toHaveLength(2);
  });

  it('still applies each change with its own lookups when the batched lookups fail', async () => {
    const { klaviyo, logs, run, stateOf } = worker();
    klaviyo.failNext('findProfilesAmong', klaviyoError(503, 'server_error'));
    const emailOnly = klaviyo.seed({ email: 'shopper@example.com' });
    const changes = [
      aChange({ externalId: '1002', email: 'shopper@example.com', phoneNumber: undefined }),
      aChange({ externalId: '1003', email: 'first@example.com', phoneNumber: undefined }),
    ];

    expect(await run(changes.map(queued))).toEqual({ failed: [] });

    expect(logs).toContainEqual(
      expect.objectContaining({ level: 'warn', message: expect.stringContaining('Batched lookups failed') }),
    );
    expect(klaviyo.callsOf('findProfiles')).toEqual(
      expect.arrayContaining([
        ['external_id', '1002'],
        ['email', 'shopper@example.com'],
        ['external_id', '1003'],
        ['email', 'first@example.com'],
      ]),
    );
    expect(await stateOf('1002')).toMatchObject({ profileId: emailOnly.id });
    expect(klaviyo.stored(emailOnly.id)?.external_id).toBe('1002');
    expect(klaviyo.callsOf('importProfile')).toEqual([[{ external_id: '1003', email: 'first@example.com' }]]);
  });

  it("reads each customer's state once for its first change, afresh for the next", async () => {
    const reads: string[] = [];
    const { run, knownCustomer, stateOf } = worker({
      state: (store) => ({
        ...store,
        getState: (tenant, externalId) => {
          reads.push(externalId);
          return store.getState(tenant, externalId);
        },
      }),
    });
    await knownCustomer('1001');
    const changes = [
      emailChange('1001', 'second@example.com', '2026-05-01T12:30:00.000Z'),
      emailChange('1001', 'third@example.com'),
      aChange({ externalId: '1003', email: 'first@example.com', phoneNumber: undefined }),
    ];

    expect(await run(changes.map(queued))).toEqual({ failed: [] });

    expect(reads.sort()).toEqual(['1001', '1001', '1003']);
    expect(await stateOf('1001')).toMatchObject({
      lastAppliedAt: LATER,
      digests: { email: recordedDigestsOf({ email: 'third@example.com' }).email },
    });
  });
});

describe('a crash between the PATCH and the state write', () => {
  /** A state store whose next `times` writes of an applied change fail, as if the worker had died there. */
  const crashingOnRecord =
    (times = 1) =>
    (store: SyncStateStore): SyncStateStore => ({
      ...store,
      async recordApplied(change) {
        if (times-- > 0) throw new TransientError('state_unavailable', 'DynamoDB UpdateItem failed');
        return store.recordApplied(change);
      },
    });

  it('converges on redelivery: the PATCH again (idempotent), then the record', async () => {
    const { klaviyo, store, deps, counts, knownCustomer, stateOf } = worker({ state: crashingOnRecord() });
    const ours = await knownCustomer('1001');
    const body = JSON.stringify(emailChange('1001', 'new@example.com'));

    await expect(processQueuedChange(body, deps)).rejects.toBeInstanceOf(TransientError);
    expect(klaviyo.stored(ours.id)?.email).toBe('new@example.com');
    expect((await stateOf('1001')).digests?.email).toBe(
      recordedDigestsOf({ email: '1001@example.com' }).email,
    );

    expect(await processQueuedChange(body, deps, { attempt: 2 })).toMatchObject({
      outcome: 'applied',
      profileId: ours.id,
    });
    expect(klaviyo.callsOf('updateProfile')).toEqual([
      [ours.id, { email: 'new@example.com' }],
      [ours.id, { email: 'new@example.com' }],
    ]);
    expect(klaviyo.stored(ours.id)).toMatchObject({ external_id: '1001', email: 'new@example.com' });
    expect(await stateOf('1001')).toEqual({
      lastAppliedAt: LATER,
      profileId: ours.id,
      digests: recordedDigestsOf({ email: 'new@example.com', phone_number: null }),
    });
    expect(await store.history('acme', '1001')).toMatchObject([{ outcome: 'applied' }]);
    expect(Object.fromEntries(counts)).toEqual({ ChangeRetried: 1, ChangeApplied: 1 });
  });

  it('converges on redelivery after a create: the profile is found, not created twice', async () => {
    const { klaviyo, deps, stateOf } = worker({ state: crashingOnRecord() });
    const body = JSON.stringify(aChange({ externalId: '1003', email: 'first@example.com' }));

    await expect(processQueuedChange(body, deps)).rejects.toBeInstanceOf(TransientError);
    const result = await processQueuedChange(body, deps, { attempt: 2 });

    const recorded = await stateOf('1003');
    expect(result).toMatchObject({ outcome: 'unchanged', profileId: recorded.profileId });
    expect(klaviyo.callsOf('importProfile')).toHaveLength(1);
    expect(recorded.digests).toEqual(
      recordedDigestsOf({ email: 'first@example.com', phone_number: '+14155550123' }),
    );
    expect(klaviyo.stored(recorded.profileId ?? '')).toMatchObject({ external_id: '1003' });
  });
});

describe('a queued message still failing after MAX_CHANGE_AGE_HOURS', () => {
  const HOUR = 3_600_000;
  const retries = { firstDelaySeconds: 30, maxDelaySeconds: 900, maxChangeAgeMs: 72 * HOUR };
  const failingKlaviyo = (klaviyo: KlaviyoProfiles): KlaviyoProfiles => ({
    ...klaviyo,
    findProfilesAmong: async () => {
      throw klaviyoError(503, 'server_error', { method: 'GET' });
    },
    findProfiles: async () => {
      throw klaviyoError(503, 'server_error', { method: 'GET' });
    },
  });

  /** The worker with the retry schedule, its letters kept with the message each was parked from. */
  function exhaustedWorker() {
    const world = worker({ klaviyo: failingKlaviyo });
    const parked: { letter: DeadLetter; from: MovedMessage | undefined }[] = [];
    const deps = {
      ...world.deps,
      deadLetters: {
        park: async (letter: DeadLetter, from?: MovedMessage) => void parked.push({ letter, from }),
      },
      redeliveries: { retryAfter: async () => undefined },
      retries,
    };
    /** Delivered for the 290th time, queued 73 hours ago. */
    const exhausted = (id: string, body: string, groupId: string): QueuedRecord => ({
      id,
      groupId,
      body,
      attempt: 290,
      receiptHandle: `handle-${id}`,
      sentAt: Date.parse(LATER) - 73 * HOUR,
    });
    return { parked, exhausted, run: (records: QueuedRecord[]) => processQueuedBatch(records, deps) };
  }

  it('parks a Shopify customer merge like a change: reason, last error and deliveries, from its message', async () => {
    const { parked, exhausted, run } = exhaustedWorker();
    const merge = aCustomerMerge();

    const { failed } = await run([exhausted('m-merge', serializeQueuedChange(merge), messageGroupOf(merge))]);

    expect(failed).toEqual([]);
    expect(parked).toEqual([
      {
        letter: expect.objectContaining({
          reason: 'retries_exhausted',
          detail: expect.stringMatching(/^still failing after 290 deliveries since .*: /),
          externalId: merge.deletedExternalId,
          merge,
          context: expect.objectContaining({ attempts: 290, lastReason: expect.stringMatching(/^klaviyo_/) }),
        }),
        from: { messageId: 'm-merge', sentAt: Date.parse(LATER) - 73 * HOUR },
      },
    ]);
  });

  it('parks a change replayed from a letter again, from the replayed message', async () => {
    const { parked, exhausted, run } = exhaustedWorker();
    const change = aChange({ externalId: '3003' });
    const letter = {
      reason: 'klaviyo_invalid',
      detail: 'x',
      source: 'shopify',
      sourceEventId: change.sourceEventId,
      change,
      parkedAt: FIRST,
    };

    await run([exhausted('m-replayed', JSON.stringify(letter), messageGroupOf(change))]);

    expect(parked).toMatchObject([
      {
        letter: { reason: 'retries_exhausted', change, context: { attempts: 290 } },
        from: { messageId: 'm-replayed' },
      },
    ]);
  });
});
