import { describe, expect, it } from 'vitest';
import {
  type BindLookup,
  bindLookups,
  conflictOnBind,
  decideBind,
  foundAmong,
} from '../../cli/bind-decision.js';
import { bindChunk, lookUpForBind } from '../../cli/bind-lookups.js';
import type { BindTask } from '../../cli/rows.js';
import { aProfile } from '../support/factories.js';
import { createMemoryKlaviyo } from '../support/memory-klaviyo.js';

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
    expect(decideBind('42', undefined)).toEqual({
      outcome: 'not-found',
      reason: 'no profile has this email or phone',
    });
  });

  it("turns Klaviyo's 409 into a conflict naming the profile that holds the external_id", () => {
    expect(conflictOnBind('42', '01A', '01B')).toEqual({
      outcome: 'conflict',
      profileId: '01A',
      reason: 'external_id 42 is already on profile 01B',
    });
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

const aTask = (n: number, fields: Partial<BindTask>): BindTask => ({
  line: n + 2,
  externalId: `c${n}`,
  sourceEventId: `cli:x.csv:${n + 2}`,
  ...fields,
});

describe('lookUpForBind', () => {
  it('looks 250 rows up in any() queries of 100 values: every email (as given and lower-cased), then the phones still unfound', async () => {
    const klaviyo = createMemoryKlaviyo();
    const tasks = Array.from({ length: 250 }, (_, n) =>
      aTask(n, { email: `c${n}@example.com`, phoneNumber: `+1415555${String(n).padStart(4, '0')}` }),
    );
    tasks[0] = aTask(0, { email: 'C0@Example.com' });
    klaviyo.seed({ email: 'c0@example.com' });
    for (let n = 1; n < 150; n++) klaviyo.seed({ email: `c${n}@example.com` });

    const found = await lookUpForBind(klaviyo, tasks);

    expect(found).toHaveLength(150);
    const queries = klaviyo.callsOf('findProfilesAmong') as [string, string[]][];
    expect(queries.map(([field, values]) => [field, values.length])).toEqual([
      ['email', 100],
      ['email', 100],
      ['email', 51],
      ['phone_number', 100],
    ]);
    expect(queries[0]?.[1].slice(0, 2)).toEqual(['C0@Example.com', 'c0@example.com']);
    expect(klaviyo.callsOf('findProfiles')).toEqual([]);
  });
});

describe('bindChunk', () => {
  const unbound = aProfile({
    id: '01A',
    email: 'shared@example.com',
    phone_number: '+14155550134',
    external_id: null,
  });

  it("shows a profile one row is binding as that customer's to the rows after it, until released", () => {
    const chunk = bindChunk([unbound]);
    const first = aTask(1, { email: 'shared@example.com' });
    const second = aTask(2, { phoneNumber: '+14155550134' });

    chunk.claim('01A', first.externalId);
    expect(decideBind(second.externalId, chunk.found(second))).toMatchObject({
      outcome: 'conflict',
      profileId: '01A',
    });
    expect(decideBind(first.externalId, chunk.found(first))).toEqual({
      outcome: 'unchanged',
      profileId: '01A',
    });

    chunk.release('01A');
    expect(decideBind(second.externalId, chunk.found(second))).toEqual({
      patch: unbound,
      reason: 'found by phone',
    });
  });
});
