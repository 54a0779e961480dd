import { describe, expect, it } from 'vitest';
import type { IdentityChange } from '../../lib/identity-change.js';
import type { Policies } from '../../lib/policies.js';
import type { KlaviyoProfile } from '../../lib/ports.js';
import { identifiersOf } from '../../lib/sync/identifiers.js';
import { ChangeParkedError, IdentifierHeldError } from '../../lib/sync/sync-identity-change.js';
import { aChange, aSyncWorld, recordedDigestsOf } from '../support/factories.js';

/** A profile's identifiers, as Klaviyo answered them. */
type RecordedIdentifiers = Pick<KlaviyoProfile, 'email' | 'phone_number'>;

/**
 * The record path: once a change is applied, the state keeps the customer's profile id and
 * digests of its identifiers (compared with digests of what a change asks for), and the next change is planned from that record instead of lookups. A no-op then
 * costs no Klaviyo request (nor its client), a real change one PATCH, and a record proved wrong
 * by Klaviyo (404, 409) falls back to the lookups.
 */
const FIRST = '2026-05-01T12:00:00.000Z';
const LATER = '2026-05-01T13:00:00.000Z';
const OLD_EMAIL = 'old@example.com';
const NEW_EMAIL = 'new@example.com';
const PHONE = '+14155550123';

function world(policies: Partial<Policies> = {}) {
  // Decisions a second apart, so the audit's newest-first order is the order they were made in.
  let decisions = 0;
  const base = aSyncWorld({ policies, clock: () => new Date(Date.parse(LATER) + 1_000 * decisions++) });
  const { klaviyo, store } = base;

  /** Records a first change applied to `profile`, as if Klaviyo had answered `identifiers` for it. */
  const recordFirstChange = (profileId: string, identifiers: RecordedIdentifiers) =>
    store.recordApplied({
      tenant: 'acme',
      externalId: '1001',
      occurredAt: FIRST,
      sourceEventId: 'first',
      profileId,
      digests: recordedDigestsOf(identifiers),
    });

  /** Customer 1001 whose profile the state knows, its record as Klaviyo last showed it unless told. */
  async function knownCustomer(profile: Partial<KlaviyoProfile> = {}, recorded?: RecordedIdentifiers) {
    const ours = klaviyo.seed({ external_id: '1001', email: OLD_EMAIL, phone_number: PHONE, ...profile });
    await recordFirstChange(ours.id, recorded ?? identifiersOf(ours));
    return ours;
  }

  const state = () => store.getState('acme', '1001');
  return { ...base, recordFirstChange, knownCustomer, state };
}

/** A later delivery of customer 1001's change (a new webhook id each time). */
const later = (overrides: Partial<IdentityChange> = {}) => aChange({ occurredAt: LATER, ...overrides });

