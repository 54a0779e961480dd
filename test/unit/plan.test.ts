import { describe, expect, it } from 'vitest';
import { isStale, planChange } from '../../lib/sync/plan.js';
import { aChange, aProfile } from '../support/factories.js';

describe('planChange', () => {
  it.each([
    {
      situation: 'email and phone both differ: patch both',
      change: aChange(),
      profile: aProfile(),
      plan: {
        action: 'patch',
        profileId: '01PROFILE',
        attributes: { email: 'new@example.com', phone_number: '+14155550123' },
      },
    },
    {
      situation: 'only the email differs: patch the email only',
      change: aChange({ phoneNumber: '+14155550100' }),
      profile: aProfile(),
      plan: { action: 'patch', profileId: '01PROFILE', attributes: { email: 'new@example.com' } },
    },
    {
      situation: 'nothing differs: no patch',
      change: aChange({ email: 'old@example.com', phoneNumber: '+14155550100' }),
      profile: aProfile(),
      plan: { action: 'skip', reason: 'unchanged', profileId: '01PROFILE' },
    },
    {
      situation: 'email differs only in case: no patch',
      change: aChange({ email: 'OLD@Example.com', phoneNumber: undefined }),
      profile: aProfile(),
      plan: { action: 'skip', reason: 'unchanged', profileId: '01PROFILE' },
    },
    {
      situation: 'phone absent from the change: left as it is',
      change: aChange({ phoneNumber: undefined }),
      profile: aProfile(),
      plan: { action: 'patch', profileId: '01PROFILE', attributes: { email: 'new@example.com' } },
    },
    {
      situation: 'phone null in the change: cleared',
      change: aChange({ email: 'old@example.com', phoneNumber: null }),
      profile: aProfile(),
      plan: { action: 'patch', profileId: '01PROFILE', attributes: { phone_number: null } },
    },
    {
      situation: 'no profile: create with external_id and identifiers',
      change: aChange(),
      profile: undefined,
      plan: {
        action: 'create',
        attributes: { external_id: '1001', email: 'new@example.com', phone_number: '+14155550123' },
      },
    },
    {
      situation: 'no profile and no identifier to give it: skip',
      change: aChange({ email: undefined, phoneNumber: null }),
      profile: undefined,
      plan: { action: 'skip', reason: 'nothing-to-create' },
    },
  ])('$situation', ({ change, profile, plan }) => {
    expect(planChange(change, profile)).toEqual(plan);
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
