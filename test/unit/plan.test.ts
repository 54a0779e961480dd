import { describe, expect, it } from 'vitest';
import type { IdentityChange } from '../../lib/identity-change.js';
import { defaultPolicies, type Policies } from '../../lib/policies.js';
import type { KlaviyoProfile } from '../../lib/ports.js';
import { digestIdentifiers } from '../../lib/privacy/identifier-digest.js';
import {
  contestedField,
  type FoundProfile,
  type LookupKey,
  lookupOrder,
  otherCustomerOf,
  recordedProfile,
} from '../../lib/sync/identifiers.js';
import { type Facts, planChange, type SyncPlan } from '../../lib/sync/plan.js';
import { isStale, livePending, watermarkAfter } from '../../lib/sync/staleness.js';
import { aChange, aProfile, recordedDigestsOf, TEST_IDENTIFIER_KEY } from '../support/factories.js';

/** The decision table: one row per situation; docs/applying-changes.md in code. */
const FIELD: Record<LookupKey, FoundProfile['lookup']['field']> = {
  recorded: 'id',
  external_id: 'external_id',
  previous_email: 'email',
  previous_phone: 'phone_number',
  email: 'email',
  phone: 'phone_number',
};
const foundBy = (key: LookupKey, profile: KlaviyoProfile): FoundProfile => ({
  lookup: { key, field: FIELD[key], value: 'x' },
  profile,
});
const facts = (overrides: Partial<Facts> = {}): Facts => ({ found: [], attempt: 1, ...overrides });

const ours = aProfile({
  id: 'OURS',
  email: 'old@example.com',
  phone_number: '+14155550100',
  external_id: '1001',
});
const unbound = aProfile({ id: 'UNBOUND', email: 'old@example.com', phone_number: null, external_id: null });
const otherCustomers = aProfile({
  id: 'OTHER',
  email: 'new@example.com',
  phone_number: null,
  external_id: '2002',
});
const duplicate = aProfile({ id: 'DUP', email: 'new@example.com', phone_number: null, external_id: null });

/** Customer 1001's profile as the state records it: digests only, with the tenant key's. */
const recordedOurs = (held: { email?: string | null; phone_number?: string | null }) =>
  recordedProfile(
    { externalId: '1001' },
    { profileId: 'OURS', digests: recordedDigestsOf(held) },
    TEST_IDENTIFIER_KEY.id,
  ) as FoundProfile;
/** Digests of what the change asks for, as the worker computes them before planning. */
const wantedOf = (change: Partial<IdentityChange>) => {
  const { email, phoneNumber } = aChange(change);
  return digestIdentifiers(TEST_IDENTIFIER_KEY, { email, phone_number: phoneNumber });
};

interface Row {
  situation: string;
  change?: Partial<IdentityChange>;
  facts: Facts;
  policies?: Partial<Policies>;
  plan: SyncPlan;
}

