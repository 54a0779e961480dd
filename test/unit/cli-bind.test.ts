import { describe, expect, it } from 'vitest';
import { type BindLookup, bindLookups, conflictOnBind, decideBind } from '../../cli/bind-decision.js';
import { aProfile } from '../support/factories.js';

const byEmail: BindLookup = { field: 'email', value: 'ada@example.com' };
const byPhone: BindLookup = { field: 'phone_number', value: '+14155550134' };

describe('bindLookups', () => {
  it('looks up by email first, then by phone, skipping what the row lacks', () => {
    const task = { line: 2, externalId: '42', sourceEventId: 'cli:x.csv:2' };
    expect(bindLookups({ ...task, email: 'ada@example.com', phoneNumber: '+14155550134' })).toEqual([
      byEmail,
      byPhone,
    ]);
    expect(bindLookups({ ...task, phoneNumber: '+14155550134' })).toEqual([byPhone]);
  });
});

describe('decideBind', () => {
  it('sets external_id on a profile that has none, saying how it was found', () => {
    const profile = aProfile({ id: '01A', external_id: null });
    expect(decideBind('42', { lookup: byPhone, profile })).toEqual({
      patch: profile,
      reason: 'found by phone',
    });
  });

  it('leaves a profile already bound to this customer', () => {
    const profile = aProfile({ id: '01A', external_id: '42' });
    expect(decideBind('42', { lookup: byEmail, profile })).toEqual({
      outcome: 'unchanged',
      profileId: '01A',
    });
  });

  it("reports a conflict, naming both customers, when the profile is another customer's", () => {
    const profile = aProfile({ id: '01A', external_id: '7' });
    expect(decideBind('42', { lookup: byEmail, profile })).toEqual({
      outcome: 'conflict',
      profileId: '01A',
      reason: 'profile 01A (found by email) belongs to customer 7, not 42',
    });
  });

  it('reports not-found, and never creates', () => {
    expect(decideBind('42', undefined)).toEqual({ outcome: 'not-found' });
  });

  it("turns Klaviyo's 409 into a conflict naming the profile that holds the external_id", () => {
    expect(conflictOnBind('42', '01A', '01B')).toEqual({
      outcome: 'conflict',
      profileId: '01A',
      reason: 'external_id 42 is already on profile 01B',
    });
  });
});