describe('the record path', () => {
  it('answers a second identical delivery from the record: no Klaviyo call, not even its client', async () => {
    const { klaviyo, sync, state, history, klaviyoAsked } = world();
    const ours = klaviyo.seed({ external_id: '1001', email: OLD_EMAIL, phone_number: PHONE });
    const first = aChange({ occurredAt: FIRST });
    expect(await sync(first)).toMatchObject({ outcome: 'applied', profileId: ours.id });
    const callsAfterFirst = klaviyo.calls.length;

    const again = later({ email: first.email, phoneNumber: first.phoneNumber });
    const result = await sync(again);

    expect(result).toMatchObject({ outcome: 'unchanged', profileId: ours.id, reason: 'unchanged' });
    expect(klaviyo.calls).toHaveLength(callsAfterFirst);
    expect(klaviyoAsked()).toBe(1);
    expect(await state()).toEqual({
      lastAppliedAt: LATER,
      profileId: ours.id,
      digests: recordedDigestsOf({ email: NEW_EMAIL, phone_number: PHONE }),
    });
    expect(await history()).toMatchObject([
      { outcome: 'unchanged', plan: 'skip', sourceEventId: again.sourceEventId, profileIds: [ours.id] },
      { outcome: 'applied', sourceEventId: first.sourceEventId },
    ]);
  });

  it("PATCHes a known customer's new email in one request and records what Klaviyo answered", async () => {
    const { klaviyo, sync, knownCustomer, state } = world();
    // Klaviyo's phone was edited there since; the change leaves the phone alone.
    const ours = await knownCustomer(
      { phone_number: '+14155550999' },
      { email: OLD_EMAIL, phone_number: PHONE },
    );
    const result = await sync(later({ email: NEW_EMAIL, phoneNumber: undefined }));

    expect(result).toMatchObject({ outcome: 'applied', profileId: ours.id, fields: ['email'] });
    expect(klaviyo.calls).toEqual([{ method: 'updateProfile', args: [ours.id, { email: NEW_EMAIL }] }]);
    expect(await state()).toMatchObject({
      lastAppliedAt: LATER,
      profileId: ours.id,
      digests: recordedDigestsOf({ email: NEW_EMAIL, phone_number: '+14155550999' }),
    });
  });

  it('applies changes in order from the record, each one PATCH, and skips an older one as stale', async () => {
    const { klaviyo, sync, knownCustomer, state, klaviyoAsked } = world();
    const ours = await knownCustomer();
    await sync(aChange({ email: 'a@example.com', occurredAt: '2026-05-01T12:10:00.000Z' }));
    await sync(aChange({ email: 'b@example.com', occurredAt: '2026-05-01T12:20:00.000Z' }));
    const stale = await sync(aChange({ email: 'a@example.com', occurredAt: '2026-05-01T12:15:00.000Z' }));

    expect(stale).toMatchObject({ outcome: 'stale' });
    expect(klaviyo.calls.map((call) => call.args)).toEqual([
      [ours.id, { email: 'a@example.com' }],
      [ours.id, { email: 'b@example.com' }],
    ]);
    expect(klaviyoAsked()).toBe(2);
    expect(klaviyo.stored(ours.id)?.email).toBe('b@example.com');
    expect(await state()).toMatchObject({
      lastAppliedAt: '2026-05-01T12:20:00.000Z',
      digests: { email: recordedDigestsOf({ email: 'b@example.com' }).email },
    });
  });

  it('falls back to the lookups when the recorded profile is gone (404), and records the one found', async () => {
    const { klaviyo, sync, recordFirstChange, state } = world();
    // The recorded profile was merged into this one in Klaviyo, which deleted it.
    const survivor = klaviyo.seed({ external_id: '1001', email: OLD_EMAIL, phone_number: PHONE });
    await recordFirstChange('01MERGEDAWAY', { email: OLD_EMAIL, phone_number: PHONE });
    const result = await sync(later());

    expect(result).toMatchObject({ outcome: 'applied', profileId: survivor.id });
    expect(klaviyo.calls).toEqual([
      { method: 'updateProfile', args: ['01MERGEDAWAY', { email: NEW_EMAIL }] },
      { method: 'findProfiles', args: ['external_id', '1001'] },
      { method: 'updateProfile', args: [survivor.id, { email: NEW_EMAIL }] },
    ]);
    expect(await state()).toMatchObject({
      profileId: survivor.id,
      digests: recordedDigestsOf({ email: NEW_EMAIL, phone_number: PHONE }),
    });
  });

  it('creates the profile when the recorded one is gone and the lookups find none', async () => {
    const { klaviyo, sync, recordFirstChange, state } = world();
    await recordFirstChange('01DELETED', { email: OLD_EMAIL, phone_number: PHONE });
    const result = await sync(later());

    expect(result.outcome).toBe('created');
    expect(klaviyo.callsOf('importProfile')).toEqual([
      [{ external_id: '1001', email: NEW_EMAIL, phone_number: PHONE }],
    ]);
    expect(await state()).toMatchObject({
      profileId: result.profileId,
      digests: { email: recordedDigestsOf({ email: NEW_EMAIL }).email },
    });
    expect(result.profileId).not.toBe('01DELETED');
  });

  it('falls back to resolution on a 409 from a duplicate without external_id, and merges it (merge policy)', async () => {
    const { klaviyo, sync, knownCustomer, state } = world();
    const ours = await knownCustomer();
    const duplicate = klaviyo.seed({ email: NEW_EMAIL });
    const result = await sync(later({ phoneNumber: undefined }));

    expect(result).toMatchObject({
      outcome: 'merged',
      profileId: ours.id,
      reason: `merged profile ${duplicate.id}`,
    });
    // The 409 proved the record wrong: the customer is looked up, then the holder learned and merged.
    expect(klaviyo.callsOf('findProfiles')).toEqual([['external_id', '1001']]);
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([[ours.id, duplicate.id]]);
    expect(klaviyo.stored(duplicate.id)).toBeUndefined();
    expect(klaviyo.stored(ours.id)?.email).toBe(NEW_EMAIL);
    expect(await state()).toMatchObject({
      profileId: ours.id,
      digests: { email: recordedDigestsOf({ email: NEW_EMAIL }).email },
    });
  });

  it("never merges another customer's profile met by a 409: retries, then parks on the last try", async () => {
    const { klaviyo, sync, knownCustomer, state } = world();
    const ours = await knownCustomer();
    const theirs = klaviyo.seed({ external_id: '2002', email: NEW_EMAIL });
    const change = later({ phoneNumber: undefined });

    const retried = await sync(change).catch((thrown) => thrown);
    expect(retried).toBeInstanceOf(IdentifierHeldError);
    expect(retried).toMatchObject({ context: { profileId: ours.id, holderId: theirs.id } });
    expect((await state()).pending).toMatchObject({ sealedIdentifiers: expect.any(String) });

    // Parked once four deliveries have met the conflict (not counting deliveries spent waiting).
    for (const attempt of [2, 3]) {
      await expect(sync(change, { attempt })).rejects.toBeInstanceOf(IdentifierHeldError);
    }
    const parked = await sync(change, { attempt: 9 }).catch((thrown) => thrown);
    expect(parked).toBeInstanceOf(ChangeParkedError);
    expect(parked).toMatchObject({ reason: 'identifier_held_by_other_customer' });
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([]);
    expect(klaviyo.stored(theirs.id)).toMatchObject({ external_id: '2002', email: NEW_EMAIL });
    expect(klaviyo.stored(ours.id)?.email).toBe(OLD_EMAIL);
    // The record still names our profile: the next change starts from it again.
    expect(await state()).toMatchObject({ lastAppliedAt: FIRST, profileId: ours.id });
  });

  it('in a dry run plans from the record and writes nothing: no Klaviyo call, state or audit', async () => {
    const { klaviyo, sync, knownCustomer, state, history } = world();
    const ours = await knownCustomer();
    const before = await state();

    const patch = await sync(later(), { dryRun: true });
    const noOp = await sync(later({ email: OLD_EMAIL }), { dryRun: true });

    expect(patch).toMatchObject({
      outcome: 'planned',
      plan: { action: 'patch', profileId: ours.id, attributes: { email: NEW_EMAIL } },
    });
    expect(noOp).toMatchObject({ outcome: 'planned', plan: { action: 'skip', reason: 'unchanged' } });
    expect(klaviyo.calls).toEqual([]);
    expect(await state()).toEqual(before);
    expect(await history()).toEqual([]);
  });
});