const rows: Row[] = [
  {
    situation: 'recorded profile, digests of both identifiers equal (email case aside): skip (unchanged)',
    change: { email: 'NEW@Example.com' },
    facts: facts({
      found: [recordedOurs({ email: 'new@example.com', phone_number: '+14155550123' })],
      wanted: wantedOf({ email: 'NEW@Example.com' }),
    }),
    plan: { action: 'skip', reason: 'unchanged', profileId: 'OURS' },
  },
  {
    situation: 'recorded profile, email digest differs: patch the email only, no lookup',
    facts: facts({
      found: [recordedOurs({ email: 'old@example.com', phone_number: '+14155550123' })],
      wanted: wantedOf({}),
    }),
    plan: { action: 'patch', profileId: 'OURS', attributes: { email: 'new@example.com' }, bind: false },
  },
  {
    situation: 'recorded profile holds a phone, the change clears it: patch the phone to null',
    change: { phoneNumber: null },
    facts: facts({
      found: [recordedOurs({ email: 'new@example.com', phone_number: '+14155550123' })],
      wanted: wantedOf({ phoneNumber: null }),
    }),
    plan: { action: 'patch', profileId: 'OURS', attributes: { phone_number: null }, bind: false },
  },
  {
    situation: 'recorded profile without a phone, the change has none either: skip (unchanged)',
    change: { phoneNumber: null },
    facts: facts({
      found: [recordedOurs({ email: 'new@example.com', phone_number: null })],
      wanted: wantedOf({ phoneNumber: null }),
    }),
    plan: { action: 'skip', reason: 'unchanged', profileId: 'OURS' },
  },
  {
    situation: 'recorded profile but no digests of the wanted values: everything asked for is patched',
    facts: facts({ found: [recordedOurs({ email: 'new@example.com', phone_number: '+14155550123' })] }),
    plan: {
      action: 'patch',
      profileId: 'OURS',
      attributes: { email: 'new@example.com', phone_number: '+14155550123' },
      bind: false,
    },
  },
  {
    situation: 'older than the last applied change: skip (stale)',
    change: { occurredAt: '2026-05-01T11:00:00.000Z' },
    facts: facts({ lastAppliedAt: '2026-05-01T12:00:00.000Z', found: [foundBy('external_id', ours)] }),
    plan: { action: 'skip', reason: 'stale' },
  },
  {
    situation: 'found by external_id, email and phone differ: patch both',
    facts: facts({ found: [foundBy('external_id', ours)] }),
    plan: {
      action: 'patch',
      profileId: 'OURS',
      attributes: { email: 'new@example.com', phone_number: '+14155550123' },
      bind: false,
    },
  },
  {
    situation: 'found by external_id, only the email differs: patch the email only',
    change: { phoneNumber: '+14155550100' },
    facts: facts({ found: [foundBy('external_id', ours)] }),
    plan: { action: 'patch', profileId: 'OURS', attributes: { email: 'new@example.com' }, bind: false },
  },
  {
    situation: 'found by external_id, nothing differs (email case aside): skip (unchanged)',
    change: { email: 'OLD@Example.com', phoneNumber: '+14155550100' },
    facts: facts({ found: [foundBy('external_id', ours)] }),
    plan: { action: 'skip', reason: 'unchanged', profileId: 'OURS' },
  },
  {
    situation: 'phone absent from the change: left as it is',
    change: { phoneNumber: undefined },
    facts: facts({ found: [foundBy('external_id', ours)] }),
    plan: { action: 'patch', profileId: 'OURS', attributes: { email: 'new@example.com' }, bind: false },
  },
  {
    situation: 'phone null in the change: cleared',
    change: { email: 'old@example.com', phoneNumber: null },
    facts: facts({ found: [foundBy('external_id', ours)] }),
    plan: { action: 'patch', profileId: 'OURS', attributes: { phone_number: null }, bind: false },
  },
  {
    situation: 'found by previous email, no external_id: bind it in the same patch',
    change: { previous: { email: 'old@example.com' }, phoneNumber: undefined },
    facts: facts({ found: [foundBy('previous_email', unbound)] }),
    plan: {
      action: 'patch',
      profileId: 'UNBOUND',
      attributes: { email: 'new@example.com', external_id: '1001' },
      bind: true,
    },
  },
  {
    situation: 'found by previous phone, no external_id: bind',
    change: { previous: { phoneNumber: '+14155550100' }, email: undefined },
    facts: facts({ found: [foundBy('previous_phone', { ...unbound, phone_number: '+14155550100' })] }),
    plan: {
      action: 'patch',
      profileId: 'UNBOUND',
      attributes: { phone_number: '+14155550123', external_id: '1001' },
      bind: true,
    },
  },
  {
    situation: "found by the new email, no external_id (Klaviyo's Shopify integration): bind",
    change: { phoneNumber: undefined },
    facts: facts({ found: [foundBy('email', { ...unbound, email: 'new@example.com' })] }),
    plan: { action: 'patch', profileId: 'UNBOUND', attributes: { external_id: '1001' }, bind: true },
  },
  {
    situation: 'found by previous email but carrying another external_id: not ours, so create',
    change: { previous: { email: 'old@example.com' }, phoneNumber: undefined },
    facts: facts({ found: [foundBy('previous_email', { ...otherCustomers, email: 'old@example.com' })] }),
    plan: { action: 'create', attributes: { external_id: '1001', email: 'new@example.com' } },
  },
  {
    situation: 'nothing found: create with external_id and identifiers',
    facts: facts(),
    plan: {
      action: 'create',
      attributes: { external_id: '1001', email: 'new@example.com', phone_number: '+14155550123' },
    },
  },
  {
    situation: 'nothing found, tenant policy skip: skip (no_profile)',
    facts: facts(),
    policies: { onMissingProfile: 'skip' },
    plan: { action: 'skip', reason: 'no_profile' },
  },
  {
    situation: 'nothing found and no identifier to give a new profile: skip',
    change: { email: undefined, phoneNumber: null },
    facts: facts(),
    plan: { action: 'skip', reason: 'nothing_to_create' },
  },
  {
    situation:
      'the new email belongs to a profile without external_id, policy merge: merge it into ours, then patch',
    facts: facts({ found: [foundBy('external_id', ours)], holder: { field: 'email', profile: duplicate } }),
    plan: { action: 'merge-then-patch', profileId: 'OURS', sourceId: 'DUP' },
  },
  {
    situation: 'the new email belongs to a profile with our own external_id: merge',
    facts: facts({
      found: [foundBy('external_id', ours)],
      holder: { field: 'email', profile: { ...duplicate, external_id: '1001' } },
    }),
    plan: { action: 'merge-then-patch', profileId: 'OURS', sourceId: 'DUP' },
  },
  {
    situation: 'duplicate profile, policy park: park',
    facts: facts({ found: [foundBy('external_id', ours)], holder: { field: 'email', profile: duplicate } }),
    policies: { onDuplicateProfile: 'park' },
    plan: { action: 'park', reason: 'duplicate_profile', profileId: 'OURS', holderId: 'DUP' },
  },
  {
    situation: 'duplicate profile, policy skip: skip',
    facts: facts({ found: [foundBy('external_id', ours)], holder: { field: 'email', profile: duplicate } }),
    policies: { onDuplicateProfile: 'skip' },
    plan: { action: 'skip', reason: 'duplicate_profile', profileId: 'OURS', holderId: 'DUP' },
  },
  {
    situation: 'another customer holds the new email: retry later, never merge',
    facts: facts({
      found: [foundBy('external_id', ours)],
      holder: { field: 'email', profile: otherCustomers },
    }),
    plan: {
      action: 'retry',
      reason: 'identifier_held_by_other_customer',
      profileId: 'OURS',
      holderId: 'OTHER',
    },
  },
  {
    situation: 'another customer holds it, out of tries: park with both profile ids',
    facts: facts({
      found: [foundBy('external_id', ours)],
      holder: { field: 'email', profile: otherCustomers },
      attempt: 4,
    }),
    plan: {
      action: 'park',
      reason: 'identifier_held_by_other_customer',
      profileId: 'OURS',
      holderId: 'OTHER',
    },
  },
  {
    situation: 'another customer holds it but has not changed away from it: retry',
    facts: facts({
      found: [foundBy('external_id', ours)],
      holder: { field: 'email', profile: otherCustomers },
      holderPending: { email: 'new@example.com' },
    }),
    plan: {
      action: 'retry',
      reason: 'identifier_held_by_other_customer',
      profileId: 'OURS',
      holderId: 'OTHER',
    },
  },
  {
    situation: 'another customer holds it and its own blocked change gives it up (a swap): trade',
    change: { phoneNumber: undefined },
    facts: facts({
      found: [foundBy('external_id', ours)],
      holder: { field: 'email', profile: otherCustomers },
      holderPending: { email: 'old@example.com' },
    }),
    plan: {
      action: 'swap',
      profileId: 'OURS',
      attributes: { email: 'new@example.com' },
      holderId: 'OTHER',
      holderExternalId: '2002',
      release: { email: null },
      holderAttributes: { email: 'old@example.com' },
    },
  },
  {
    situation:
      "nothing of ours found, and the lookups met another customer's profile on the new email: retry",
    change: { phoneNumber: undefined },
    facts: facts({ found: [foundBy('email', otherCustomers)] }),
    plan: { action: 'retry', reason: 'identifier_held_by_other_customer', holderId: 'OTHER' },
  },
  {
    situation: 'a create met a profile without external_id holding the email: bind that one instead',
    change: { phoneNumber: undefined },
    facts: facts({ holder: { field: 'email', profile: duplicate } }),
    plan: { action: 'patch', profileId: 'DUP', attributes: { external_id: '1001' }, bind: true },
  },
];

