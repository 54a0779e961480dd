import { describe, expect, it } from 'vitest';
import { messageGroupOfLetter, readQueuedMessage, serializeDeadLetter } from '../../lib/dead-letter.js';
import { type CustomerMerge, type IdentityChange, messageGroupOf } from '../../lib/identity-change.js';
import { processQueuedChange } from '../../lib/sync/handle-message.js';
import { survivorOf } from '../../lib/sync/sync-customer-merge.js';
import { aChange, aCustomerMerge, aMemoryWorker, type MemoryWorkerOptions } from '../support/factories.js';
import { klaviyoError } from '../support/memory-klaviyo.js';

/**
 * Shopify customer merges carried out by the worker against Klaviyo and the sync state in memory:
 * one test per row of docs/applying-changes.md's merge rows, then the orderings a merge must survive.
 */
const NOW = '2026-05-01T12:00:09.000Z';
const MERGED_AT = '2026-05-01T12:00:00.000Z';
const KEPT = '2002';
const DELETED = '1001';

function worker(options: MemoryWorkerOptions = {}) {
  const world = aMemoryWorker({ ...options, now: NOW });
  const process = (message: CustomerMerge | IdentityChange | string) =>
    processQueuedChange(typeof message === 'string' ? message : JSON.stringify(message), world.deps);
  const writes = () =>
    world.klaviyo.calls.filter(({ method }) =>
      ['updateProfile', 'importProfile', 'mergeProfiles'].includes(method),
    );
  return {
    ...world,
    letters: world.deadLetters.letters,
    process,
    /** A customer whose profile the state knows, as a first applied change leaves it. */
    knownCustomer: (externalId: string, email: string) =>
      world.knownCustomer(externalId, email, '2026-04-01T00:00:00.000Z'),
    writes,
  };
}

describe('a completed merge, carried out', () => {
  it('merges the deleted customer’s profile into the kept one’s (merged), in one lookup', async () => {
    const { klaviyo, process, knownCustomer, stateOf, store, counts } = worker();
    const kept = await knownCustomer(KEPT, 'kept@example.com');
    const deleted = klaviyo.seed({
      external_id: DELETED,
      email: 'deleted@example.com',
      phone_number: '+14155550100',
    });

    const result = await process(aCustomerMerge());

    expect(result).toMatchObject({
      outcome: 'merged',
      profileId: kept.id,
      plan: { action: 'merge-profiles' },
    });
    expect(klaviyo.callsOf('findProfilesAmong')).toEqual([['external_id', [KEPT, DELETED]]]);
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([[kept.id, deleted.id]]);
    expect(klaviyo.stored(deleted.id)).toBeUndefined();
    // The kept profile keeps its external_id; the merge filled the phone it lacked.
    expect(klaviyo.stored(kept.id)).toMatchObject({ external_id: KEPT, phone_number: '+14155550100' });
    expect(Object.fromEntries(counts)).toEqual({ ProfileMerged: 1 });
    expect(await stateOf(DELETED)).toEqual({ mergedInto: KEPT, mergedAt: MERGED_AT });
    // The kept customer's record no longer vouches for identifiers the merge may have changed.
    expect(await stateOf(KEPT)).toEqual({ lastAppliedAt: '2026-04-01T00:00:00.000Z' });
    expect(await store.history('acme', DELETED)).toMatchObject([
      {
        outcome: 'merged',
        plan: 'merge-profiles',
        reason: `merged into customer ${KEPT}: merged profile ${deleted.id}`,
        profileIds: [kept.id, deleted.id],
      },
    ]);
    expect(await store.history('acme', KEPT)).toMatchObject([
      { outcome: 'merged', reason: `customer ${DELETED} merged into this one: merged profile ${deleted.id}` },
    ]);
  });

  it('re-keys the deleted customer’s profile when only it exists (bound)', async () => {
    const { klaviyo, process, counts } = worker();
    const deleted = klaviyo.seed({ external_id: DELETED, email: 'deleted@example.com' });
    const result = await process(aCustomerMerge());
    expect(result).toMatchObject({ outcome: 'bound', profileId: deleted.id, plan: { action: 'rekey' } });
    expect(klaviyo.callsOf('updateProfile')).toEqual([[deleted.id, { external_id: KEPT }]]);
    expect(klaviyo.stored(deleted.id)?.external_id).toBe(KEPT);
    expect(Object.fromEntries(counts)).toEqual({ ProfileBound: 1 });
  });

  it('has nothing to do when only the kept customer has a profile, and says so', async () => {
    const { klaviyo, process, writes, stateOf, store } = worker();
    const kept = klaviyo.seed({ external_id: KEPT, email: 'kept@example.com' });
    const result = await process(aCustomerMerge());
    expect(result).toMatchObject({ outcome: 'skipped', reason: 'nothing_to_merge', profileId: kept.id });
    expect(writes()).toEqual([]);
    expect((await stateOf(DELETED)).mergedInto).toBe(KEPT);
    expect(await store.history('acme', KEPT)).toMatchObject([
      { outcome: 'skipped', reason: 'nothing_to_merge' },
    ]);
  });

  it('has nothing to do when neither customer has a profile, and says so', async () => {
    const { process, writes, logs } = worker();
    expect(await process(aCustomerMerge())).toMatchObject({ outcome: 'skipped', reason: 'nothing_to_merge' });
    expect(writes()).toEqual([]);
    expect(logs).toContainEqual(
      expect.objectContaining({
        message: 'Change skipped',
        attributes: expect.objectContaining({
          externalId: DELETED,
          mergedInto: KEPT,
          reason: 'nothing_to_merge',
        }),
      }),
    );
  });
});

