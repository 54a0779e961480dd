import { describe, expect, it } from 'vitest';
import {
  type BindFound,
  type BindLookup,
  type BindWrite,
  bindLookups,
  foundAmong,
  planBind,
  settleBind,
} from '../../lib/bind/plan-bind.js';
import { aProfile } from '../support/factories.js';

/** The bind decision, from the profile found to the outcome of its write: one table per step. */
const byEmail: BindLookup = { field: 'email', value: 'ada@example.com' };
const byPhone: BindLookup = { field: 'phone_number', value: '+14155550134' };
const unbound = aProfile({ id: '01A', external_id: null });
const found = (lookup: BindLookup, externalId: string | null): BindFound => ({
  lookup,
  profile: aProfile({ id: '01A', external_id: externalId }),
});

describe('planBind', () => {
  it.each<[string, BindFound | undefined, ReturnType<typeof planBind>]>([
    [
      'a profile without external_id: set it, saying how it was found',
      { lookup: byPhone, profile: unbound },
      { patch: unbound, reason: 'found by phone' },
    ],
    [
      'a profile already bound to this customer: unchanged',
      found(byEmail, '42'),
      { outcome: 'unchanged', profileId: '01A' },
    ],
    [
      "another customer's profile: a conflict naming both",
      found(byEmail, '7'),
      {
        outcome: 'conflict',
        profileId: '01A',
        reason: 'profile 01A (found by email) belongs to customer 7, not 42',
      },
    ],
    [
      'no profile: not-found (bind never creates)',
      undefined,
      { outcome: 'not-found', reason: 'no profile has this email or phone' },
    ],
  ])('%s', (_case, given, expected) => {
    expect(planBind('42', given)).toEqual(expected);
  });
});

describe('settleBind', () => {
  const planned = { patch: unbound, reason: 'found by email' };
  const importError = (code: string): BindWrite => ({
    kind: 'import-error',
    jobId: 'job-1',
    error: { code, detail: `${code} detail` },
  });
  it.each<[string, BindWrite, ReturnType<typeof settleBind>]>([
    ['written: bound', { kind: 'written' }, { outcome: 'bound', profileId: '01A', reason: 'found by email' }],
    [
      'a dry run: would-bind',
      { kind: 'dry-run' },
      { outcome: 'would-bind', profileId: '01A', reason: 'would set external_id (found by email)' },
    ],
    [
      "Klaviyo's 409 on the PATCH: a conflict naming the profile that holds the external_id",
      { kind: 'held', holderId: '01B' },
      { outcome: 'conflict', profileId: '01A', reason: 'external_id 42 is already on profile 01B' },
    ],
    [
      "a bulk job's duplicate_profile: a conflict",
      importError('duplicate_profile'),
      {
        outcome: 'conflict',
        profileId: '01A',
        reason:
          'external_id 42 is already on another profile (bulk import job job-1: duplicate_profile detail)',
      },
    ],
    [
      "a bulk job's not_found (the profile merged or deleted meanwhile): looked at again",
      importError('not_found'),
      'again',
    ],
    [
      "a bulk job's other error: failed",
      importError('invalid'),
      {
        outcome: 'failed',
        profileId: '01A',
        reason: 'klaviyo_invalid: bulk import job job-1 could not bind it: invalid detail',
      },
    ],
  ])('%s', (_case, write, expected) => {
    expect(settleBind('42', planned, write)).toEqual(expected);
  });
});

describe('bindLookups', () => {
  it('looks up by email first, then by phone, skipping what the row lacks', () => {
    expect(bindLookups({ email: 'ada@example.com', phoneNumber: '+14155550134' })).toEqual([
      byEmail,
      byPhone,
    ]);
    expect(bindLookups({ phoneNumber: '+14155550134' })).toEqual([byPhone]);
  });
});

describe('foundAmong', () => {
  const byEmailOnly = aProfile({
    id: '01E',
    email: 'ada@example.com',
    phone_number: null,
    external_id: null,
  });
  const byPhoneOnly = aProfile({ id: '01P', email: null, phone_number: '+14155550134', external_id: null });

  it('answers the lookups in order from the profiles a chunk found: email before phone', () => {
    expect(foundAmong([byEmail, byPhone], [byPhoneOnly, byEmailOnly])).toEqual({
      lookup: byEmail,
      profile: byEmailOnly,
    });
    expect(foundAmong([byEmail, byPhone], [byPhoneOnly])).toEqual({ lookup: byPhone, profile: byPhoneOnly });
    expect(foundAmong([byEmail, byPhone], [])).toBeUndefined();
  });

  it('matches emails whatever their case, phones exactly', () => {
    expect(foundAmong([{ field: 'email', value: 'Ada@Example.COM' }], [byEmailOnly])?.profile).toBe(
      byEmailOnly,
    );
    expect(foundAmong([{ field: 'phone_number', value: '+14155550135' }], [byPhoneOnly])).toBeUndefined();
  });
});