describe('planChange: the decision table', () => {
  it.each(rows)('$situation', ({ change, facts: found, policies, plan }) => {
    expect(planChange(aChange(change), found, { ...defaultPolicies, ...policies })).toEqual(plan);
  });
});

describe('lookupOrder', () => {
  it('looks by external_id, previous email, previous phone, new email, new phone', () => {
    const change = aChange({ previous: { email: 'was@example.com', phoneNumber: '+14155550100' } });
    expect(lookupOrder(change).map((lookup) => `${lookup.key}=${lookup.value}`)).toEqual([
      'external_id=1001',
      'previous_email=was@example.com',
      'previous_phone=+14155550100',
      'email=new@example.com',
      'phone=+14155550123',
    ]);
  });

  it('skips absent values and a value already looked up', () => {
    const change = aChange({ previous: { email: 'NEW@example.com' }, phoneNumber: null });
    expect(lookupOrder(change).map((lookup) => lookup.key)).toEqual(['external_id', 'previous_email']);
  });
});

describe('isStale', () => {
  it('is stale only when strictly older than the last applied change', () => {
    expect(isStale('2026-05-01T12:00:00.000Z', undefined)).toBe(false);
    expect(isStale('2026-05-01T11:59:59.000Z', '2026-05-01T12:00:00.000Z')).toBe(true);
    expect(isStale('2026-05-01T12:00:00.000Z', '2026-05-01T12:00:00.000Z')).toBe(false);
    expect(isStale('2026-05-01T12:00:01.000Z', '2026-05-01T12:00:00.000Z')).toBe(false);
  });
});