describe('a merge Shopify did not complete', () => {
  it('is skipped with its reason, without asking Klaviyo or marking anyone merged', async () => {
    const { process, klaviyoAsked, stateOf, store, counts } = worker();
    const result = await process(aCustomerMerge({ status: 'failed' }));
    expect(result).toMatchObject({ outcome: 'skipped', reason: 'merge_not_completed' });
    expect(klaviyoAsked()).toBe(0);
    expect(await stateOf(DELETED)).toEqual({});
    expect(Object.fromEntries(counts)).toEqual({ ChangeSkipped: 1 });
    expect(await store.history('acme', DELETED)).toMatchObject([
      { outcome: 'skipped', reason: 'merge_not_completed' },
    ]);
  });
});

describe('the deleted customer afterwards', () => {
  it('skips its later changes (merged_into_other_customer) and never makes it a profile again', async () => {
    const { klaviyo, process, writes, klaviyoAsked, store } = worker();
    klaviyo.seed({ external_id: DELETED, email: 'deleted@example.com' });
    await process(aCustomerMerge());
    const asked = klaviyoAsked();

    for (const occurredAt of ['2026-05-01T11:00:00.000Z', '2026-05-01T13:00:00.000Z']) {
      const late = aChange({ externalId: DELETED, email: 'deleted.new@example.com', occurredAt });
      expect(await process(late)).toMatchObject({
        outcome: 'skipped',
        plan: { reason: 'merged_into_other_customer' },
        reason: `merged into customer ${KEPT} at ${MERGED_AT}`,
      });
    }
    expect(klaviyoAsked()).toBe(asked);
    expect(writes()).toHaveLength(1); // the re-key alone
    expect(klaviyo.callsOf('importProfile')).toEqual([]);
    expect((await store.history('acme', DELETED))[0]).toMatchObject({
      reason: expect.stringContaining('merged into'),
    });
  });

  it('stays merged when a change of it recorded meanwhile (a race with another group) is written', async () => {
    const { store, stateOf } = worker();
    await store.recordMerged({
      tenant: 'acme',
      externalId: DELETED,
      intoExternalId: KEPT,
      mergedAt: MERGED_AT,
    });
    await store.recordApplied({
      tenant: 'acme',
      externalId: DELETED,
      occurredAt: '2026-05-01T12:30:00.000Z',
      sourceEventId: 'racing',
      profileId: '01RACE',
    });
    expect(await stateOf(DELETED)).toMatchObject({ mergedInto: KEPT, mergedAt: MERGED_AT });
  });
});

