import { describe, expect, it } from 'vitest';
import { isTransient, TransientError } from '../../lib/errors.js';
import { KlaviyoApiError } from '../../lib/klaviyo/errors.js';
import type { Policies } from '../../lib/policies.js';
import type { KlaviyoProfiles } from '../../lib/ports.js';
import { customerRecordKey, digestOf, openIdentifiers } from '../../lib/privacy/identifier-digest.js';
import { ChangeParkedError, IdentifierHeldError } from '../../lib/sync/sync-identity-change.js';
import { aChange, aSyncWorld, sealedFor, TEST_IDENTIFIER_KEY } from '../support/factories.js';
import { klaviyoError, type MemoryKlaviyoOptions } from '../support/memory-klaviyo.js';

/**
 * The executor against Klaviyo's profiles in memory: one test per row of the decision table
 * in docs/applying-changes.md, then each path a 409, a merge or a swap takes.
 */
const DECIDED_AT = '2026-05-01T12:00:05.000Z';
const NEW_EMAIL = 'new@example.com';
const NEW_PHONE = '+14155550123';

const world = (options: { policies?: Partial<Policies>; klaviyo?: MemoryKlaviyoOptions } = {}) =>
  aSyncWorld({ ...options, clock: () => new Date(DECIDED_AT) });