describe('the verifyUnchanged policy', () => {
  it('costs a no-op exactly one getProfile of the recorded profile', async () => {
    const { klaviyo, sync, knownCustomer, state } = world({ verifyUnchanged: true });
    const ours = await knownCustomer();
    const result = await sync(later({ email: OLD_EMAIL }));

    expect(result).toMatchObject({ outcome: 'unchanged', profileId: ours.id });
    expect(klaviyo.calls).toEqual([{ method: 'getProfile', args: [ours.id] }]);
    expect((await state()).lastAppliedAt).toBe(LATER);
  });

  it('PATCHes back an identifier someone edited in Klaviyo, which the record alone would miss', async () => {
    const trusting = world();
    await trusting.knownCustomer({ email: 'edited@example.com' }, { email: NEW_EMAIL, phone_number: PHONE });
    expect(await trusting.sync(later())).toMatchObject({ outcome: 'unchanged' });
    expect(trusting.klaviyo.calls).toEqual([]);

    const { klaviyo, sync, knownCustomer, state } = world({ verifyUnchanged: true });
    const ours = await knownCustomer(
      { email: 'edited@example.com' },
      { email: NEW_EMAIL, phone_number: PHONE },
    );
    const result = await sync(later());

    expect(result).toMatchObject({ outcome: 'applied', profileId: ours.id, fields: ['email'] });
    expect(klaviyo.calls).toEqual([
      { method: 'getProfile', args: [ours.id] },
      { method: 'updateProfile', args: [ours.id, { email: NEW_EMAIL }] },
    ]);
    expect(klaviyo.stored(ours.id)?.email).toBe(NEW_EMAIL);
    expect(await state()).toMatchObject({
      digests: recordedDigestsOf({ email: NEW_EMAIL, phone_number: PHONE }),
    });
  });

  it('looks the customer up when the recorded profile is no longer theirs', async () => {
    const { klaviyo, sync, recordFirstChange } = world({ verifyUnchanged: true });
    const reassigned = klaviyo.seed({ external_id: '2002', email: OLD_EMAIL });
    const ours = klaviyo.seed({ external_id: '1001', email: NEW_EMAIL, phone_number: PHONE });
    await recordFirstChange(reassigned.id, { email: NEW_EMAIL, phone_number: PHONE });
    const result = await sync(later());

    expect(result).toMatchObject({ outcome: 'unchanged', profileId: ours.id });
    expect(klaviyo.callsOf('updateProfile')).toEqual([]);
    expect(klaviyo.stored(reassigned.id)).toMatchObject({ external_id: '2002', email: OLD_EMAIL });
  });
});