describe('orderings a merge survives', () => {
  it('goes in the deleted customer’s message group, after its own changes; a parked one stays there', () => {
    expect(messageGroupOf(aCustomerMerge())).toBe(`acme:${DELETED}`);
    expect(messageGroupOf(aCustomerMerge())).toBe(messageGroupOf(aChange({ externalId: DELETED })));
    const letter = {
      reason: 'klaviyo_invalid',
      detail: '',
      source: 'shopify' as const,
      sourceEventId: 'm',
      merge: aCustomerMerge(),
      parkedAt: NOW,
    };
    expect(messageGroupOfLetter(letter)).toBe(`acme:${DELETED}`);
  });

  it('merges into the customer the kept one was itself merged into since', async () => {
    const { klaviyo, process, store } = worker();
    const survivor = klaviyo.seed({ external_id: '3003', email: 'survivor@example.com' });
    const deleted = klaviyo.seed({ external_id: DELETED, email: 'deleted@example.com' });
    await store.recordMerged({
      tenant: 'acme',
      externalId: KEPT,
      intoExternalId: '3003',
      mergedAt: MERGED_AT,
    });
    expect(await process(aCustomerMerge())).toMatchObject({ outcome: 'merged', profileId: survivor.id });
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([[survivor.id, deleted.id]]);
  });

  it('follows merges into merges a bounded number of times, never back to the deleted customer', async () => {
    const merges: Record<string, string> = { [KEPT]: '3003', '3003': DELETED };
    expect(await survivorOf(KEPT, DELETED, async (id) => ({ mergedInto: merges[id] }))).toBe('3003');
    const endless = async (id: string) => ({ mergedInto: `${Number(id) + 1}` });
    expect(await survivorOf('10', DELETED, endless)).toBe('15');
  });

  it('merges after all when the kept customer’s profile appears while re-keying (409): looks again', async () => {
    let lookups = 0;
    const { klaviyo, process } = worker({
      klaviyo: (inner) => ({
        ...inner,
        async findProfilesAmong(field, values) {
          const found = await inner.findProfilesAmong(field, values);
          // The kept customer's own change (another message group) creates its profile meanwhile.
          if (++lookups === 1)
            klaviyo.seed({ id: '01KEPTNOW', external_id: KEPT, email: 'kept@example.com' });
          return found;
        },
      }),
    });
    const deleted = klaviyo.seed({ external_id: DELETED, email: 'deleted@example.com' });
    expect(await process(aCustomerMerge())).toMatchObject({ outcome: 'merged', profileId: '01KEPTNOW' });
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([['01KEPTNOW', deleted.id]]);
    expect(lookups).toBe(2);
  });

  it('does nothing more when delivered again: the profile is merged already', async () => {
    const { klaviyo, process } = worker();
    klaviyo.seed({ external_id: KEPT, email: 'kept@example.com' });
    klaviyo.seed({ external_id: DELETED, email: 'deleted@example.com' });
    await process(aCustomerMerge());
    expect(await process(aCustomerMerge())).toMatchObject({ outcome: 'skipped', reason: 'nothing_to_merge' });
    expect(klaviyo.callsOf('mergeProfiles')).toHaveLength(1);
  });
});

describe('policies, failures and replays', () => {
  it('plans and writes nothing in a dry run, not even the mark on the deleted customer', async () => {
    const { klaviyo, process, writes, stateOf } = worker({ policies: { dryRun: true } });
    klaviyo.seed({ external_id: KEPT });
    klaviyo.seed({ external_id: DELETED });
    expect(await process(aCustomerMerge())).toMatchObject({
      outcome: 'planned',
      plan: { action: 'merge-profiles' },
    });
    expect(writes()).toEqual([]);
    expect(await stateOf(DELETED)).toEqual({});
  });

  it('parks a merge Klaviyo refuses, with the merge in the letter; a redrive of the letter replays it', async () => {
    const { klaviyo, process, letters, stateOf } = worker();
    const kept = klaviyo.seed({ external_id: KEPT });
    const deleted = klaviyo.seed({ external_id: DELETED });
    klaviyo.failNext(
      'mergeProfiles',
      klaviyoError(400, 'invalid', { method: 'POST', path: '/api/profile-merge' }),
    );

    expect(await process(aCustomerMerge())).toEqual({ outcome: 'parked', reason: 'klaviyo_invalid' });
    const [letter] = letters;
    expect(letter).toMatchObject({ reason: 'klaviyo_invalid', tenant: 'acme', merge: aCustomerMerge() });
    expect(letter?.change).toBeUndefined();
    // Marked merged all the same: Shopify merged them whatever Klaviyo said.
    expect((await stateOf(DELETED)).mergedInto).toBe(KEPT);

    const redriven = serializeDeadLetter(letter as NonNullable<typeof letter>);
    expect(JSON.parse(redriven).externalId).toBe(DELETED);
    expect(await process(redriven)).toMatchObject({ outcome: 'merged', profileId: kept.id });
    expect(klaviyo.stored(deleted.id)).toBeUndefined();
  });

  it('reads a queued merge back, and calls a malformed one unreadable', () => {
    expect(readQueuedMessage(JSON.stringify(aCustomerMerge()))).toEqual({
      kind: 'queued',
      queued: aCustomerMerge(),
    });
    const malformed = readQueuedMessage(JSON.stringify({ ...aCustomerMerge(), keptExternalId: '' }));
    expect(malformed.kind === 'unreadable' && malformed.problem).toMatch(
      /^a queued customerMerge that does not fit its shape: keptExternalId/,
    );
  });
});