describe('the decision table, carried out', () => {
  it('skips a change older than the last one applied (stale), without asking for Klaviyo', async () => {
    const { store, sync, history, klaviyoAsked } = world();
    await store.recordApplied({
      tenant: 'acme',
      externalId: '1001',
      occurredAt: '2026-05-01T13:00:00.000Z',
      sourceEventId: 'newer',
      profileId: undefined,
    });
    const result = await sync(aChange());
    expect(result).toMatchObject({ outcome: 'stale', plan: { action: 'skip', reason: 'stale' } });
    expect(result.reason).toBe('a change from 2026-05-01T13:00:00.000Z was applied already');
    expect(klaviyoAsked()).toBe(0);
    expect(await history()).toMatchObject([{ outcome: 'stale', plan: 'skip', decidedAt: DECIDED_AT }]);
  });

  it('applies a change timed only by an unsigned header, which then makes no later change stale', async () => {
    const { klaviyo, store, sync } = world();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com', phone_number: NEW_PHONE });
    await store.recordApplied({
      tenant: 'acme',
      externalId: '1001',
      occurredAt: '2026-05-01T11:00:00.000Z',
      sourceEventId: 'signed',
      profileId: ours.id,
    });
    // A replay whose forged X-Shopify-Triggered-At passed as its time (no updated_at to go by).
    const replayed = aChange({
      email: 'replayed@example.com',
      occurredAt: '2100-01-01T00:00:00.000Z',
      occurredAtUnsigned: true,
    });
    expect(await sync(replayed)).toMatchObject({ outcome: 'applied' });
    expect((await store.getState('acme', '1001')).lastAppliedAt).toBe('2026-05-01T11:00:00.000Z');

    const real = aChange({ email: NEW_EMAIL, occurredAt: '2026-05-01T12:00:00.000Z' });
    expect(await sync(real)).toMatchObject({ outcome: 'applied' });
    expect(klaviyo.stored(ours.id)?.email).toBe(NEW_EMAIL);
    // Still judged by signed data: older than the last signed change is stale.
    const older = aChange({ occurredAt: '2026-05-01T10:00:00.000Z', occurredAtUnsigned: true });
    expect(await sync(older)).toMatchObject({ outcome: 'stale' });
  });

  it('skips a change that changes nothing (email case aside): unchanged, no PATCH', async () => {
    const { klaviyo, store, sync, writes, history } = world();
    const ours = klaviyo.seed({ external_id: '1001', email: 'New@Example.com', phone_number: NEW_PHONE });
    const result = await sync(aChange());
    expect(result).toMatchObject({ outcome: 'unchanged', profileId: ours.id, reason: 'unchanged' });
    expect(writes()).toEqual([]);
    expect((await store.getState('acme', '1001')).lastAppliedAt).toBe(aChange().occurredAt);
    expect(await history()).toMatchObject([
      { outcome: 'unchanged', reason: 'unchanged', profileIds: [ours.id] },
    ]);
  });

  it('PATCHes only the identifiers that differ (applied) and audits before and after', async () => {
    const { klaviyo, sync, history } = world();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com', phone_number: NEW_PHONE });
    const result = await sync(aChange());
    expect(result).toMatchObject({ outcome: 'applied', profileId: ours.id, fields: ['email'] });
    expect(klaviyo.callsOf('updateProfile')).toEqual([[ours.id, { email: NEW_EMAIL }]]);
    expect(klaviyo.stored(ours.id)?.email).toBe(NEW_EMAIL);
    expect(await history()).toMatchObject([
      {
        outcome: 'applied',
        plan: 'patch',
        profileIds: [ours.id],
        // Masked for people and digested for `history --email`, never as they are.
        before: {
          email: {
            masked: 'o***@example.com',
            digest: digestOf(TEST_IDENTIFIER_KEY, 'email', 'old@example.com'),
          },
          phone_number: {
            masked: '********0123',
            digest: digestOf(TEST_IDENTIFIER_KEY, 'phone_number', NEW_PHONE),
          },
          external_id: '1001',
        },
        after: {
          email: { masked: 'n***@example.com', digest: digestOf(TEST_IDENTIFIER_KEY, 'email', NEW_EMAIL) },
        },
        keyId: TEST_IDENTIFIER_KEY.id,
      },
    ]);
    expect(JSON.stringify(await history())).not.toMatch(/old@example\.com|new@example\.com|\+14155550123/i);
  });

  it('binds external_id to a profile found by the previous email, in the same PATCH (bound)', async () => {
    const { klaviyo, sync } = world();
    const found = klaviyo.seed({ email: 'old@example.com' });
    const result = await sync(aChange({ previous: { email: 'old@example.com' }, phoneNumber: undefined }));
    expect(result).toMatchObject({ outcome: 'bound', profileId: found.id });
    expect(klaviyo.callsOf('updateProfile')).toEqual([[found.id, { email: NEW_EMAIL, external_id: '1001' }]]);
  });

  it("binds a profile found by the new email (Klaviyo's Shopify integration keys by email only)", async () => {
    const { klaviyo, sync } = world();
    const found = klaviyo.seed({ email: NEW_EMAIL });
    const result = await sync(aChange({ phoneNumber: undefined }));
    expect(result).toMatchObject({ outcome: 'bound', profileId: found.id, fields: ['external_id'] });
    expect(klaviyo.stored(found.id)?.external_id).toBe('1001');
  });

  it('creates a profile when none is found (policy create)', async () => {
    const { klaviyo, sync } = world();
    const result = await sync(aChange());
    expect(result.outcome).toBe('created');
    expect(klaviyo.callsOf('importProfile')).toEqual([
      [{ external_id: '1001', email: NEW_EMAIL, phone_number: NEW_PHONE }],
    ]);
    expect(klaviyo.stored(result.profileId ?? '')).toMatchObject({ external_id: '1001', email: NEW_EMAIL });
  });

  it("never takes a profile found by the previous email that is another customer's: creates ours", async () => {
    const { klaviyo, sync } = world();
    const someoneElse = klaviyo.seed({ email: 'old@example.com', external_id: '2002' });
    const result = await sync(aChange({ previous: { email: 'old@example.com' } }));
    expect(result.outcome).toBe('created');
    expect(klaviyo.stored(someoneElse.id)).toMatchObject({ email: 'old@example.com', external_id: '2002' });
  });

  it('skips when no profile is found and the policy is skip (no_profile)', async () => {
    const { klaviyo, sync, history } = world({ policies: { onMissingProfile: 'skip' } });
    const result = await sync(aChange());
    expect(result).toMatchObject({ outcome: 'skipped', reason: 'no_profile' });
    expect(klaviyo.callsOf('importProfile')).toEqual([]);
    expect(await history()).toMatchObject([{ outcome: 'skipped', reason: 'no_profile' }]);
  });

  it('skips when no profile is found and there is nothing to create one with (nothing_to_create)', async () => {
    const { klaviyo, sync } = world();
    const result = await sync(aChange({ email: undefined, phoneNumber: null }));
    expect(result).toMatchObject({ outcome: 'skipped', reason: 'nothing_to_create' });
    expect(klaviyo.callsOf('importProfile')).toEqual([]);
  });

  it('merges a duplicate holding the new email into ours, waits until it is gone, then PATCHes (merged)', async () => {
    const { klaviyo, sync, history } = world({ klaviyo: { mergeAfterGets: 2 } });
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const duplicate = klaviyo.seed({ email: NEW_EMAIL });
    const result = await sync(aChange({ phoneNumber: undefined }));
    expect(result).toMatchObject({
      outcome: 'merged',
      profileId: ours.id,
      reason: `merged profile ${duplicate.id}`,
    });
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([[ours.id, duplicate.id]]);
    expect(klaviyo.stored(duplicate.id)).toBeUndefined();
    expect(klaviyo.stored(ours.id)?.email).toBe(NEW_EMAIL);
    // The PATCH that met the duplicate, then the one after the merge.
    expect(klaviyo.callsOf('updateProfile')).toHaveLength(2);
    expect(await history()).toMatchObject([{ outcome: 'merged', plan: 'patch', profileIds: [ours.id] }]);
  });

  it('parks a duplicate when the policy is park (duplicate_profile), with both profile ids', async () => {
    const { klaviyo, sync, history } = world({ policies: { onDuplicateProfile: 'park' } });
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const duplicate = klaviyo.seed({ email: NEW_EMAIL });
    const error = await sync(aChange({ phoneNumber: undefined })).catch((thrown) => thrown);
    expect(error).toBeInstanceOf(ChangeParkedError);
    expect(error).toMatchObject({
      reason: 'duplicate_profile',
      transient: false,
      context: { profileId: ours.id, holderId: duplicate.id },
    });
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([]);
    expect(await history()).toMatchObject([
      { outcome: 'parked', plan: 'park', reason: 'duplicate_profile', profileIds: [ours.id, duplicate.id] },
    ]);
  });

  it('skips a duplicate when the policy is skip (duplicate_profile)', async () => {
    const { klaviyo, sync } = world({ policies: { onDuplicateProfile: 'skip' } });
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const duplicate = klaviyo.seed({ email: NEW_EMAIL });
    const result = await sync(aChange({ phoneNumber: undefined }));
    expect(result).toMatchObject({ outcome: 'skipped', reason: 'duplicate_profile' });
    expect(klaviyo.stored(duplicate.id)).toBeDefined();
  });

  it("retries a change that needs another customer's identifier, keeping it pending for a trade", async () => {
    const { klaviyo, store, sync } = world();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const theirs = klaviyo.seed({ external_id: '2002', email: NEW_EMAIL });
    const change = aChange({ phoneNumber: undefined });
    const error = await sync(change).catch((thrown) => thrown);
    expect(error).toBeInstanceOf(IdentifierHeldError);
    expect(error).toMatchObject({
      reason: 'identifier_held_by_other_customer',
      context: { profileId: ours.id, holderId: theirs.id },
    });
    expect(isTransient(error)).toBe(true);
    const { pending } = await store.getState('acme', '1001');
    expect(pending).toEqual({
      sealedIdentifiers: expect.stringMatching(/^v1\./),
      occurredAt: change.occurredAt,
      sourceEventId: change.sourceEventId,
      conflicts: 1,
    });
    // Sealed to this customer's record: no plaintext at rest, opened with the tenant's key only.
    expect(JSON.stringify(pending)).not.toContain(NEW_EMAIL);
    expect(
      openIdentifiers(
        TEST_IDENTIFIER_KEY,
        pending?.sealedIdentifiers ?? '',
        customerRecordKey('acme', '1001'),
      ),
    ).toEqual({ email: NEW_EMAIL });
    expect(klaviyo.stored(theirs.id)?.email).toBe(NEW_EMAIL);
  });

  it('parks it once out of tries (identifier_held_by_other_customer), never merging two customers', async () => {
    const { klaviyo, store, sync } = world();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const theirs = klaviyo.seed({ external_id: '2002', email: NEW_EMAIL });
    const change = aChange({ phoneNumber: undefined });
    // Three deliveries met the conflict already (however many more were spent waiting out an outage).
    await store.recordPending('acme', '1001', {
      sealedIdentifiers: sealedFor('1001', { email: NEW_EMAIL }),
      occurredAt: change.occurredAt,
      sourceEventId: change.sourceEventId,
      conflicts: 3,
    });
    const error = await sync(change, { attempt: 9 }).catch((thrown) => thrown);
    expect(error).toBeInstanceOf(ChangeParkedError);
    expect(error).toMatchObject({
      reason: 'identifier_held_by_other_customer',
      context: { profileId: ours.id, holderId: theirs.id },
    });
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([]);
  });

  it('trades emails when two customers swap them (swapped): three PATCHes, no merge', async () => {
    const { klaviyo, store, sync } = world();
    const a = klaviyo.seed({ external_id: '1001', email: 'x@example.com' });
    const b = klaviyo.seed({ external_id: '2002', email: 'y@example.com' });
    const bMovesToX = aChange({ externalId: '2002', email: 'x@example.com', phoneNumber: undefined });
    await expect(sync(bMovesToX)).rejects.toBeInstanceOf(IdentifierHeldError);

    const result = await sync(
      aChange({ email: 'y@example.com', phoneNumber: undefined, occurredAt: '2026-05-01T12:00:01.000Z' }),
    );
    expect(result).toMatchObject({
      outcome: 'swapped',
      profileId: a.id,
      reason: 'traded with customer 2002',
    });
    expect(klaviyo.callsOf('updateProfile').slice(-3)).toEqual([
      [b.id, { email: null }],
      [a.id, { email: 'y@example.com' }],
      [b.id, { email: 'x@example.com' }],
    ]);
    expect([klaviyo.stored(a.id)?.email, klaviyo.stored(b.id)?.email]).toEqual([
      'y@example.com',
      'x@example.com',
    ]);
    expect(klaviyo.callsOf('mergeProfiles')).toEqual([]);
    // B's blocked change was carried out too: a redelivery of it is no longer due.
    const bState = await store.getState('acme', '2002');
    expect(bState).toMatchObject({ lastAppliedAt: bMovesToX.occurredAt });
    expect(bState.pending).toBeUndefined();
  });

  it('lets a Klaviyo 4xx through as permanent (the worker parks it as klaviyo_<code>)', async () => {
    const { klaviyo, sync } = world();
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    klaviyo.failNext('updateProfile', klaviyoError(400, 'invalid', { method: 'PATCH' }));
    const error = await sync(aChange()).catch((thrown) => thrown);
    expect(error).toBeInstanceOf(KlaviyoApiError);
    expect(error).toMatchObject({ reason: 'klaviyo_invalid', transient: false });
  });

  it('lets a Klaviyo 429/5xx through as transient (retried by SQS), recording nothing', async () => {
    const { klaviyo, store, sync, history } = world();
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    klaviyo.failNext('updateProfile', klaviyoError(503, 'server_error', { method: 'PATCH' }));
    const error = await sync(aChange()).catch((thrown) => thrown);
    expect(isTransient(error)).toBe(true);
    expect(await store.getState('acme', '1001')).toEqual({});
    expect(await history()).toEqual([]);
  });
});

