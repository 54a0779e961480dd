import { describe, expect, it } from 'vitest';
import { bindChunk, lookUpForBind } from '../../cli/bind-lookups.js';
import type { BindTask } from '../../cli/rows.js';
import { planBind } from '../../lib/bind/plan-bind.js';
import { aProfile } from '../support/factories.js';
import { createMemoryKlaviyo } from '../support/memory-klaviyo.js';

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
    expect(planBind(second.externalId, chunk.found(second))).toMatchObject({
      outcome: 'conflict',
      profileId: '01A',
    });
    expect(planBind(first.externalId, chunk.found(first))).toEqual({
      outcome: 'unchanged',
      profileId: '01A',
    });

    chunk.release('01A');
    expect(planBind(second.externalId, chunk.found(second))).toEqual({
      patch: unbound,
      reason: 'found by phone',
    });
  });
});