describe('watermarkAfter: only signed times make later changes stale', () => {
  const NOON = '2026-05-01T12:00:00.000Z';
  const LATER = '2026-05-01T12:30:00.000Z';
  const YEAR_2100 = '2100-01-01T00:00:00.000Z';
  it.each([
    ['signed, nothing applied yet', NOON, false, undefined, NOON],
    ['signed, newer than the watermark', LATER, false, NOON, LATER],
    ['signed, as old as the watermark', NOON, false, NOON, NOON],
    ['signed, older (stale: never applied, but the watermark holds)', NOON, false, LATER, LATER],
    ['unsigned, nothing applied yet', NOON, true, undefined, undefined],
    ['unsigned, newer than the watermark', LATER, true, NOON, NOON],
    ['unsigned, forged far in the future', YEAR_2100, true, NOON, NOON],
  ])('%s', (_, occurredAt, occurredAtUnsigned, lastAppliedAt, expected) => {
    expect(watermarkAfter({ occurredAt, occurredAtUnsigned }, lastAppliedAt)).toBe(expected);
  });

  it('a change after an unsigned one is judged by the signed watermark alone', () => {
    const afterForged = watermarkAfter({ occurredAt: YEAR_2100, occurredAtUnsigned: true }, NOON);
    expect(isStale(LATER, afterForged)).toBe(false);
    expect(isStale('2026-05-01T11:00:00.000Z', afterForged)).toBe(true);
  });
});

describe('what a 409 holder means', () => {
  it('holds the phone only when it holds our phone and not our email (the 409 does not say)', () => {
    const change = aChange({ email: 'new@example.com', phoneNumber: '+14155550123' });
    expect(contestedField(change, aProfile({ email: 'x@example.com', phone_number: '+14155550123' }))).toBe(
      'phone_number',
    );
    expect(contestedField(change, aProfile({ email: 'NEW@example.com', phone_number: '+14155550123' }))).toBe(
      'email',
    );
    expect(contestedField(change, aProfile({ email: 'new@example.com', phone_number: null }))).toBe('email');
    expect(contestedField(aChange({ phoneNumber: undefined }), aProfile({ phone_number: null }))).toBe(
      'email',
    );
  });

  it("names the holder's customer only when it is another customer", () => {
    expect(otherCustomerOf(aProfile({ external_id: '2002' }), '1001')).toBe('2002');
    expect(otherCustomerOf(aProfile({ external_id: '1001' }), '1001')).toBeUndefined();
    expect(otherCustomerOf(aProfile({ external_id: null }), '1001')).toBeUndefined();
  });

  it("takes the holder's blocked change into account only while no newer change was applied", () => {
    const pending = {
      sealedIdentifiers: 'v1.sealed',
      occurredAt: '2026-05-01T12:00:00.000Z',
      sourceEventId: 'e',
    };
    expect(livePending({ pending })).toEqual(pending);
    expect(livePending({ pending, lastAppliedAt: '2026-05-01T11:00:00.000Z' })).toEqual(pending);
    expect(livePending({ pending, lastAppliedAt: '2026-05-01T13:00:00.000Z' })).toBeUndefined();
    expect(livePending({})).toBeUndefined();
  });
});

describe('recordedProfile', () => {
  const state = {
    profileId: 'OURS',
    digests: recordedDigestsOf({ email: 'a@example.com', phone_number: null }),
  };

  it('names the recorded profile with its digests, its values unknown', () => {
    expect(recordedProfile({ externalId: '1001' }, state, TEST_IDENTIFIER_KEY.id)).toEqual({
      lookup: { key: 'recorded', field: 'id', value: 'OURS' },
      profile: { id: 'OURS', email: null, phone_number: null, external_id: '1001' },
      recorded: state.digests,
    });
  });

  it('is no record when the digests were made with another key, or none were recorded', () => {
    expect(recordedProfile({ externalId: '1001' }, state, 'another-key')).toBeUndefined();
    expect(
      recordedProfile({ externalId: '1001' }, { profileId: 'OURS' }, TEST_IDENTIFIER_KEY.id),
    ).toBeUndefined();
  });
});