describe('what a 409 teaches', () => {
  const duplicateOf = (id: string) =>
    klaviyoError(409, 'duplicate_profile', { method: 'PATCH', meta: { duplicate_profile_id: id } });

  it('tries again when the profile a 409 named is gone meanwhile', async () => {
    const { klaviyo, sync } = world();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    klaviyo.failNext('updateProfile', duplicateOf('01GONE'));
    const result = await sync(aChange({ phoneNumber: undefined }));
    expect(result).toMatchObject({ outcome: 'applied', profileId: ours.id });
    expect(klaviyo.callsOf('getProfile')).toEqual([['01GONE']]);
    expect(klaviyo.callsOf('updateProfile')).toHaveLength(2);
  });

  it('gives up after three holders learned, with the last 409', async () => {
    const { klaviyo, sync } = world();
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    klaviyo.failNext('updateProfile', duplicateOf('01GONE'), 4);
    const error = await sync(aChange()).catch((thrown) => thrown);
    expect(error).toMatchObject({ status: 409, duplicateProfileId: '01GONE' });
    expect(klaviyo.callsOf('updateProfile')).toHaveLength(4);
    expect(klaviyo.callsOf('getProfile')).toHaveLength(3);
  });

  it('does not retry a 409 that names no profile', async () => {
    const { klaviyo, sync } = world();
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    klaviyo.failNext('updateProfile', klaviyoError(409, 'conflict', { method: 'PATCH' }));
    await expect(sync(aChange())).rejects.toMatchObject({ status: 409, reason: 'klaviyo_conflict' });
    expect(klaviyo.callsOf('updateProfile')).toHaveLength(1);
  });

  it('binds the profile a create met (no external_id, the email in another case) instead of creating', async () => {
    // Filters compare exactly, so the lookup missed it; the import's 409 names it.
    const { klaviyo, sync } = world();
    const holder = klaviyo.seed({ email: 'New@Example.com' });
    klaviyo.failNext('importProfile', duplicateOf(holder.id));
    const result = await sync(aChange({ phoneNumber: undefined }));
    expect(result).toMatchObject({ outcome: 'bound', profileId: holder.id, fields: ['external_id'] });
    expect(klaviyo.stored(holder.id)).toMatchObject({ email: 'New@Example.com', external_id: '1001' });
  });

  it('counts an import that matched an existing profile (200) as applied, not created', async () => {
    const { klaviyo, sync } = world({ klaviyo: { emailsClashIgnoringCase: true } });
    const existing = klaviyo.seed({ email: 'New@Example.com' });
    const result = await sync(aChange({ phoneNumber: undefined }));
    expect(result).toMatchObject({ outcome: 'applied', profileId: existing.id });
    expect(klaviyo.stored(existing.id)?.external_id).toBe('1001');
  });

  it('trades phones when the 409 names a holder of our phone (the contested field is the phone)', async () => {
    const { klaviyo, sync } = world();
    const a = klaviyo.seed({ external_id: '1001', phone_number: '+14155550101' });
    const b = klaviyo.seed({ external_id: '2002', phone_number: '+14155550102' });
    const bChange = aChange({ externalId: '2002', email: undefined, phoneNumber: '+14155550101' });
    await expect(sync(bChange)).rejects.toBeInstanceOf(IdentifierHeldError);
    const result = await sync(
      aChange({ email: undefined, phoneNumber: '+14155550102', occurredAt: '2026-05-01T12:00:01.000Z' }),
    );
    expect(result.outcome).toBe('swapped');
    expect(klaviyo.callsOf('updateProfile').slice(-3)).toEqual([
      [b.id, { phone_number: null }],
      [a.id, { phone_number: '+14155550102' }],
      [b.id, { phone_number: '+14155550101' }],
    ]);
  });

  it('does not trade with a holder whose blocked change is older than its last applied one', async () => {
    const { klaviyo, store, sync } = world();
    klaviyo.seed({ external_id: '1001', email: 'x@example.com' });
    klaviyo.seed({ external_id: '2002', email: 'y@example.com' });
    await store.recordApplied({
      tenant: 'acme',
      externalId: '2002',
      occurredAt: '2026-05-01T11:30:00.000Z',
      sourceEventId: 'applied',
      profileId: undefined,
    });
    await store.recordPending('acme', '2002', {
      sealedIdentifiers: sealedFor('2002', { email: 'x@example.com' }),
      occurredAt: '2026-05-01T11:00:00.000Z',
      sourceEventId: 'superseded',
    });
    await expect(sync(aChange({ email: 'y@example.com', phoneNumber: undefined }))).rejects.toBeInstanceOf(
      IdentifierHeldError,
    );
    expect(klaviyo.callsOf('updateProfile')).toHaveLength(1);
  });
});

describe('merges', () => {
  it('goes on at once when Klaviyo merged at once', async () => {
    const { klaviyo, sync } = world({ klaviyo: { mergeAfterGets: 0 } });
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const duplicate = klaviyo.seed({ email: NEW_EMAIL });
    const result = await sync(aChange({ phoneNumber: undefined }));
    expect(result.outcome).toBe('merged');
    // The 409's holder, then the source (gone already), then our profile afresh.
    expect(klaviyo.callsOf('getProfile').map(([id]) => id)).toEqual([duplicate.id, duplicate.id, ours.id]);
  });

  it('hands the change back (merge_pending) when Klaviyo has not merged within the wait', async () => {
    const { klaviyo, sync, history } = world({ klaviyo: { mergeAfterGets: Number.POSITIVE_INFINITY } });
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const duplicate = klaviyo.seed({ email: NEW_EMAIL });
    const error = await sync(aChange({ phoneNumber: undefined })).catch((thrown) => thrown);
    expect(error).toBeInstanceOf(TransientError);
    expect(error.reason).toBe('merge_pending');
    expect(klaviyo.pendingMerges).toEqual([{ destinationId: expect.any(String), sourceId: duplicate.id }]);
    expect(await history()).toEqual([]);
  });

  it('hands the change back (merge_pending) when our profile is missing after the merge', async () => {
    const { klaviyo, sync } = world();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    klaviyo.seed({ email: NEW_EMAIL });
    const oursVanishesAfterMerge: KlaviyoProfiles = {
      ...klaviyo,
      getProfile: async (id) =>
        id === ours.id && klaviyo.callsOf('mergeProfiles').length > 0 ? undefined : klaviyo.getProfile(id),
    };
    await expect(
      sync(aChange({ phoneNumber: undefined }), { klaviyo: async () => oursVanishesAfterMerge }),
    ).rejects.toMatchObject({
      reason: 'merge_pending',
      message: `Profile ${ours.id} is missing after a merge`,
    });
  });
});

describe('recording', () => {
  it('says so when a newer change was recorded while this one was applied', async () => {
    const { klaviyo, store, sync, history } = world();
    klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const result = await sync(aChange(), { state: { ...store, recordApplied: async () => false } });
    expect(result).toMatchObject({
      outcome: 'applied',
      reason: 'a newer change was recorded while this one was applied',
    });
    expect(await history()).toMatchObject([
      { reason: 'a newer change was recorded while this one was applied' },
    ]);
  });

  it('in a dry run looks up and plans, but writes nothing to Klaviyo, the state or the audit', async () => {
    const { klaviyo, store, sync, history, writes } = world();
    const ours = klaviyo.seed({ external_id: '1001', email: 'old@example.com' });
    const result = await sync(aChange(), { dryRun: true });
    expect(result).toMatchObject({
      outcome: 'planned',
      plan: { action: 'patch', profileId: ours.id },
      profileId: ours.id,
      reason: 'dry run: nothing written',
    });
    expect(klaviyo.callsOf('findProfiles')).toEqual([['external_id', '1001']]);
    expect(writes()).toEqual([]);
    expect(await store.getState('acme', '1001')).toEqual({});
    expect(await history()).toEqual([]);
  });
});
